// Apollo Client with genhub's typed documents and possibleTypes (hand-written, not generated).
// `make sdk` and tests/integration/test_sdk.py type-check it with the generated files, so a
// schema or operation change that breaks this usage fails there.
import { ApolloClient, HttpLink, InMemoryCache } from "@apollo/client";

import { DataExportDocument, GenerateDocument, type GenerateMutationVariables } from "./graphql";
import possibleTypes from "./possible-types";

export function makeClient(url: string, token: string): ApolloClient {
  return new ApolloClient({
    cache: new InMemoryCache({ possibleTypes: possibleTypes.possibleTypes }),
    link: new HttpLink({ uri: url, headers: { Authorization: `Bearer ${token}` } }),
  });
}

/** The id of the started generation, or the refusal's code (typed: each union member is narrowed). */
export async function start(client: ApolloClient, input: GenerateMutationVariables["input"]): Promise<string> {
  const { data } = await client.mutate({ mutation: GenerateDocument, variables: { input } });
  const answer = data?.generate;
  if (answer === undefined) return "NO_DATA";
  switch (answer.__typename) {
    case "GenerateSuccess":
      return answer.generation.id;
    case "InsufficientCredits":
      return `${answer.code}: ${answer.required} needed, ${answer.available} available`;
    default:
      return answer.code;
  }
}

export async function exportStatus(client: ApolloClient, id: string): Promise<string> {
  const { data } = await client.query({ query: DataExportDocument, variables: { id } });
  const found = data?.dataExport;
  return found?.__typename === "DataExport" ? found.status : (found?.code ?? "NO_DATA");
}
