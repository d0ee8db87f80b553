"""A model's provider routes: which providers can run it, in the order they are tried.

``capabilities.routes`` is a list of ``{"provider", "providerModel"?, "params"?}``:
``providerModel`` is that provider's own name for the model (the model's slug when left
out), ``params`` maps our parameter names (declared in ``capabilities.params``) to that
provider's names; parameters not mapped are sent under our names. The first route's
provider is the model's ``provider``. A model without ``routes`` has one route: its
``provider`` with ``capabilities.providerModel``.

Failover (domain/use_cases/routed_submission.py) tries the routes in this order.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from domain.errors import Problems
from domain.text import text_problem

MAX_ROUTES = 8
PROVIDER_RE = re.compile(r"[a-z][a-z0-9_-]{0,31}")
# A provider's parameter name: letters, digits, '_', '.', '-' (not starting with '_', our bookkeeping prefix).
THEIR_PARAM_RE = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")
ROUTE_KEYS = frozenset({"provider", "providerModel", "params"})


@dataclass(frozen=True, slots=True)
class ProviderRoute:
    index: int
    provider: str
    provider_model: str
    params: Mapping[str, str] = field(default_factory=dict)

    def provider_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """`params` under the provider's names (unmapped ones, and `_`-prefixed bookkeeping, unchanged)."""
        return {self.params.get(name, name): value for name, value in params.items()}


def routes_of(*, slug: str, provider: str, capabilities: Mapping[str, Any]) -> tuple[ProviderRoute, ...]:
    """The model's routes in order (written through `route_problems`, so well formed; anything else is skipped)."""
    raw = capabilities.get("routes")
    if isinstance(raw, list) and raw:
        routes = []
        for index, item in enumerate(raw):
            if not isinstance(item, dict) or not isinstance(item.get("provider"), str):
                continue
            model = item.get("providerModel")
            mapping = item.get("params")
            routes.append(
                ProviderRoute(
                    index=index,
                    provider=item["provider"],
                    provider_model=model if isinstance(model, str) and model else slug,
                    params={k: v for k, v in mapping.items() if isinstance(v, str)}
                    if isinstance(mapping, dict)
                    else {},
                )
            )
        if routes:
            return tuple(routes)
    model = capabilities.get("providerModel")
    return (ProviderRoute(0, provider, model if isinstance(model, str) and model else slug),)


def public_capabilities(capabilities: Mapping[str, Any]) -> dict[str, Any]:
    """What every client may read of a model's capabilities: all but its routes (admins read those)."""
    return {key: value for key, value in capabilities.items() if key != "routes"}


def route_problems(
    capabilities: Mapping[str, Any], *, provider: str, known_providers: frozenset[str] | None, problems: Problems
) -> None:
    """Every problem of ``capabilities.routes`` (absent: none), by path such as ``capabilities.routes[1].provider``."""
    if "routes" not in capabilities:
        return
    raw = capabilities["routes"]
    if not isinstance(raw, list) or not raw or len(raw) > MAX_ROUTES:
        problems.add("capabilities.routes", f"must be a list of 1-{MAX_ROUTES} routes")
        return
    specs = capabilities.get("params", {})
    declared = set(specs) if isinstance(specs, dict) else set()
    seen: dict[tuple[str, str | None], int] = {}
    for index, item in enumerate(raw):
        where = f"capabilities.routes[{index}]"
        if not isinstance(item, dict):
            problems.add(where, "must be an object with 'provider', 'providerModel' and 'params'")
            continue
        for key in sorted(set(item) - ROUTE_KEYS, key=str):
            problems.add(f"{where}.{key}", "is not a route field (provider, providerModel, params)")
        name = item.get("provider")
        if not isinstance(name, str) or not PROVIDER_RE.fullmatch(name):
            problems.add(f"{where}.provider", "must be a provider name such as 'simulated' or 'kie'")
        elif known_providers is not None and name not in known_providers:
            problems.add(f"{where}.provider", f"must be one of {sorted(known_providers)}")
        elif index == 0 and name != provider:
            problems.add(f"{where}.provider", "must be the model's provider (the first route is its own)")
        model = item.get("providerModel")
        if "providerModel" in item and not _clean_text(model, 200):
            problems.add(f"{where}.providerModel", "must be a string of 1-200 characters")
        if isinstance(name, str):
            key = (name, model if isinstance(model, str) else None)
            if key in seen:
                problems.add(where, f"repeats capabilities.routes[{seen[key]}]")
            else:
                seen[key] = index
        _mapping_problems(item.get("params", {}), declared, f"{where}.params", problems)


def _mapping_problems(mapping: Any, declared: set[str], where: str, problems: Problems) -> None:
    if not isinstance(mapping, dict):
        problems.add(where, "must be an object mapping our parameter names to the provider's")
        return
    targets: dict[str, str] = {}
    for ours, theirs in mapping.items():
        if ours not in declared:
            problems.add(f"{where}.{ours}", "is not a parameter of this model (capabilities.params)")
        elif not isinstance(theirs, str) or not THEIR_PARAM_RE.fullmatch(theirs):
            problems.add(f"{where}.{ours}", "must be the provider's parameter name (1-64 letters, digits, '_.-')")
        elif theirs in targets:
            problems.add(f"{where}.{ours}", f"maps to {theirs!r} as {targets[theirs]!r} does")
        else:
            targets[theirs] = ours
    for theirs, ours in targets.items():
        if theirs in declared and theirs not in mapping and theirs != ours:
            problems.add(f"{where}.{ours}", f"maps to {theirs!r}, which this model sends unmapped")


def _clean_text(value: Any, max_length: int) -> bool:
    return isinstance(value, str) and 0 < len(value) <= max_length and text_problem(value) is None
