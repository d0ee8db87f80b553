"""The diff `genhub catalogue apply` prints (entrypoints/catalogue_command.py): escaped, bounded, never hiding a change."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from domain.catalogue_plan import MAX_LISTED_CHANGES, NOT_SET, Action, CataloguePlan, FieldChange, ModelPlan
from entrypoints.catalogue_command import MAX_SHOWN_VALUE, change_parts, change_text, plan_lines, shown_value

#: Characters a terminal obeys or hides (ESC, CSI, OSC, DEL, bidi controls, zero-width ones, a tag
#: character), a backslash and a quote (JSON escapes them), and plain text.
HOSTILE = '\x1b\x9b\x9d\x7f\x85\u202e\u2066\u200b\u2028\ufeff\U000e0001\\"ab'
TEXT = st.text(st.sampled_from(HOSTILE) | st.characters(exclude_categories=["Cs"]), max_size=200)
VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)
#: Two values that agree on a long common start, the way two long capability strings do.
PREFIXED = st.tuples(TEXT, TEXT, TEXT).map(lambda t: ("x" * 100 + t[0] + t[1], "x" * 100 + t[0] + t[2]))


def test_two_values_that_differ_only_after_the_cut_are_shown_where_they_differ() -> None:
    # given two values alike for their first hundred characters
    change = FieldChange("capabilities.providerModel", "x" * 100 + "a-tail", "x" * 100 + "b-tail")
    # when the change is shown
    before, after, note = change_parts(change)
    # then both are shown from just before the difference, which they show, and the line says where it is
    assert before.startswith("...x") and "xa-tail" in before
    assert after.startswith("...x") and "xb-tail" in after
    assert note == " (they differ from character 102)"


def test_a_long_value_is_cut_between_escapes_never_inside_one() -> None:
    # given a long name whose cut falls among escaped right-to-left overrides
    shown = shown_value("a" * 50 + "\u202e" * 20)
    # then each override is shown as a whole escape up to the cut, and the cut is marked
    assert shown.endswith("\\u202e...") and len(shown) <= MAX_SHOWN_VALUE
    assert "\u202e" not in shown


def test_a_model_lists_a_bounded_number_of_changes_and_counts_the_rest() -> None:
    # given a model whose capabilities changed in more places than are listed
    changes = tuple(FieldChange(f"capabilities.params.p{i}", NOT_SET, i) for i in range(MAX_LISTED_CHANGES + 7))
    plan = CataloguePlan((ModelPlan("many", Action.UPDATE, changes),))
    # when the diff is printed
    lines = plan_lines(plan, prune=False)
    # then the first changes are listed, and the others are counted
    listed = [line for line in lines if line.startswith("    capabilities.")]
    assert listed == [f"    capabilities.params.p{i}: (not set) -> {i}" for i in range(MAX_LISTED_CHANGES)]
    assert "    and 7 more change(s)" in lines


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.tuples(VALUES, VALUES), PREFIXED), st.booleans())
def test_a_change_is_always_shown_as_a_change_on_one_safe_line(values: tuple[Any, Any], unset: bool) -> None:
    # given a change: two values whose JSON differs, or a value that was not set before
    before, after = values
    assume(unset or json.dumps(before, sort_keys=True) != json.dumps(after, sort_keys=True))
    change = FieldChange("name", NOT_SET if unset else before, after)
    # when it is shown, then the two sides differ, nothing on the line is a control or an invisible character
    shown_before, shown_after, _ = change_parts(change)
    assert shown_before != shown_after
    line = change_text(change)
    assert line.isprintable()
    # and the line stays short, however long or escaped the values are
    assert len(line) <= len("name: ") + 2 * MAX_SHOWN_VALUE + len(" -> ") + len(" (they differ from character )") + 8
