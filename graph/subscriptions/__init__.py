"""GraphQL subscriptions: live generation status and credit balance over WebSocket.

``feed`` adapts the process's broadcast to the watchers of ``domain.use_cases.watching``;
``session`` turns a watch into a subscription stream on one connection (fresh loaders per
event, 4401/1012 closes); ``generations`` and ``credits`` are the Subscription fields;
``execution`` is the schema's executor class (a graphql-core leak fixed for long subscriptions).
The WebSocket endpoint itself (protocols, authentication, keep-alive) is ``graph.websocket``.
"""
