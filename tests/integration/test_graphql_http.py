"""GraphQL over HTTP (graphql.github.io/graphql-over-http): media types, status codes, GET, bad input."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from tests.fixtures.app import GraphQLClient, SettingsFactory, register_user, running_app

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


HUGE_INTEGER = "1" * 4301  # past Python's 4300-digit limit for int(str)
OUT_OF_JSON = [
    HUGE_INTEGER,  # json.loads raises a bare ValueError
    "NaN",  # accepted by json.loads, not JSON
    "Infinity",
    "-Infinity",
    "1e999",  # parses to float inf, which jsonb (and JSON) cannot hold
    "-1" + "0" * 400 + ".5",
]


async def test_numbers_json_cannot_carry_are_400_not_500(make_settings: SettingsFactory) -> None:
    # given an app that accepts bodies large enough for a 4301-digit number
    async with running_app(make_settings(max_body_bytes=64 * 1024)) as client:
        for number in OUT_OF_JSON:
            body = f'{{"query": "{{ __typename }}", "variables": {{"x": {number}}}}}'.encode()
            for accept in ("application/json", GQL_RESPONSE):
                # when it is posted
                status, _, answer = await post(client, body, accept=accept)
                # then it is refused as invalid JSON, like any other malformed body
                assert status == 400, (number[:20], accept, answer)
                assert isinstance(answer, dict)
                assert answer["errors"][0]["message"] == "The request body is not valid JSON."
                assert answer["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


@pytest.mark.parametrize("number", OUT_OF_JSON, ids=["huge-int", "nan", "inf", "-inf", "1e999", "long-float"])
async def test_numbers_json_cannot_carry_in_get_variables_are_400(client: GraphQLClient, number: str) -> None:
    # given a GET whose variables hold a number JSON cannot carry
    params = {"query": "{ __typename }", "variables": f'{{"x": {number}}}'}
    # when it is sent
    r = await client.http.get("/graphql", params=params)
    # then it is refused as invalid JSON
    assert r.status_code == 400, r.text
    assert r.json()["errors"][0]["message"] == "`variables` is not valid JSON."


@pytest.mark.parametrize("number", OUT_OF_JSON, ids=["huge-int", "nan", "inf", "-inf", "1e999", "long-float"])
async def test_numbers_json_cannot_carry_in_multipart_operations_are_400(client: GraphQLClient, number: str) -> None:
    # given a multipart request whose `operations` hold a number JSON cannot carry
    operations = f'{{"query": "{{ __typename }}", "variables": {{"file": null, "x": {number}}}}}'
    form = {"operations": operations, "map": '{"0": ["variables.file"]}'}
    # when it is posted
    r = await client.http.post(
        "/graphql",
        data=form,
        files={"0": ("a.bin", b"data", "application/octet-stream")},
        headers={"GraphQL-Require-Preflight": "1"},
    )
    # then it is refused as invalid JSON
    assert r.status_code == 400, r.text
    assert r.json()["errors"][0]["message"] == "`operations` and `map` must be JSON."


async def test_transport_errors_carry_the_request_id_of_the_response(client: GraphQLClient) -> None:
    mutation = 'mutation { login(input: {email: "a@b.cd", password: "x"}) { __typename } }'
    json_body = {"Content-Type": "application/json"}
    # given requests refused before any GraphQL runs, on the JSON endpoint and on the FastAPI routes
    requests = [
        ("POST", {"content": b"{not json", "headers": json_body}, 400),
        ("POST", {"content": b'{"query": "{ __typename }"}', "headers": {**json_body, "Accept": "text/csv"}}, 406),
        ("POST", {"content": b"x" * 5000, "headers": json_body}, 413),
        ("POST", {"content": QUERY, "headers": {"Content-Type": "text/plain"}}, 415),
        ("GET", {"params": {"query": mutation}}, 405),
        ("GET", {"params": {"query": QUERY}, "headers": {"Accept": "text/csv"}}, 406),
        ("PUT", {"json": {"query": QUERY}}, 405),
    ]
    for method, kw, expected in requests:
        # when each is sent
        r = await client.http.request(method, "/graphql", **kw)  # type: ignore[arg-type]
        # then its error names the same request id as the X-Request-ID header
        assert r.status_code == expected, (method, kw, r.text)
        error = r.json()["errors"][0]
        assert error["extensions"]["code"] == "BAD_REQUEST"
        assert error["extensions"]["requestId"] == r.headers["x-request-id"], (method, kw)


async def test_a_transport_error_echoes_the_clients_request_id(client: GraphQLClient) -> None:
    # given a client that sends its own X-Request-ID
    headers = {"Content-Type": "application/json", "X-Request-ID": "client-trace-7"}
    # when its body is not JSON
    r = await client.http.post("/graphql", content=b"{not json", headers=headers)
    # then the error carries that id, as GraphQL errors do
    assert r.status_code == 400
    assert r.json()["errors"][0]["extensions"]["requestId"] == "client-trace-7" == r.headers["x-request-id"]


OVERSIZED_PAGE = "query Big { generations(first: 1000) { edges { cursor node { id status } } } }"


async def test_a_page_over_the_cap_is_invalid_input_not_too_costly(client: GraphQLClient) -> None:
    # given a signed-in user asking for 1000 generations (a literal cost of 5001 fields)
    session = await register_user(client, "big-page@example.com")
    # when the query is sent
    body = await client.execute(OVERSIZED_PAGE, token=session["accessToken"], expect_errors=True)
    # then the resolver refuses the argument, as creditLedger does, rather than the cost limit
    codes = [e["extensions"]["code"] for e in body["errors"]]
    assert codes == ["INVALID_INPUT"], body
    assert "first" in body["errors"][0]["message"] and "between 0 and 100" in body["errors"][0]["message"]
