"""Scalars of the contract: JSON comes from strawberry (typed); DateTime is built in."""

from __future__ import annotations

from strawberry.scalars import JSON

__all__ = ["JSON"]
