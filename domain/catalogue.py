"""AI models, presets and the validation of generation parameters against capabilities.

`capabilities` is a JSON object. Recognised keys:

* ``params``: ``{name: {"type": "int"|"number"|"string"|"bool"|"enum",
  "min", "max", "values", "default"}}``; parameters not listed are rejected.
* ``maxPromptLength``: int, defaults to ``MAX_PROMPT_LENGTH``.
* ``maxInputs``: how many input chunks the model accepts (default 0).
* ``deadlineSeconds``: after this long a running generation expires.
* ``providerModel``: the provider's own name for the model.
"""

from __future__ import annotations

import enum
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from domain.errors import Problems

MAX_PROMPT_LENGTH = 4000
DEFAULT_DEADLINE_SECONDS = 15 * 60
SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,62}$")
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
        value = self.capabilities.get("deadlineSeconds", DEFAULT_DEADLINE_SECONDS)
        return int(value) if isinstance(value, int | float) and value > 0 else DEFAULT_DEADLINE_SECONDS

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


def validate_model_fields(*, slug: str, name: str, provider: str, cost_credits: int, capabilities: Any) -> None:
    problems = Problems()
    if not SLUG_RE.match(slug):
        problems.add("slug", "must be 2-63 lowercase letters, digits, '.', '_' or '-'")
    if not name.strip() or len(name) > 200:
        problems.add("name", "must be 1-200 characters")
    if not re.match(r"^[a-z][a-z0-9_-]{0,31}$", provider):
        problems.add("provider", "must be a provider name such as 'simulated' or 'kie'")
    if cost_credits < 0 or cost_credits > MAX_COST:
        problems.add("costCredits", f"must be between 0 and {MAX_COST}")
    if not isinstance(capabilities, dict):
        problems.add("capabilities", "must be a JSON object")
    elif not isinstance(capabilities.get("params", {}), dict):
        problems.add("capabilities.params", "must be a JSON object")
    problems.raise_if_any()


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
    elif kind == "bool":
        if not isinstance(value, bool):
            problems.add(where, "must be true or false")
        return
    elif kind == "enum":
        if value not in spec.get("values", []):
            problems.add(where, f"must be one of {spec.get('values', [])}")
        return
    else:
        if not isinstance(value, str):
            problems.add(where, "must be a string")
            return
        if len(value) > int(spec.get("maxLength", 1000)):
            problems.add(where, "is too long")
        return
    if "min" in spec and value < spec["min"]:
        problems.add(where, f"must be at least {spec['min']}")
    if "max" in spec and value > spec["max"]:
        problems.add(where, f"must be at most {spec['max']}")


def resolve_params(model: AiModel, preset: Preset | None, params: Any, problems: Problems) -> dict[str, Any]:
    """Merge defaults, preset and request params; record every violation in `problems`."""
    if params is None:
        params = {}
    if not isinstance(params, dict):
        problems.add("params", "must be a JSON object")
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
