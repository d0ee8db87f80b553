// graphql-codegen configuration of the TypeScript SDK (run by `make sdk`, checked by
// tests/integration/test_sdk.py): paths are relative to this directory.
import type { CodegenConfig } from "@graphql-codegen/cli";

const config: CodegenConfig = {
  schema: "../../schema.graphql",
  documents: "../operations/*.graphql",
  overwrite: true,
  silent: true,
  generates: {
    // Apollo Client's `possibleTypes`: without it `... on Error` fragments never match.
    "possible-types.ts": {
      plugins: ["fragment-matcher"],
      config: { module: "es2015" },
    },
    "possible-types.json": { plugins: ["fragment-matcher"] },
    // Types of the inputs, enums and results of sdk/operations, and each operation as a
    // TypedDocumentNode (`LoginDocument`, ...) that Apollo Client, urql and graphql-request accept.
    "graphql.ts": {
      plugins: ["typescript-operations", "typed-document-node"],
      config: {
        enumsAsTypes: true,
        useTypeImports: true,
        strictScalars: true,
        scalars: { DateTime: "string", JSON: "unknown", Upload: "File | Blob" },
      },
    },
  },
};

export default config;
