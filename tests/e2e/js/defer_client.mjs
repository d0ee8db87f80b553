// Apollo Client 4 (both incremental handlers) and urql asking a genhub server for @defer/@stream
// (tests/e2e/test_incremental_delivery_clients.py).
//
//   node defer_client.mjs URL
//
// Prints one JSON object: per client, the outcome of a deferred query, of a streamed one and of
// the same query without a directive, and every request's Accept header with the status and
// Content-Type it got back.
import { createRequire } from "node:module";
import path from "node:path";

// The packages live in node/node_modules: resolved from the working directory (node_tools.run runs there).
const require = createRequire(path.join(process.cwd(), "package.json"));
const { ApolloClient, HttpLink, InMemoryCache, gql } = require("@apollo/client");
const { Defer20220824Handler, GraphQL17Alpha9Handler } = require("@apollo/client/incremental");
const { Client, fetchExchange } = require("@urql/core");

const [url] = process.argv.slice(2);
const exchanges = [];

async function recordingFetch(input, init = {}) {
  const headers = new Headers(init.headers || {});
  const response = await fetch(input, init);
  exchanges.push({
    accept: headers.get("accept"),
    status: response.status,
    contentType: response.headers.get("content-type"),
  });
  return response;
}

const DEFERRED = `query Deferred { models { slug ... @defer(label: "kind") { kind } } }`;
const STREAMED = `query Streamed { models @stream(initialCount: 1) { slug } }`;
const PLAIN = `query Plain { models { slug kind } }`;

function outcome(errors) {
  return {
    error: true,
    messages: errors.map((e) => e.message),
    codes: errors.map((e) => e.extensions && e.extensions.code),
  };
}

async function apollo(handler) {
  const client = new ApolloClient({
    link: new HttpLink({ uri: `${url}/graphql`, fetch: recordingFetch }),
    cache: new InMemoryCache(),
    incrementalHandler: handler,
  });
  const run = async (text) => {
    try {
      const { data, error } = await client.query({ query: gql(text), fetchPolicy: "network-only" });
      if (error) return outcome(error.errors || [error]);
      return { data };
    } catch (error) {
      return outcome(error.errors || [error]);
    }
  };
  return { deferred: await run(DEFERRED), streamed: await run(STREAMED), plain: await run(PLAIN), exchanges: exchanges.splice(0) };
}

async function urql() {
  const client = new Client({ url: `${url}/graphql`, exchanges: [fetchExchange], fetch: recordingFetch, requestPolicy: "network-only" });
  const run = async (text) => {
    const result = await client.query(text, {}).toPromise();
    if (result.error) return outcome(result.error.graphQLErrors.length ? result.error.graphQLErrors : [result.error]);
    return { data: result.data };
  };
  return { deferred: await run(DEFERRED), streamed: await run(STREAMED), plain: await run(PLAIN), exchanges: exchanges.splice(0) };
}

async function main() {
  return {
    apollo2022: await apollo(new Defer20220824Handler()),
    apolloV02: await apollo(new GraphQL17Alpha9Handler()),
    urql: await urql(),
  };
}

main().then(
  (result) => process.stdout.write(JSON.stringify(result) + "\n"),
  (error) => {
    process.stderr.write(String(error && error.stack ? error.stack : error) + "\n");
    process.exit(1);
  },
);
