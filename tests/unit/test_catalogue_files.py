"""Catalogue files read as hostile input (infrastructure/catalogue_files.py), and written back so they read the same."""

from __future__ import annotations

import io
import json
import math
import time
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infrastructure.catalogue_files import (
    MAX_DEPTH,
    MAX_FILE_BYTES,
    MAX_NODES,
    CatalogueFileError,
    dump_document,
    parse_document,
    read_source,
)

BILLION_LAUGHS = b"""
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
"""


def yaml(text: str | bytes) -> Any:
    return parse_document(text.encode() if isinstance(text, str) else text, json_format=False).document


def refused(data: bytes, *, json_format: bool = False) -> str:
    with pytest.raises(CatalogueFileError) as caught:
        parse_document(data, json_format=json_format)
    return str(caught.value)


def test_scalars_follow_the_yaml_1_2_core_schema() -> None:
    # given plain scalars that YAML 1.1 (PyYAML's default) would turn into booleans, numbers or dates
    doc = yaml("a: 16:9\nb: no\nc: on\nd: 2024-01-01\ne: 1_000\nf: 0b11\ng: Yes\n")
    # then they stay the strings they look like
    assert doc == {"a": "16:9", "b": "no", "c": "on", "d": "2024-01-01", "e": "1_000", "f": "0b11", "g": "Yes"}
    # and the core schema's own scalars keep their kinds
    assert yaml("a: 12\nb: -3\nc: 0o17\nd: 0x1f\ne: 1.5\nf: 1e3\ng: true\nh: ~\ni:\nj: '12'\nk: !!str 7\n") == {
        "a": 12,
        "b": -3,
        "c": 15,
        "d": 31,
        "e": 1.5,
        "f": 1000.0,
        "g": True,
        "h": None,
        "i": None,
        "j": "12",
        "k": "7",
    }


def test_aliases_and_anchors_are_refused_before_anything_expands() -> None:
    started = time.monotonic()
    assert refused(BILLION_LAUGHS) == "line 2, column 4: anchors (&name) are not allowed"
    assert time.monotonic() - started < 1.0  # refused while composing, not after expanding
    assert "aliases" in refused(b"a: *nowhere\n")
    assert "anchors" in refused(b"base: &base {x: 1}\nother:\n  <<: *base\n")


