"""Input types built straight from graphql-core's coerced values.

Strawberry converts an input object field by field, resolving each field's type
annotation again on every request (for `GenerateInput`, a sixth of a `generate` call's
GraphQL work in a profile). For an input whose fields are all scalars, or lists of scalars,
graphql-core's coercion already produced the final values, so `scalar_fields_input`
installs strawberry's `from_input` hook with a precomputed field map instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from strawberry.schema.compat import is_scalar
from strawberry.schema.types.scalar import DEFAULT_SCALAR_REGISTRY
from strawberry.types.base import StrawberryList, StrawberryOptional, get_object_definition
from strawberry.utils.str_converters import to_camel_case

T = TypeVar("T")


def _is_scalar(annotation: Any) -> bool:
    if isinstance(annotation, StrawberryOptional):
        return _is_scalar(annotation.of_type)
    return is_scalar(annotation, DEFAULT_SCALAR_REGISTRY)


def _shape(annotation: Any) -> bool | None:
    """True for a list of scalars, False for a scalar, None for anything else."""
    if isinstance(annotation, StrawberryOptional):
        return _shape(annotation.of_type)
    if isinstance(annotation, StrawberryList):
        return True if _is_scalar(annotation.of_type) else None
    return False if _is_scalar(annotation) else None


def scalar_fields_input(cls: type[T]) -> type[T]:
    """Install the fast `from_input` on a `@strawberry.input` class whose fields are all scalars."""
    definition = get_object_definition(cls, strict=True)
    fields: list[tuple[str, str, bool]] = []
    for field in definition.fields:
        is_list = _shape(field.type)
        if is_list is None:
            raise TypeError(f"{cls.__name__}.{field.python_name} is not a scalar or a list of scalars")
        fields.append((field.graphql_name or to_camel_case(field.python_name), field.python_name, is_list))

    def from_input(type_: type, value: Mapping[str, Any], context: Any) -> Any:
        kwargs: dict[str, Any] = {}
        for graphql_name, python_name, is_list in fields:
            if graphql_name in value:
                item = value[graphql_name]
                # A copy: graphql-core hands every request that omits a list the same default.
                kwargs[python_name] = list(item) if is_list and item is not None else item
        return type_(**kwargs)

    definition.from_input = from_input
    return cls
