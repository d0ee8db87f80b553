"""What a document's limits measure — depth, aliases, fragments, spreads — in one pass per fragment.

A fragment spread stands for its fragment's whole selection, so a naive walk expands it
again at every spread: a chain of k fragments each spreading the previous one n times
costs n**k steps: a small anonymous request could stall the process (docs/benchmarks.md). Here each
fragment definition is measured once and its measure reused (`visits` counts the
expansions, so tests can prove it), which keeps the analysis linear in the document's
length. A cycle of fragments (invalid by the specification's NoFragmentCyclesRule, which
reports it) counts as nothing here instead of recursing.

The depth and alias rules keep strawberry's semantics (QueryDepthLimiter and
MaxAliasesLimiter: depth counts fields that have a selection, introspection fields are
free; aliases are counted through fragment expansion) and their messages.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
)

#: How often one response name may be selected at one merged level, and how many selections
#: (fields and spreads, fragments expanded) a document may make in all: see `merge_problems`.
MAX_SAME_NAME = 10
MAX_EXPANDED_SELECTIONS = 10_000
#: The count past which numbers stop growing: a document's measures are compared with
#: limits far below it, and saturating keeps the arithmetic on small integers.
SATURATED = 2**62


def fragments_of(document: DocumentNode) -> dict[str, FragmentDefinitionNode]:
    return {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}


class DocumentShape:
    """Depth and alias counts of one document, each fragment measured once."""

    def __init__(self, fragments: Mapping[str, FragmentDefinitionNode]) -> None:
        self.fragments = fragments
        self.visits: Counter[str] = Counter()  # fragment name -> times its selection was walked
        self._depth: dict[str, int] = {}
        self._aliases: dict[str, int] = {}

    def depth(self, selection_set: SelectionSetNode | None) -> int:
        deepest = 0
        for selection in selection_set.selections if selection_set else ():
            if isinstance(selection, FieldNode):
                if selection.selection_set is not None and not selection.name.value.startswith("__"):
                    deepest = max(deepest, 1 + self.depth(selection.selection_set))
            elif isinstance(selection, InlineFragmentNode):
                deepest = max(deepest, self.depth(selection.selection_set))
            elif isinstance(selection, FragmentSpreadNode):
                deepest = max(deepest, self._fragment(selection.name.value, self._depth, self.depth))
        return deepest

    def aliases(self, selection_set: SelectionSetNode | None) -> int:
        total = 0
        for selection in selection_set.selections if selection_set else ():
            if isinstance(selection, FieldNode):
                total += (selection.alias is not None) + self.aliases(selection.selection_set)
            elif isinstance(selection, InlineFragmentNode):
                total += self.aliases(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                total += self._fragment(selection.name.value, self._aliases, self.aliases)
        return min(total, SATURATED)

    def _fragment(self, name: str, memo: dict[str, int], measure: Callable[[SelectionSetNode | None], int]) -> int:
        if name in memo:
            return memo[name]
        fragment = self.fragments.get(name)
        if fragment is None:
            return 0  # unknown fragment: KnownFragmentNamesRule reports it
        memo[name] = 0  # a cycle back to this fragment counts as nothing
        self.visits[name] += 1
        memo[name] = measure(fragment.selection_set)
        return memo[name]


def spread_count(document: DocumentNode) -> int:
    """Fragment spreads written in the document (as written, not expanded)."""
    count = 0
    pending: list[SelectionSetNode] = [
        d.selection_set for d in document.definitions if isinstance(d, OperationDefinitionNode | FragmentDefinitionNode)
    ]
    while pending:
        for selection in pending.pop().selections:
            if isinstance(selection, FragmentSpreadNode):
                count += 1
            elif isinstance(selection, FieldNode | InlineFragmentNode) and selection.selection_set is not None:
                pending.append(selection.selection_set)
    return count


def shape_problems(
    document: DocumentNode,
    fragments: Mapping[str, FragmentDefinitionNode],
    *,
    max_depth: int,
    max_aliases: int,
    max_fragments: int,
    max_spreads: int,
) -> list[GraphQLError]:
    """The document's fragments, spreads, depth and aliases against their limits (empty: within all)."""
    if len(fragments) > max_fragments:
        return [GraphQLError(f"{len(fragments)} fragments defined. Allowed: {max_fragments}")]
    spreads = spread_count(document)
    if spreads > max_spreads:
        return [GraphQLError(f"{spreads} fragment spreads found. Allowed: {max_spreads}")]
    problems: list[GraphQLError] = []
    shape = DocumentShape(fragments)
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    for operation in operations:
        if shape.depth(operation.selection_set) > max_depth:
            name = operation.name.value if operation.name else "anonymous"
            problems.append(GraphQLError(f"'{name}' exceeds maximum operation depth of {max_depth}", [operation]))
    aliases = min(sum(shape.aliases(o.selection_set) for o in operations), SATURATED)
    if aliases > max_aliases:
        problems.append(GraphQLError(f"{aliases} aliases found. Allowed: {max_aliases}"))
    return problems


def merge_problems(
    operation: OperationDefinitionNode,
    fragments: Mapping[str, FragmentDefinitionNode],
    *,
    max_same_name: int,
    max_fields: int,
) -> list[GraphQLError]:
    """Fields that graphql-core's OverlappingFieldsCanBeMerged would compare pair by pair, bounded.

    That rule compares every two fields answering under one name, and the fields of their
    selections merged together: its work grows with the square of the repeats at each
    level (one field repeated in a small document stalled the process: docs/benchmarks.md). Here the
    operation's selections are merged the way execution merges them (fragments expanded,
    fields of one name together) and each name may appear `max_same_name` times per
    merged level; the walk stops past `max_fields` expanded fields (which the cost limit
    normally reaches first: this bounds the walk itself, unknown fields included).
    """
    expanded = 0
    # each entry: the selection sets merged at one level, and the fragments expanded above it
    pending: list[tuple[list[SelectionSetNode], frozenset[str]]] = [([operation.selection_set], frozenset())]
    while pending:
        sets, above = pending.pop()
        groups: dict[str, list[FieldNode]] = {}
        here: set[str] = set()  # a fragment spread twice at one level is compared once (as graphql-core does)
        stack = list(sets)
        while stack:
            for selection in stack.pop().selections:
                expanded += 1  # spreads too
                if expanded > max_fields:
                    return [GraphQLError(f"The document selects more than {max_fields} fields once expanded.")]
                if isinstance(selection, FieldNode):
                    name = (selection.alias or selection.name).value
                    groups.setdefault(name, []).append(selection)
                elif isinstance(selection, InlineFragmentNode):
                    stack.append(selection.selection_set)
                elif isinstance(selection, FragmentSpreadNode):
                    fragment = fragments.get(selection.name.value)
                    if fragment is not None and fragment.name.value not in here and fragment.name.value not in above:
                        here.add(fragment.name.value)  # (a cycle is NoFragmentCyclesRule's to report)
                        stack.append(fragment.selection_set)
        for name, fields in groups.items():
            if len(fields) > max_same_name:
                return [
                    GraphQLError(
                        f"'{name}' is selected {len(fields)} times at one level (fragments included). "
                        f"Allowed: {max_same_name}",
                        fields[:1],
                    )
                ]
            inner = [f.selection_set for f in fields if f.selection_set is not None]
            if inner:
                pending.append((inner, above | here))
    return []
