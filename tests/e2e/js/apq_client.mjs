// Apollo Client 4's real PersistedQueryLink against a genhub server (tests/e2e/test_persisted_queries_server.py).
//
//   node apq_client.mjs URL apq                 miss, retry with the text, hash-only hit; the same over GET
//   node apq_client.mjs URL fallback            a server without APQ: the link stops sending hashes
//   node apq_client.mjs - manifest DIR OUT      Apollo's manifest generator over DIR/*.graphql, written to OUT
//   node apq_client.mjs URL trusted MANIFEST    ids from the manifest (as @apollo/persisted-query-lists does)
//   node apq_client.mjs - codegen SCHEMA DIR OUT graphql-codegen's client preset (persistedDocuments) into OUT/
//
// Prints one JSON object: each mode's results and every request the link sent
// (method, whether it carried the text, whether it carried a hash).
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

// The packages live in node/node_modules: resolved from the working directory (node_tools.run runs there).
const require = createRequire(path.join(process.cwd(), "package.json"));
const { ApolloClient, HttpLink, InMemoryCache, gql } = require("@apollo/client");
const { PersistedQueryLink } = require("@apollo/client/link/persisted-queries");

const [url, mode, ...rest] = process.argv.slice(2);
const sha256 = (text) => createHash("sha256").update(text).digest("hex");
const requests = [];

function recordingFetch(input, init = {}) {
  const method = (init.method || "GET").toUpperCase();
  let query = false;
  let hash = false;
  if (method === "GET") {
    const params = new URL(String(input)).searchParams;
    query = params.has("query");
    hash = (params.get("extensions") || "").includes("sha256Hash");
  } else {
    const body = JSON.parse(init.body);
    query = typeof body.query === "string";
    hash = Boolean(body.extensions && body.extensions.persistedQuery);
  }
  requests.push({ method, query, hash });
  return fetch(input, init);
}

function client(linkOptions) {
  const http = new HttpLink({ uri: `${url}/graphql`, fetch: recordingFetch });
  return new ApolloClient({
    link: new PersistedQueryLink(linkOptions).concat(http),
    cache: new InMemoryCache(),
  });
}

async function run(apollo, query) {
  try {
    const { data } = await apollo.query({ query, fetchPolicy: "network-only" });
    return { data };
  } catch (error) {
    const errors = error.errors || [];
    return { error: String(error.message), codes: errors.map((e) => e.extensions && e.extensions.code) };
  }
}

const MODELS = gql`query Models { models { slug } }`;
const MODEL_KINDS = gql`query ModelKinds { models { slug kind } }`;
const AD_HOC = gql`query AdHoc { models { id } }`;

async function main() {
  if (mode === "apq") {
    const post = client({ sha256 });
    const first = await run(post, MODELS);
    const postRequests = requests.splice(0);
    const second = await run(post, MODELS);
    const secondRequests = requests.splice(0);
    const viaGet = client({ sha256, useGETForHashedQueries: true });
    const getFirst = await run(viaGet, MODEL_KINDS);
    const getFirstRequests = requests.splice(0);
    const getSecond = await run(viaGet, MODEL_KINDS);
    return {
      first, postRequests, second, secondRequests,
      getFirst, getFirstRequests, getSecond, getSecondRequests: requests.splice(0),
    };
  }
  if (mode === "fallback") {
    const apollo = client({ sha256 });
    const first = await run(apollo, MODELS);
    const firstRequests = requests.splice(0);
    const second = await run(apollo, MODEL_KINDS);
    return { first, firstRequests, second, secondRequests: requests.splice(0) };
  }
  if (mode === "manifest") {
    const { generatePersistedQueryManifest } = require("@apollo/generate-persisted-query-manifest");
    const [dir, out] = rest;
    const manifest = await generatePersistedQueryManifest({ documents: [`${dir}/*.graphql`] }, undefined);
    writeFileSync(out, JSON.stringify(manifest, null, 2));
    return { manifest };
  }
  if (mode === "codegen") {
    const { generate } = require("@graphql-codegen/cli");
    const [schema, dir, out] = rest;
    const config = {
      schema,
      documents: [`${dir}/*.graphql`],
      silent: true,
      generates: { [`${out}/`]: { preset: "client", presetConfig: { persistedDocuments: true } } },
    };
    await generate(config, true);
    return { documents: JSON.parse(readFileSync(path.join(out, "persisted-documents.json"), "utf-8")) };
  }
  if (mode === "trusted") {
    const manifest = JSON.parse(readFileSync(rest[0], "utf-8"));
    const ids = Object.fromEntries(manifest.operations.map((op) => [op.name, op.id]));
    const name = (document) => document.definitions.find((d) => d.kind === "OperationDefinition").name.value;
    // an operation the manifest lacks falls back to the hash of its text: the server must refuse it
    const generateHash = (document) => ids[name(document)] || sha256(JSON.stringify(name(document)));
    const apollo = client({ generateHash });
    const trusted = await run(apollo, MODELS);
    const trustedRequests = requests.splice(0);
    const adHoc = await run(apollo, AD_HOC);
    return { trusted, trustedRequests, adHoc, adHocRequests: requests.splice(0) };
  }
  throw new Error(`unknown mode ${mode}`);
}

main().then(
  (result) => process.stdout.write(JSON.stringify(result) + "\n"),
  (error) => {
    process.stderr.write(String(error && error.stack ? error.stack : error) + "\n");
    process.exit(1);
  },
);
