"""The GraphQL layer: Strawberry types, resolvers, context, schema assembly and the FastAPI app."""
