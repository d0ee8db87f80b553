"""`@defer` and `@stream` are refused with one clear error: genhub does not deliver incrementally.

The schema does not declare the directives, so graphql-core would answer "Unknown directive"
and a client could not tell a typo from a feature the server lacks. `unsupported_directive`
finds the first use of either directive (on a field, an inline fragment, a spread or a
fragment definition) and says what to do instead; docs/clients.md ("@defer and @stream")
says why the server does not offer them.
"""

from __future__ import annotations

from graphql import BREAK, DirectiveNode, DocumentNode, GraphQLError, Visitor, visit

INCREMENTAL_DIRECTIVES = frozenset({"defer", "stream"})


class _FirstIncrementalDirective(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.found: DirectiveNode | None = None

    def enter_directive(self, node: DirectiveNode, *_: object) -> object:
        if node.name.value in INCREMENTAL_DIRECTIVES:
            self.found = node
            return BREAK
        return None


def unsupported_directive(document: DocumentNode) -> GraphQLError | None:
    """The refusal of a document that uses `@defer` or `@stream` (None: it uses neither)."""
    finder = _FirstIncrementalDirective()
    visit(document, finder)
    if finder.found is None:
        return None
    name = finder.found.name.value
    return GraphQLError(
        f"@{name} is not supported by this server: responses are never delivered incrementally. "
        f"Remove @{name}; the fields it marks then arrive in the one response "
        '(docs/clients.md, "@defer and @stream").',
        nodes=[finder.found],
        extensions={"code": "GRAPHQL_VALIDATION_FAILED", "unsupportedDirective": name},
    )
