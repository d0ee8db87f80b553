"""A document's compiled-read memo stays within its bounds whatever a client varies (graph/compiled_memo.py),
and its directive key tells every value of a directive variable apart (graph/compiled_reads.py)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from graph.compiled_memo import MEMO_CHARS, MEMO_SIZE, CompiledMemo
from graph.compiled_reads import directive_key

#: What a hostile client makes the compiled path remember: statements of any size up to the
#: statement bound (and past the memo's), refusals (None), selections (other objects).
VALUES = st.one_of(
    st.none(),
    st.integers(0, 70 * 1024).map(lambda n: "x" * n),
    st.builds(object),
)
KEYS = st.tuples(st.integers(0, 30), st.tuples(st.booleans(), st.booleans(), st.booleans(), st.booleans()))


@settings(max_examples=200, deadline=None)
@given(stream=st.lists(st.tuples(KEYS, VALUES), max_size=300))
def test_a_hostile_stream_of_variants_keeps_the_memo_within_its_bounds(
    stream: list[tuple[tuple[int, tuple[bool, ...]], object]],
) -> None:
    # given a memo, and a stream of variants as a client may send them (repeats included)
    memo = CompiledMemo()
    latest: dict[object, object] = {}
    for key, value in stream:
        # when each is remembered
        memo.put(key, value)
        latest[key] = value
        # then the memo is within both bounds, and holds each key's latest value, its text counted exactly
        assert len(memo) <= MEMO_SIZE
        assert memo.chars <= MEMO_CHARS
        held = [k for k in latest if k in memo]
        assert all(memo.get(k, ...) is latest[k] for k in held)
        assert memo.chars == sum(len(v) for k in held if isinstance(v := latest[k], str))
        # and the latest entry is kept unless it alone is larger than the memo
        if not (isinstance(value, str) and len(value) > MEMO_CHARS):
            assert memo.get(key, ...) is value


def test_the_least_recently_used_entry_goes_first() -> None:
    # given a memo of two entries, the first one read again
    memo = CompiledMemo(max_entries=2)
    memo.put("a", "1")
    memo.put("b", "2")
    assert memo.get("a") == "1"
    # when a third is remembered
    memo.put("c", "3")
    # then the one not used since is the one dropped
    assert ("a" in memo, "b" in memo, "c" in memo) == (True, False, True)


def test_text_past_the_character_bound_drops_the_oldest_statements() -> None:
    memo = CompiledMemo(max_chars=10)
    memo.put("a", "x" * 6)
    memo.put("none", None)
    memo.put("b", "y" * 6)
    assert ("a" in memo, "none" in memo, "b" in memo) == (False, True, True)
    assert memo.chars == 6


DIRECTIVE_VALUES = st.fixed_dictionaries(
    {}, optional={"x": st.sampled_from([True, False, None]), "y": st.sampled_from([True, False, None])}
)


@given(first=DIRECTIVE_VALUES, second=DIRECTIVE_VALUES)
def test_the_directive_key_tells_null_absent_and_false_apart(
    first: dict[str, object], second: dict[str, object]
) -> None:
    # given two sets of coerced directive variables (absent, null, false, true)
    # then they share a key exactly when they are the same values
    same_values = {k: (type(v), v) for k, v in first.items()} == {k: (type(v), v) for k, v in second.items()}
    assert (directive_key(first, ("x", "y")) == directive_key(second, ("x", "y"))) == same_values
