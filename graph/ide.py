"""GraphiQL page: strawberry's GraphiQL with a genhub example operation and auth instructions."""

from __future__ import annotations

import json
import re

from strawberry.http.ides import get_graphql_ide_html

from infrastructure.settings import Settings

EXAMPLE_OPERATION = """# Welcome to genhub's GraphQL API.
#
# 1. Sign in: run `SignIn` below (or use the token `genhub serve` printed).
# 2. Open the "Headers" tab at the bottom and paste:
#      {"Authorization": "Bearer <accessToken>"}
#    It authenticates HTTP requests and the subscription WebSocket alike.
# 3. Run `Catalogue`, then put a model id in the "Variables" tab:
#      {"modelId": "<id>"}
# 4. Run `Start`, add its generation id to the variables ({"modelId": "...", "id": "<id>"})
#    and run `Watch` (a subscription over WebSocket): status and progress arrive live.
#
# Press the play button and pick an operation. More: docs/clients.md (client
# examples), docs/schema.md (every operation), and the live demo page at /demo.

mutation SignIn {
  login(input: {email: "%(email)s", password: "%(password)s"}) {
    __typename
    ... on AuthPayload { accessToken expiresIn user { id email } }
    ... on Error { code message }
  }
}

query Catalogue {
  me { email role }
  credits { balance reserved available }
  models { id slug name kind costCredits }
}

mutation Start($modelId: ID!) {
  generate(input: {modelId: $modelId, prompt: "a lighthouse at dawn"}) {
    __typename
    ... on GenerateSuccess { generation { id status } }
    ... on Error { code message }
  }
}

subscription Watch($id: ID!) {
  generationUpdated(id: $id) {
    previousStatus
    at
    generation { status progress outputs { url } error { code message } }
  }
}
"""


def graphiql_page(settings: Settings) -> str:
    html = get_graphql_ide_html("graphiql")
    example = EXAMPLE_OPERATION % {"email": settings.demo_email, "password": settings.demo_password}
    if not settings.should_seed_demo:
        example = example.replace(
            f'login(input: {{email: "{settings.demo_email}", password: "{settings.demo_password}"}})',
            'login(input: {email: "you@example.com", password: "your password"})',
        )
    html = re.sub(
        r"const EXAMPLE_QUERY = `.*?`;",
        lambda _: "const EXAMPLE_QUERY = " + json.dumps(example) + ";",
        html,
        count=1,
        flags=re.S,
    )
    return html.replace("<title>Strawberry GraphiQL</title>", "<title>genhub GraphiQL</title>")