def test_a_key_given_twice_is_refused_with_its_line() -> None:
    assert refused(b"version: 1\nmodels: []\nversion: 2\n") == 'line 3, column 1: the key "version" is given twice'
    assert refused(b'{"a": 1, "a": 2}', json_format=True) == 'the key "a" is given twice'


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"a: !!python/object/apply:os.system ['true']\n", "the tag tag:yaml.org,2002:python/object/apply:os.system"),
        (b"a: !!binary aGk=\n", "the tag tag:yaml.org,2002:binary is not allowed"),
        (b"a: !!timestamp 2024-01-01\n", "the tag tag:yaml.org,2002:timestamp is not allowed"),
        (b"a: !!set {x}\n", "the tag tag:yaml.org,2002:set is not allowed"),
        (b"a: !custom x\n", "the tag !custom is not allowed"),
        (b"? [a, b]\n: 1\n", "mapping keys must be strings"),
        (b"1: one\n", "mapping keys must be strings"),
        (b"true: yes\n", "mapping keys must be strings"),
        (b"a: .inf\n", "numbers must be finite"),
        (b"a: -.Inf\n", "numbers must be finite"),
        (b"a: .nan\n", "numbers must be finite"),
        (b"a: 1e400\n", "1e400 is out of range"),
        (b"a: " + b"9" * 5000 + b"\n", "numbers may have at most 64 characters"),
        (b"a: 1\n---\nb: 2\n", "but found another document"),
        (b"", "the file is empty"),
        (b"# only a comment\n", "the file is empty"),
        (b"a: \x1b[31m\n", "special characters are not allowed"),
        (b"a: \x00\n", "special characters are not allowed"),
        (b"a: \xff\xfe\n", "not UTF-8 text"),
        (b"a: [1, 2\n", "line 2"),
        (b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1), f"nested deeper than {MAX_DEPTH} levels"),
        (b"[" * 100_000, f"nested deeper than {MAX_DEPTH} levels"),
        (b"[" + b"1," * (MAX_NODES + 1) + b"1]", f"more than {MAX_NODES} values"),
    ],
)
def test_hostile_yaml_is_refused(data: bytes, message: str) -> None:
    assert message in refused(data)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"a": NaN}', "NaN is not JSON"),
        (b'{"a": Infinity}', "Infinity is not JSON"),
        (b'{"a": 1e999}', "1e999 is out of range"),
        (b'{"a": ' + b"1" * 5000 + b"}", "numbers may have at most 64 characters"),
        (b"[" * 100_000 + b"]" * 100_000, f"nested deeper than {MAX_DEPTH} levels"),
        (b'{"a": 1,}', "line 1, column 9"),
        (b'"\xc3\x28"', "not UTF-8 text"),
        (b"[" + b"1," * MAX_NODES + b"1]", f"more than {MAX_NODES} values"),
        (b"[" + b'"",' * MAX_NODES + b'""]', f"more than {MAX_NODES} values"),
        (b"[" + b"[]," * MAX_NODES + b"[]]", f"more than {MAX_NODES} values"),
        (b"{" + b",".join(b'"%d":null' % i for i in range(MAX_NODES // 2)) + b"}", f"more than {MAX_NODES} values"),
    ],
)
def test_hostile_json_is_refused(data: bytes, message: str) -> None:
    assert message in refused(data, json_format=True)


def test_a_file_past_the_limit_is_refused_unread(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * (MAX_FILE_BYTES + 1))
    with pytest.raises(CatalogueFileError, match="larger than"):
        read_source(str(big), stdin=io.BytesIO())
    with pytest.raises(CatalogueFileError, match="larger than"):
        read_source("-", stdin=io.BytesIO(b" " * (MAX_FILE_BYTES + 1)))
    with pytest.raises(CatalogueFileError, match="cannot read"):
        read_source(str(tmp_path / "missing.yaml"), stdin=io.BytesIO())
    assert read_source("-", stdin=io.BytesIO(b"version: 1")) == b"version: 1"


def test_a_byte_order_mark_and_unicode_text_are_accepted() -> None:
    assert yaml("\ufeffname: Caf\u00e9 \u2014 \u65e5\u672c\n") == {"name": "Caf\u00e9 \u2014 \u65e5\u672c"}


def test_each_value_knows_its_line() -> None:
    loaded = parse_document(b"version: 1\nmodels:\n  - slug: a\n    presets:\n      - name: x\n", json_format=False)
    assert loaded.line_of("models[0].presets[0].name") == 5
    assert loaded.line_of("models[0].presets[0].params.steps") == 5  # not in the file: its nearest parent
    assert loaded.line_of("models[0].slug") == 3
    assert loaded.line_of("(document)") is None


def strict(value: Any) -> Any:
    """A value with each scalar tagged by its kind, so True != 1 and 1 != 1.0 when compared."""
    if isinstance(value, dict):
        return {k: strict(v) for k, v in value.items()}
    if isinstance(value, list):
        return [strict(v) for v in value]
    if isinstance(value, float) and math.copysign(1.0, value) < 0 and value == 0:
        return ("float", "-0.0")
    return (type(value).__name__, value)


#: Characters a terminal or an editor would obey or hide (CSI, OSC, ESC, DEL, bidi overrides and
#: isolates, zero-width ones, line separators, a tag character), and the JSON punctuation a
#: count of values in the text must not be fooled by inside a string.
HOSTILE = "\x1b\x9b\x9d\x7f\x85\u202e\u2066\u200b\u200d\u2028\u2029\ufeff\U000e0001" + ',:[]{}"\\'
#: Any text the database can store (no unpaired surrogate), hostile characters often.
TEXT = st.text(st.characters(exclude_categories=["Cs"]) | st.sampled_from(HOSTILE), max_size=30)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT
    | st.sampled_from(["16:9", "no", "on", "0o17", "0x1F", "1e5", ".5", "~", "null", "<<", "=", "2024-01-01", "-.inf"])
)
DOCUMENTS = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4), max_leaves=20
)


