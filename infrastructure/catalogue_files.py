"""Catalogue files (YAML or JSON) read as untrusted input, and the catalogue written back as one.

The file is operator input, read as if an attacker wrote it:

* at most `MAX_FILE_BYTES`, strict UTF-8;
* YAML through PyYAML's safe machinery with YAML 1.2 core-schema scalars, so `no`, `on`,
  `16:9` and `2024-01-01` stay strings (YAML 1.1 would make a boolean, the integer 969 and a
  date of them); no anchors or aliases (no "billion laughs"), no merge keys, no tags but the
  core ones, one document only;
* a mapping key given twice is refused (YAML and JSON parsers would keep the last silently);
* nesting deeper than `MAX_DEPTH`, more than `MAX_NODES` values (keys included, counted
  the same way for YAML and JSON, before a value is built), non-finite or over-long
  numbers, and keys that are not strings are refused.

Every refusal is a `CatalogueFileError` naming the line (YAML) where it is. A loaded YAML
file also maps each value's path (`models[0].capabilities.params.steps`) to its line, so
a problem the domain finds can be shown where it is.

`dump_document` writes text that reads back as the same value and carries no character
that is not printable (controls, bidi and zero-width characters, line and paragraph
separators) except the file's own line breaks: such characters are written as escapes,
so showing an exported file in a terminal or an editor shows what it holds.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Final

import yaml
from yaml.composer import Composer
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import BaseResolver
from yaml.scanner import Scanner

from infrastructure.json_input import nesting_depth, node_count

MAX_FILE_BYTES: Final = 1024 * 1024
MAX_DEPTH: Final = 32
MAX_NODES: Final = 100_000
MAX_NUMBER_LENGTH: Final = 64

TAG = "tag:yaml.org,2002:"
NULL, BOOL, INT, FLOAT, STR, SEQ, MAP = (TAG + t for t in ("null", "bool", "int", "float", "str", "seq", "map"))


class CatalogueFileError(ValueError):
    """The file cannot be read as a catalogue document at all; the message says where and why."""


@dataclass(frozen=True, slots=True)
class LoadedDocument:
    document: Any
    lines: dict[str, int] = field(default_factory=dict)  # path -> 1-based line (YAML files)

    def line_of(self, path: str) -> int | None:
        """The line of `path`, or of the nearest enclosing value the file shows."""
        while path:
            if path in self.lines:
                return self.lines[path]
            cut = max(path.rfind("."), path.rfind("["))
            path = path[:cut] if cut > 0 else ""
        return None


class _CoreResolver(BaseResolver):
    """YAML 1.2 core schema: only these plain scalars are not strings."""


for _tag, _pattern, _first in (
    (NULL, r"~|null|Null|NULL|", ["~", "n", "N", ""]),
    (BOOL, r"true|True|TRUE|false|False|FALSE", list("tTfF")),
    (INT, r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+", list("-+0123456789")),
    (
        FLOAT,
        r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)",
        list("-+.0123456789"),
    ),
):
    _CoreResolver.add_implicit_resolver(_tag, re.compile(rf"^(?:{_pattern})$"), _first)


class _Loader(Reader, Scanner, Parser, Composer, _CoreResolver):
    """PyYAML's pure-Python reader, parser and composer on the core schema, with limits; `_value` builds the values."""

    def __init__(self, text: str, *, max_nodes: int) -> None:
        Reader.__init__(self, text)
        Scanner.__init__(self)
        Parser.__init__(self)
        Composer.__init__(self)
        _CoreResolver.__init__(self)
        self.depth = 0
        self.nodes = 0
        self.max_nodes = max_nodes

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent):
            raise _at(event.start_mark, "aliases (*name) are not allowed")
        if getattr(event, "anchor", None) is not None:
            raise _at(event.start_mark, "anchors (&name) are not allowed")
        self.nodes += 1
        if self.nodes > self.max_nodes:
            raise _at(event.start_mark, f"more than {self.max_nodes} values")
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise _at(event.start_mark, f"nested deeper than {MAX_DEPTH} levels")
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def _at(mark: Any, message: str) -> CatalogueFileError:
    return CatalogueFileError(f"line {mark.line + 1}, column {mark.column + 1}: {message}")


