// Drives genhub with the graphql-sse client (distinct connections mode) and prints one JSON summary.
//
// Usage: node sse_client.mjs '<json>' with {replicaA, replicaB, token, modelId}. Run from node/
// (tests/fixtures/node_tools.py), whose node_modules holds graphql-sse.
//   1. starts a generation through replica B (plain GraphQL over HTTP);
//   2. follows it on replica A with `generationUpdated` over SSE until the server completes it;
//   3. runs a query over SSE (one result, then complete);
//   4. subscribes without a token (refused with 401 before any stream).
import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(path.join(process.cwd(), "package.json"));
const { createClient } = require("graphql-sse");

const args = JSON.parse(process.argv[2]);
const url = (base) => `${base}/graphql`;

function collect(client, payload) {
  return new Promise((resolve) => {
    const results = [];
    client.subscribe(payload, {
      next: (result) => results.push(result),
      error: (error) => resolve({ results, error: String(error?.message ?? error), status: error?.response?.status }),
      complete: () => resolve({ results, complete: true }),
    });
  });
}

async function main() {
  const started = await fetch(url(args.replicaB), {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${args.token}` },
    body: JSON.stringify({
      query: `mutation ($model: ID!) { generate(input: {modelId: $model, prompt: "a fox over SSE"}) {
        __typename ... on GenerateSuccess { generation { id } } } }`,
      variables: { model: args.modelId },
    }),
  });
  const generationId = (await started.json()).data.generate.generation.id;

  const client = createClient({
    url: url(args.replicaA),
    headers: () => ({ Authorization: `Bearer ${args.token}` }),
    retryAttempts: 0,
  });
  const updated = await collect(client, {
    query: `subscription Updated($id: ID!) { generationUpdated(id: $id) { previousStatus generation { id status progress } } }`,
    variables: { id: generationId },
  });
  const query = await collect(client, { query: "query Credits { credits { balance reserved available } }" });
  const anonymous = await collect(createClient({ url: url(args.replicaA), retryAttempts: 0 }), {
    query: "subscription { creditsChanged { balance } }",
  });
  client.dispose();
  process.stdout.write(JSON.stringify({ generationId, updated, query, anonymous }) + "\n");
}

main().catch((error) => {
  process.stderr.write(`${error?.stack ?? error}\n`);
  process.exit(1);
});
