"""AI models, presets and the validation of generation parameters against capabilities.

`capabilities` is a JSON object. Recognised keys:

* ``params``: ``{name: {"type": "int"|"number"|"string"|"bool"|"enum",
  "min", "max", "values", "maxLength", "default"}}``; parameters not listed are rejected.
  ``min``/``max`` bound int and number params, ``values`` lists an enum's choices,
  ``maxLength`` bounds a string (default 1000); a ``default`` must itself be valid.
* ``maxPromptLength``: int, defaults to ``MAX_PROMPT_LENGTH``.
* ``maxInputs``: how many input chunks the model accepts (default 0, at most ``MAX_INPUTS``).
* ``deadlineSeconds``: after this long a running generation expires.
* ``providerModel``: the provider's own name for the model.
* ``routes``: the providers that can run the model, in the order they are tried
  (domain/provider_routes.py); without it the model has one route, its ``provider``.

`validate_model_fields` checks all of this when an admin writes a model, so a malformed
spec is refused there instead of failing every later request.
"""

from __future__ import annotations

import enum
import math
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from domain.errors import Problems
from domain.provider_routes import ProviderRoute, route_problems, routes_of
from domain.text import json_problem, name_problem, text_problem

MAX_PROMPT_LENGTH = 4000
DEFAULT_DEADLINE_SECONDS = 15 * 60


def deadline_seconds_of(capabilities: Mapping[str, Any] | None) -> int:
    """A model's deadline from its capabilities (`deadlineSeconds`), else the default (also for a model gone)."""
    value = (capabilities or {}).get("deadlineSeconds", DEFAULT_DEADLINE_SECONDS)
    return int(value) if isinstance(value, int | float) and value > 0 else DEFAULT_DEADLINE_SECONDS


# Matched whole (`fullmatch`): `$` would also accept a trailing newline.
SLUG_RE = re.compile(r"[a-z0-9][a-z0-9._-]{1,62}")
PROVIDER_RE = re.compile(r"[a-z][a-z0-9_-]{0,31}")
PARAM_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
MAX_COST = 1_000_000


class ModelKind(enum.StrEnum):
    IMAGE = "image"
    VIDEO = "video"


@dataclass(frozen=True, slots=True)
class AiModel:
    id: uuid.UUID
    slug: str
    name: str
    provider: str
    kind: ModelKind
    cost_credits: int
    capabilities: dict[str, Any] = field(default_factory=dict)
    is_active: bool = True

    @property
    def deadline_seconds(self) -> int:
        return deadline_seconds_of(self.capabilities)

    @property
    def routes(self) -> tuple[ProviderRoute, ...]:
        return routes_of(slug=self.slug, provider=self.provider, capabilities=self.capabilities)

    @property
    def max_inputs(self) -> int:
        value = self.capabilities.get("maxInputs", 0)
        return int(value) if isinstance(value, int) and value >= 0 else 0

    @property
    def max_prompt_length(self) -> int:
        value = self.capabilities.get("maxPromptLength", MAX_PROMPT_LENGTH)
        return int(value) if isinstance(value, int) and 0 < value <= MAX_PROMPT_LENGTH else MAX_PROMPT_LENGTH


@dataclass(frozen=True, slots=True)
class Preset:
    id: uuid.UUID
    model_id: uuid.UUID
    name: str
    params: dict[str, Any] = field(default_factory=dict)


PARAM_TYPES = ("int", "number", "string", "bool", "enum")
DEFAULT_MAX_STRING_PARAM = 1000
MAX_INPUTS = 16  # input files per generation, whatever a model's capabilities say
MAX_PARAMS = 100


def validate_model_fields(*, slug: str, name: str, provider: str, cost_credits: int, capabilities: Any) -> None:
    model_problems(
        slug=slug, name=name, provider=provider, cost_credits=cost_credits, capabilities=capabilities
    ).raise_if_any()