def read_source(source: str, *, stdin: BinaryIO) -> bytes:
    """The bytes of a file path, or of standard input for `-`; refused past MAX_FILE_BYTES."""
    try:
        if source == "-":
            data = stdin.read(MAX_FILE_BYTES + 1)
        else:
            with open(source, "rb") as file:
                data = file.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise CatalogueFileError(f"cannot read {source}: {exc.strerror or exc}") from exc
    if len(data) > MAX_FILE_BYTES:
        raise CatalogueFileError(f"larger than {MAX_FILE_BYTES} bytes")
    return data


def parse_document(data: bytes, *, json_format: bool, max_nodes: int = MAX_NODES) -> LoadedDocument:
    """The document in `data` (JSON when `json_format`, else YAML), or CatalogueFileError."""
    if len(data) > MAX_FILE_BYTES:
        raise CatalogueFileError(f"larger than {MAX_FILE_BYTES} bytes")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CatalogueFileError(f"not UTF-8 text (byte {exc.start})") from exc
    return LoadedDocument(_parse_json(text, max_nodes)) if json_format else _parse_yaml(text, max_nodes)


def _parse_yaml(text: str, max_nodes: int) -> LoadedDocument:
    loader: _Loader | None = None
    try:
        loader = _Loader(text, max_nodes=max_nodes)
        node = loader.get_single_node()
    except CatalogueFileError:
        raise
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise _at(mark, exc.problem or "invalid YAML") if mark else CatalogueFileError("invalid YAML") from exc
    except yaml.reader.ReaderError as exc:
        raise CatalogueFileError(f"character {exc.position + 1}: {exc.reason} (#x{exc.character:04x})") from exc
    except yaml.YAMLError as exc:
        raise CatalogueFileError(f"invalid YAML: {exc}") from exc
    finally:
        if loader is not None:
            loader.dispose()
    if node is None:
        raise CatalogueFileError("the file is empty")
    lines: dict[str, int] = {}
    return LoadedDocument(_value(node, "", lines), lines)


def _value(node: Node, path: str, lines: dict[str, int]) -> Any:
    if path:
        lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, ScalarNode):
        return _scalar(node)
    if isinstance(node, SequenceNode) and node.tag == SEQ:
        return [_value(item, f"{path}[{i}]", lines) for i, item in enumerate(node.value)]
    if isinstance(node, MappingNode) and node.tag == MAP:
        mapping: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node) if isinstance(key_node, ScalarNode) else None
            if not isinstance(key, str) or key_node.tag != STR:
                raise _at(key_node.start_mark, "mapping keys must be strings")
            if key in mapping:
                raise _at(key_node.start_mark, f"the key {json.dumps(key)} is given twice")
            child = f"{path}.{key}" if path else key
            lines.setdefault(child, key_node.start_mark.line + 1)
            mapping[key] = _value(value_node, child, lines)
        return mapping
    raise _at(node.start_mark, f"the tag {node.tag} is not allowed")