@settings(max_examples=400, deadline=None)
@given(DOCUMENTS, st.booleans())
def test_what_is_written_reads_back_the_same(document: Any, json_format: bool) -> None:
    # given any JSON document the export could write (strings of any characters, numbers of any size)
    text = dump_document(document, json_format=json_format)
    # when it is read back, then it is the same value, kinds included
    assert strict(parse_document(text.encode(), json_format=json_format).document) == strict(document)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300) | TEXT.map(str.encode), st.booleans())
def test_any_bytes_are_read_or_refused_with_a_file_error(data: bytes, json_format: bool) -> None:
    try:
        document = parse_document(data, json_format=json_format).document
    except CatalogueFileError as exc:
        assert str(exc)
    else:
        json.dumps(document, allow_nan=False)  # whatever is read is plain, finite JSON


def nodes(value: Any) -> int:
    """The values and keys in `value`, itself included: what MAX_NODES limits."""
    if isinstance(value, dict):
        return 1 + sum(1 + nodes(v) for v in value.values())
    if isinstance(value, list):
        return 1 + sum(nodes(v) for v in value)
    return 1


@settings(max_examples=300, deadline=None)
@given(DOCUMENTS, st.booleans())
def test_the_value_limit_counts_keys_and_values_alike_in_yaml_and_json(document: Any, json_format: bool) -> None:
    # given any document, written as YAML or JSON
    data = dump_document(document, json_format=json_format).encode()
    count = nodes(document)
    # then a limit of exactly its values and keys reads it, and one fewer refuses it
    assert strict(parse_document(data, json_format=json_format, max_nodes=count).document) == strict(document)
    with pytest.raises(CatalogueFileError, match=f"more than {count - 1} values"):
        parse_document(data, json_format=json_format, max_nodes=count - 1)


@pytest.mark.parametrize("json_format", [False, True])
def test_a_megabyte_of_tiny_values_is_refused_in_either_format(json_format: bool) -> None:
    # given a file at the size limit holding one array of half a million values
    data = b"[" + b"0," * ((MAX_FILE_BYTES - 3) // 2) + b"0]"
    assert len(data) <= MAX_FILE_BYTES
    # then it is refused for its values, in YAML as in JSON
    assert f"more than {MAX_NODES} values" in refused(data, json_format=json_format)


#: What a terminal obeys or hides and a reader of the file must see as an escape instead.
HIDDEN_CATEGORIES = ("Cc", "Cf", "Zl", "Zp")


@settings(max_examples=400, deadline=None)
@given(DOCUMENTS, st.booleans())
def test_an_export_shows_every_control_bidi_and_zero_width_character_escaped(document: Any, json_format: bool) -> None:
    # given any stored catalogue text, hostile characters included, written as YAML or JSON
    data = dump_document(document, json_format=json_format).encode("utf-8")
    # then no such character is in the file raw, only its line breaks
    raw = {c for c in data.decode("utf-8") if c != "\n" and unicodedata.category(c) in HIDDEN_CATEGORIES}
    assert raw == set()
    # and the file still reads back as exactly what was written
    assert strict(parse_document(data, json_format=json_format).document) == strict(document)


@pytest.mark.parametrize("json_format", [False, True])
def test_a_name_with_terminal_escapes_is_exported_as_escapes(json_format: bool) -> None:
    # given a name with a CSI and an OSC sequence (C1 forms), a right-to-left override and a zero-width space
    name = "evil\x9b2J\x9d0;owned\x07\u202egnp.exe\u200b caf\u00e9"
    text = dump_document({"name": name, "plain": "caf\u00e9 \u65e5\u672c"}, json_format=json_format)
    # then the hostile name is written with escapes only, while printable text stays readable
    hostile_line = next(line for line in text.splitlines() if "evil" in line)
    assert hostile_line.isprintable() and "\\u202e" in hostile_line.lower()
    assert "caf\u00e9 \u65e5\u672c" in text
    assert parse_document(text.encode(), json_format=json_format).document["name"] == name