def model_problems(
    *,
    slug: str,
    name: str,
    provider: str,
    cost_credits: int,
    capabilities: Any,
    known_providers: frozenset[str] | None = None,
) -> Problems:
    """Every problem of a model's fields (upsertModel and the catalogue file); `known_providers` None: any name."""
    problems = Problems()
    if not SLUG_RE.fullmatch(slug):
        problems.add("slug", "must be 2-63 lowercase letters, digits, '.', '_' or '-'")
    if (why := name_problem(name)) is not None:
        problems.add("name", why)
    if not PROVIDER_RE.fullmatch(provider):
        problems.add("provider", "must be a provider name such as 'simulated' or 'kie'")
    elif known_providers is not None and provider not in known_providers:
        problems.add("provider", f"must be one of {sorted(known_providers)}")
    if cost_credits < 0 or cost_credits > MAX_COST:
        problems.add("costCredits", f"must be between 0 and {MAX_COST}")
    if not isinstance(capabilities, dict):
        problems.add("capabilities", "must be a JSON object")
    elif (why := json_problem(capabilities)) is not None:
        problems.add("capabilities", why)
    else:
        _check_capabilities(capabilities, problems)
        route_problems(capabilities, provider=provider, known_providers=known_providers, problems=problems)
    return problems


def preset_problems(model: AiModel, *, name: str, params: Any) -> Problems:
    """Every problem of a preset of `model` (upsertPreset and the catalogue file)."""
    problems = preset_shape_problems(name=name, params=params)
    if not problems.items:
        resolve_params(model, None, params, problems)
    return problems


def preset_shape_problems(*, name: str, params: Any) -> Problems:
    """What is wrong with a preset before its model is known: its name, and params not being an object."""
    problems = Problems()
    if (why := name_problem(name)) is not None:
        problems.add("name", why)
    if not isinstance(params, dict):
        problems.add("params", "must be a JSON object")
    return problems


def _check_capabilities(capabilities: dict[str, Any], problems: Problems) -> None:
    """Refuse what would otherwise fail (or be silently ignored) on every later `generate`."""
    for key, low, high in (
        ("maxPromptLength", 1, MAX_PROMPT_LENGTH),
        ("maxInputs", 0, MAX_INPUTS),
        ("deadlineSeconds", 1, 7 * 24 * 3600),
    ):
        if key in capabilities and not _int_between(capabilities[key], low, high):
            problems.add(f"capabilities.{key}", f"must be an integer between {low} and {high}")
    if "providerModel" in capabilities and not _clean_text(capabilities["providerModel"], 200):
        problems.add("capabilities.providerModel", "must be a string of 1-200 characters")
    specs = capabilities.get("params", {})
    if not isinstance(specs, dict):
        problems.add("capabilities.params", "must be a JSON object")
        return
    if len(specs) > MAX_PARAMS:
        problems.add("capabilities.params", f"must declare at most {MAX_PARAMS} parameters")
        return
    for name, spec in specs.items():
        where = f"capabilities.params.{name}"
        if not PARAM_NAME_RE.fullmatch(name):
            problems.add(where, "must be named with 1-64 letters, digits or '_' (not starting with a digit)")
        elif not isinstance(spec, dict):
            problems.add(where, "must be a JSON object")
        else:
            _check_spec(name, spec, problems)


