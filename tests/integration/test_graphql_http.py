"""GraphQL over HTTP (graphql.github.io/graphql-over-http): media types, status codes, GET, bad input."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from tests.fixtures.app import GraphQLClient, SettingsFactory, running_app

GQL_RESPONSE = "application/graphql-response+json"
QUERY = "query Models { models { slug } }"


@pytest.fixture
async def client(make_settings: SettingsFactory) -> AsyncIterator[GraphQLClient]:
    # The HTTP layer does not depend on the database engine: SQLite keeps these fast.
    async with running_app(make_settings(max_body_bytes=4096)) as c:
        yield c


async def post(client: GraphQLClient, body: object, accept: str | None = None, **kw: object) -> tuple[int, str, object]:
    headers = {"Content-Type": "application/json"}
    if accept is not None:
        headers["Accept"] = accept
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    r = await client.http.post("/graphql", content=content, headers=headers)
    return r.status_code, r.headers.get("content-type", ""), r.json() if r.content else None


async def test_json_is_the_default_media_type(client: GraphQLClient) -> None:
    status, media, body = await post(client, {"query": QUERY})
    assert status == 200 and media.startswith("application/json")
    assert body == {"data": {"models": []}}


async def test_graphql_response_json_when_accepted(client: GraphQLClient) -> None:
    status, media, _ = await post(client, {"query": QUERY}, accept=f"{GQL_RESPONSE}, application/json;q=0.9")
    assert status == 200 and media.startswith(GQL_RESPONSE)


async def test_validation_error_is_400_with_graphql_response_json(client: GraphQLClient) -> None:
    status, media, body = await post(client, {"query": "{ nope }"}, accept=GQL_RESPONSE)
    assert status == 400 and media.startswith(GQL_RESPONSE)
    assert isinstance(body, dict) and "data" not in body and body["errors"][0]["message"]


async def test_validation_error_is_200_with_application_json(client: GraphQLClient) -> None:
    status, _, body = await post(client, {"query": "{ nope }"}, accept="application/json")
    assert status == 200 and isinstance(body, dict) and "errors" in body


async def test_parse_error_is_400_with_graphql_response_json(client: GraphQLClient) -> None:
    status, _, body = await post(client, {"query": "{ models { "}, accept=GQL_RESPONSE)
    assert status == 400 and isinstance(body, dict)
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


async def test_wrong_variable_type_is_a_request_error(client: GraphQLClient) -> None:
    query = "query ($k: ModelKind) { models(kind: $k) { slug } }"
    status, _, body = await post(client, {"query": query, "variables": {"k": 42}}, accept=GQL_RESPONSE)
    assert status == 400 and isinstance(body, dict) and "data" not in body


async def test_field_error_keeps_200_and_data(client: GraphQLClient) -> None:
    status, _, body = await post(client, {"query": "{ me { id } credits { balance } }"}, accept=GQL_RESPONSE)
    assert status == 200 and isinstance(body, dict) and "data" in body


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[]",
        b'"a string"',
        {"variables": {}},
        {"query": 42},
        {"query": QUERY, "variables": "nope"},
        {"query": QUERY, "operationName": 7},
    ],
    ids=["invalid-json", "empty-batch", "not-an-object", "missing-query", "query-not-string", "variables", "opname"],
)
async def test_malformed_requests_are_400(client: GraphQLClient, body: object) -> None:
    for accept in ("application/json", GQL_RESPONSE):
        status, _, answer = await post(client, body, accept=accept)
        assert status == 400, (body, accept)
        assert isinstance(answer, dict) and answer["errors"]


async def test_oversized_body_is_413(client: GraphQLClient) -> None:
    status, _, _ = await post(client, {"query": QUERY, "variables": {"pad": "x" * 10_000}})
    assert status == 413


async def test_unsupported_content_type_is_415(client: GraphQLClient) -> None:
    r = await client.http.post("/graphql", content=QUERY, headers={"Content-Type": "text/plain"})
    assert r.status_code == 415


async def test_unacceptable_accept_is_406(client: GraphQLClient) -> None:
    status, _, _ = await post(client, {"query": QUERY}, accept="text/csv")
    assert status == 406


async def test_query_over_get(client: GraphQLClient) -> None:
    r = await client.http.get("/graphql", params={"query": QUERY}, headers={"Accept": GQL_RESPONSE})
    assert r.status_code == 200 and r.json() == {"data": {"models": []}}


async def test_mutation_over_get_is_405(client: GraphQLClient) -> None:
    mutation = 'mutation { login(input: {email: "a@b.cd", password: "x"}) { __typename } }'
    r = await client.http.get("/graphql", params={"query": mutation})
    assert r.status_code == 405 and "POST" in r.headers["allow"]


async def test_get_with_invalid_variables_json_is_400(client: GraphQLClient) -> None:
    r = await client.http.get("/graphql", params={"query": QUERY, "variables": "{bad"})
    assert r.status_code == 400


async def test_operation_name_selects_the_operation(client: GraphQLClient) -> None:
    doc = "query A { models { slug } } query B { me { id } }"
    status, _, body = await post(client, {"query": doc, "operationName": "B"})
    assert status == 200 and body == {"data": {"me": None}}


async def test_unknown_operation_name_is_a_request_error(client: GraphQLClient) -> None:
    status, _, _ = await post(client, {"query": "query A { me { id } }", "operationName": "Z"}, accept=GQL_RESPONSE)
    assert status == 400


async def test_several_operations_without_a_name_run_none_of_them(client: GraphQLClient) -> None:
    # given a document with two operations and no operationName
    doc = "query A { models { slug } } query B { me { id } }"
    # when it is posted
    status, _, body = await post(client, {"query": doc}, accept=GQL_RESPONSE)
    # then nothing runs and the client is told to name one
    assert status == 400
    assert isinstance(body, dict) and "data" not in body
    assert "operationName" in body["errors"][0]["message"]
    assert body["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


async def test_a_mutation_cannot_ride_along_an_unnamed_get(client: GraphQLClient) -> None:
    # a GET whose first operation is a mutation, with no name to pick the query: not executed
    doc = 'mutation M { register(input: {email: "get@example.com", password: "long enough pw"}) { __typename } } query Q { __typename }'
    r = await client.http.get("/graphql", params={"query": doc})
    assert r.status_code == 200 and "data" not in r.json()
    status, _, body = await post(client, {"query": "query { me { id } }"})
    registered = await client.execute(
        'mutation { login(input: {email: "get@example.com", password: "long enough pw"}) { __typename } }'
    )
    assert registered["data"]["login"]["__typename"] == "InvalidCredentials"  # no account was created


async def test_batches_are_limited(client: GraphQLClient) -> None:
    status, _, body = await post(client, [{"query": QUERY}] * 3)
    assert status == 200 and isinstance(body, list) and len(body) == 3
    status, _, _ = await post(client, [{"query": QUERY}] * 11)
    assert status == 400


async def test_other_methods_are_405(client: GraphQLClient) -> None:
    assert (await client.http.put("/graphql", json={"query": QUERY})).status_code == 405


async def test_errors_never_leak_a_traceback(client: GraphQLClient) -> None:
    for body in ({"query": "{ models { nope } }"}, {"query": "{"}):
        r = await client.http.post("/graphql", json=body)
        assert "Traceback" not in r.text


async def test_health_and_ready(client: GraphQLClient) -> None:
    assert (await client.http.get("/health")).json() == {"status": "ok"}
    ready = await client.http.get("/ready")
    assert ready.status_code == 200 and ready.json()["checks"] == {"database": "ok", "storage": "ok"}


async def test_graphiql_is_served_in_development(client: GraphQLClient) -> None:
    r = await client.http.get("/graphql", headers={"Accept": "text/html"})
    assert r.status_code == 200 and "genhub GraphiQL" in r.text and "Authorization" in r.text


async def test_ready_is_503_and_names_the_failing_part(make_settings: SettingsFactory, tmp_path: object) -> None:
    from pathlib import Path

    blocked = Path(str(tmp_path)) / "not-a-directory"
    blocked.write_text("a file where the storage root should be", encoding="utf-8")
    async with running_app(make_settings(local_storage_path=blocked)) as client:
        ready = await client.http.get("/ready")
        assert ready.status_code == 503
        body = ready.json()
        assert body["failing"] == ["storage"] and body["checks"]["database"] == "ok"
        assert (await client.http.get("/health")).status_code == 200


@pytest.mark.parametrize("value", [[[1.5e142, None], None], {"a": 1}, None, 2**40])
async def test_bad_variable_values_are_request_errors_not_internal(client: GraphQLClient, value: object) -> None:
    query = "query ($id: ID!, $n: Int) { generation(id: $id) { id } generations(first: $n) { edges { cursor } } }"
    variables = {"id": value, "n": 1} if value != 2**40 else {"id": "x", "n": value}
    status, _, body = await post(client, {"query": query, "variables": variables}, accept=GQL_RESPONSE)
    assert status == 400 and isinstance(body, dict)
    assert all(e["extensions"]["code"] != "INTERNAL_SERVER_ERROR" for e in body["errors"])
