"""JSON that comes from outside (HTTP bodies and parameters, WebSocket frames, provider callbacks), decoded safely.

Python's JSON parser recurses once per `[` or `{`: 5,000 of them raise RecursionError deep
inside the decoder (and on a small thread stack could crash the process). `loads` counts
the nesting first, without recursion, and refuses anything deeper than `MAX_DEPTH` before
the parser sees it. It also refuses what JSON itself cannot carry (NaN, Infinity, 1e999)
and integers past Python's 4,300-digit limit. Every refusal is a `JsonInputError`, a
ValueError whose message is short enough for a WebSocket close reason. Sizes are the
callers' business (MAX_BODY_BYTES, WS_MAX_MESSAGE_BYTES, the callback limit).
"""

from __future__ import annotations

import json
import math
import re
from itertools import accumulate
from typing import Any, Final

#: Deepest nesting of arrays and objects accepted in client JSON. GraphQL variables need a
#: handful of levels; 64 leaves room for JSON scalars while keeping every recursive walk
#: over the value (the decoder's, graphql-core's coercion, our own checks) shallow.
MAX_DEPTH: Final = 64

# A JSON string, or an unterminated one running to the end of the text: every match
# attempt that starts at a quote succeeds, so the scan stays linear (possessive
# quantifiers give nothing back) whatever an attacker puts after the quote.
_STRING = re.compile(r'"(?:[^"\\]++|\\.)*+(?:"|\\?\Z)', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]++")
_STEP: Final = {"[": 1, "{": 1, "]": -1, "}": -1}


class JsonInputError(ValueError):
    """Client JSON the server will not decode; the message says why in a few words."""


def nesting_depth(text: str) -> int:
    """How deep arrays and objects nest in `text` (JSON), counted without recursion.

    Strings are skipped, so brackets inside them do not count. For text that is not JSON
    the count may be too high, never too low for the part a JSON parser would read
    before it fails: a decoder given text whose depth is within a limit stays within it.
    """
    if text.count("[") + text.count("{") == 0:
        return 0
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    return max(0, max(accumulate(map(_STEP.__getitem__, brackets)), default=0))


_EMPTY_CONTAINER = re.compile(r"\[\s*+\]|\{\s*+\}")


def node_count(text: str) -> int:
    """How many values and object keys `text` (JSON) holds, counted without parsing it.

    A container of n members adds n - 1 commas, an object's member a colon as well, so for
    JSON the count is 1 + commas + colons + non-empty containers (strings are skipped). It
    is what a YAML composer counts as nodes for the same text. For text that is not JSON
    it is a count of those characters, no more.
    """
    bare = _STRING.sub('""', text)
    containers = bare.count("[") + bare.count("{") - len(_EMPTY_CONTAINER.findall(bare))
    return 1 + bare.count(",") + bare.count(":") + containers


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):  # 1e999: no JSON (nor jsonb) value can hold it
        raise ValueError(f"{text[:20]} is out of range")
    return number


# Built once: `json.loads(..., parse_float=...)` would build a decoder per call.
_DECODER = json.JSONDecoder(parse_float=_finite_float, parse_constant=_refuse_constant)


def loads(data: str | bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """`json.loads` for client input: JsonInputError for anything invalid, too deep or out of range.

    Bytes may be UTF-8, -16 or -32 (RFC 8259 detection); invalid ones are refused too.
    """
    try:
        text = data.decode(json.detect_encoding(data), "surrogatepass") if isinstance(data, bytes) else data
    except ValueError as exc:  # UnicodeDecodeError
        raise JsonInputError("not valid UTF-8 text") from exc
    # A cheap bound first: nesting cannot be deeper than the number of opening brackets.
    if text.count("[") + text.count("{") > max_depth and nesting_depth(text) > max_depth:
        raise JsonInputError(f"JSON nested deeper than {max_depth} levels")
    try:
        return _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise JsonInputError(f"invalid JSON: {exc.msg} (character {exc.pos})") from exc
    except ValueError as exc:  # NaN/Infinity/1e999, or an integer past int()'s digit limit
        raise JsonInputError(f"unacceptable JSON number ({str(exc)[:60]})") from exc
    except RecursionError as exc:  # not reached after the depth check; kept as a last line
        raise JsonInputError("JSON nested too deeply") from exc