def _check_spec(name: str, spec: dict[str, Any], problems: Problems) -> None:
    where = f"capabilities.params.{name}"
    kind = spec.get("type", "string")
    if kind not in PARAM_TYPES:
        problems.add(f"{where}.type", f"must be one of {', '.join(PARAM_TYPES)}")
        return
    before = len(problems.items)
    if kind in ("int", "number"):
        for bound in ("min", "max"):
            if bound in spec and not _is_number(spec[bound], integral=kind == "int"):
                problems.add(f"{where}.{bound}", f"must be {'an integer' if kind == 'int' else 'a finite number'}")
        if len(problems.items) == before and "min" in spec and "max" in spec and spec["min"] > spec["max"]:
            problems.add(f"{where}.min", "must not be greater than max")
    elif kind == "enum":
        values = spec.get("values")
        if not isinstance(values, list) or not values or not all(_is_enum_value(v) for v in values):
            problems.add(f"{where}.values", "must be a non-empty list of strings, numbers or booleans")
    elif kind == "string" and "maxLength" in spec and not _int_between(spec["maxLength"], 1, 100_000):
        problems.add(f"{where}.maxLength", "must be an integer between 1 and 100000")
    if len(problems.items) == before and "default" in spec:
        # The default must itself be a valid value: it is used whenever a request leaves it out.
        defaults = Problems()
        _check_param(name, spec, spec["default"], defaults)
        for problem in defaults.items:
            problems.add(f"{where}.default", problem.message)


def _is_number(value: Any, *, integral: bool) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return isinstance(value, int) if integral else math.isfinite(value)


def _int_between(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _clean_text(value: Any, max_length: int) -> bool:
    return isinstance(value, str) and 0 < len(value) <= max_length and text_problem(value) is None


def _is_enum_value(value: Any) -> bool:
    if isinstance(value, str):
        return text_problem(value) is None
    return isinstance(value, bool | int) or (isinstance(value, float) and math.isfinite(value))


def same_value(a: Any, b: Any) -> bool:
    """Equal and of the same JSON kind (in Python, True == 1; 1 == 1.0 stays equal, as in JSON)."""
    return a == b and isinstance(a, bool) == isinstance(b, bool)


def _check_param(name: str, spec: dict[str, Any], value: Any, problems: Problems) -> None:
    kind = spec.get("type", "string")
    where = f"params.{name}"
    if kind == "int":
        if not isinstance(value, int) or isinstance(value, bool):
            problems.add(where, "must be an integer")
            return
    elif kind == "number":
        if not isinstance(value, int | float) or isinstance(value, bool):
            problems.add(where, "must be a number")
            return
        if isinstance(value, float) and not math.isfinite(value):
            problems.add(where, "must be a finite number")
            return
    elif kind == "bool":
        if not isinstance(value, bool):
            problems.add(where, "must be true or false")
        return
    elif kind == "enum":
        values = spec.get("values")
        values = values if isinstance(values, list) else []
        if not any(same_value(value, allowed) for allowed in values):
            problems.add(where, f"must be one of {values}")
        return
    else:
        if not isinstance(value, str):
            problems.add(where, "must be a string")
            return
        max_length = spec.get("maxLength", DEFAULT_MAX_STRING_PARAM)
        if len(value) > (max_length if _int_between(max_length, 1, 100_000) else DEFAULT_MAX_STRING_PARAM):
            problems.add(where, "is too long")
        elif (why := text_problem(value)) is not None:
            problems.add(where, why)
        return
    if "min" in spec and _is_number(spec["min"], integral=False) and value < spec["min"]:
        problems.add(where, f"must be at least {spec['min']}")
    if "max" in spec and _is_number(spec["max"], integral=False) and value > spec["max"]:
        problems.add(where, f"must be at most {spec['max']}")


def resolve_params(model: AiModel, preset: Preset | None, params: Any, problems: Problems) -> dict[str, Any]:
    """Merge defaults, preset and request params; record every violation in `problems`."""
    if params is None:
        params = {}
    if not isinstance(params, dict):
        problems.add("params", "must be a JSON object")
        return {}
    if (why := json_problem(params)) is not None:
        problems.add("params", why)
        return {}
    specs: dict[str, Any] = model.capabilities.get("params", {}) or {}
    merged: dict[str, Any] = {k: s["default"] for k, s in specs.items() if isinstance(s, dict) and "default" in s}
    if preset is not None:
        merged.update(preset.params)
    merged.update(params)
    for name, value in merged.items():
        spec = specs.get(name)
        if not isinstance(spec, dict):
            problems.add(f"params.{name}", "is not supported by this model")
            continue
        _check_param(name, spec, value, problems)
    return merged