def _scalar(node: ScalarNode) -> Any:
    value: str = node.value
    tag = node.tag
    if tag == STR:
        return value
    if tag == NULL and re.fullmatch(r"~|null|Null|NULL|", value):
        return None
    if tag == BOOL and re.fullmatch(r"true|True|TRUE|false|False|FALSE", value):
        return value.lower() == "true"
    if tag in (INT, FLOAT) and len(value) > MAX_NUMBER_LENGTH:
        raise _at(node.start_mark, f"numbers may have at most {MAX_NUMBER_LENGTH} characters")
    if tag == INT and re.fullmatch(r"[-+]?[0-9]+", value):
        return int(value, 10)
    if tag == INT and re.fullmatch(r"0o[0-7]+|0x[0-9a-fA-F]+", value):
        return int(value[2:], 8 if value[1] == "o" else 16)
    if tag == FLOAT and re.fullmatch(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?", value):
        number = float(value)
        if math.isfinite(number):
            return number
        raise _at(node.start_mark, f"{value} is out of range")
    if tag == FLOAT:
        raise _at(node.start_mark, "numbers must be finite (no .inf or .nan)")
    raise _at(node.start_mark, f"the tag {tag} is not allowed here")


def _parse_json(text: str, max_nodes: int) -> Any:
    if nesting_depth(text) > MAX_DEPTH:
        raise CatalogueFileError(f"nested deeper than {MAX_DEPTH} levels")
    # The decoder's hooks see numbers and objects but not strings, literals or arrays, so
    # the values are counted in the text, before any is built. A cheap bound comes first.
    bound = 1 + sum(text.count(c) for c in ",:[{")
    if bound > max_nodes and node_count(text) > max_nodes:
        raise CatalogueFileError(f"more than {max_nodes} values")
    try:
        return _JSON.decode(text)
    except json.JSONDecodeError as exc:
        raise CatalogueFileError(f"line {exc.lineno}, column {exc.colno}: {exc.msg}") from exc
    except ValueError as exc:  # a duplicate key, a non-finite or over-long number
        raise CatalogueFileError(str(exc)) from exc


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    mapping: dict[str, Any] = {}
    for key, value in pairs:
        if key in mapping:
            raise ValueError(f"the key {json.dumps(key)} is given twice")
        mapping[key] = value
    return mapping


def _json_number(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        if len(text) > MAX_NUMBER_LENGTH:
            raise ValueError(f"numbers may have at most {MAX_NUMBER_LENGTH} characters")
        number = kind(text)
        if isinstance(number, float) and not math.isfinite(number):
            raise ValueError(f"{text} is out of range")
        return number

    return parse


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_JSON = json.JSONDecoder(
    object_pairs_hook=_unique_keys,
    parse_float=_json_number(float),
    parse_int=_json_number(int),
    parse_constant=_refuse_constant,
)


class _Dumper(yaml.SafeDumper):
    """Quotes every string that YAML 1.1 or the 1.2 core schema would read as something else.

    A string with a character that is not printable (a line break such as U+0085, a control,
    a bidi or zero-width character) is written double-quoted with every character outside
    ASCII escaped: plain or single-quoted, a line break would be folded into a space when
    read back, and with `allow_unicode` PyYAML writes U+202E or U+200B raw even in double
    quotes. Printable text keeps its own characters.
    """

    def represent_str(self, data: str) -> yaml.ScalarNode:
        if data.isprintable():
            return super().represent_str(data)
        return self.represent_scalar(STR, data, style='"')

    def write_double_quoted(self, text: str, split: bool = True) -> None:
        unicode = self.allow_unicode
        self.allow_unicode = unicode and text.isprintable()
        try:
            super().write_double_quoted(text, split)
        finally:
            self.allow_unicode = unicode


_Dumper.add_representer(str, _Dumper.represent_str)


for _tag, _regexp in (
    (tag, regexp) for resolvers in _CoreResolver.yaml_implicit_resolvers.values() for tag, regexp in resolvers
):
    _Dumper.add_implicit_resolver(_tag, _regexp, None)


def dump_document(document: Any, *, json_format: bool) -> str:
    """`document` as YAML or JSON text: every character printable but the line breaks between values."""
    if json_format:
        text = json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False)
        # Only strings can hold such a character (json.dumps escapes C0 controls itself),
        # and there a JSON escape stands for it.
        return "".join(c if c.isprintable() or c == "\n" else _json_escape(c) for c in text) + "\n"
    written: str = yaml.dump(
        document, Dumper=_Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False, width=100
    )
    return written


def _json_escape(char: str) -> str:
    """`char` as a JSON escape (a surrogate pair past the Basic Multilingual Plane)."""
    code = ord(char)
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"
