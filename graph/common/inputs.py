"""Input types built straight from graphql-core's coerced values.

Strawberry converts an input object field by field, resolving each field's type
annotation again on every request (for `GenerateInput`, a sixth of a `generate` call's
GraphQL work in a profile). For an input whose fields are all scalars, enums, lists of
those, or inputs built the same way, graphql-core's coercion already produced the final
values (an enum's value, which the enum class turns back into its member), so
`scalar_fields_input` installs strawberry's `from_input` hook with a precomputed field map.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from strawberry.schema.compat import is_scalar
from strawberry.schema.types.scalar import DEFAULT_SCALAR_REGISTRY
from strawberry.types.base import StrawberryList, StrawberryOptional, get_object_definition
from strawberry.types.enum import StrawberryEnumDefinition
from strawberry.utils.str_converters import to_camel_case

T = TypeVar("T")
Convert = Callable[[Any, Any], Any]


def _same(value: Any, context: Any) -> Any:
    return value


def _leaf(annotation: Any) -> Convert | None:
    """How a scalar or enum value is built from its coerced value; None for anything else."""
    if isinstance(annotation, StrawberryOptional):
        return _leaf(annotation.of_type)
    if isinstance(annotation, StrawberryEnumDefinition):
        members: Any = annotation.wrapped_cls
        return lambda value, context: members(value)
    if is_scalar(annotation, DEFAULT_SCALAR_REGISTRY):
        return _same
    definition = get_object_definition(annotation)
    if definition is not None and definition.is_input and definition.from_input is not None:
        build = definition.from_input
        return lambda value, context: build(annotation, value, context)
    return None


def _converter(annotation: Any) -> Convert | None:
    """How one field's value is built (lists copied: graphql-core shares defaults); None: not supported."""
    if isinstance(annotation, StrawberryOptional):
        return _converter(annotation.of_type)
    if isinstance(annotation, StrawberryList):
        item = _leaf(annotation.of_type)
        if item is None:
            return None
        if item is _same:
            return lambda value, context: list(value)
        return lambda value, context: [item(v, context) for v in value]
    return _leaf(annotation)


def scalar_fields_input(cls: type[T]) -> type[T]:
    """Install the fast `from_input` on a `@strawberry.input` class whose fields are scalars, enums, lists of
    those, or inputs that have it installed themselves."""
    definition = get_object_definition(cls, strict=True)
    fields: list[tuple[str, str, Convert]] = []
    for field in definition.fields:
        convert = _converter(field.type)
        if convert is None:
            raise TypeError(f"{cls.__name__}.{field.python_name} is not a scalar or a list of scalars")
        fields.append((field.graphql_name or to_camel_case(field.python_name), field.python_name, convert))

    def from_input(type_: type, value: Mapping[str, Any], context: Any) -> Any:
        kwargs: dict[str, Any] = {}
        for graphql_name, python_name, convert in fields:
            if graphql_name in value:
                item = value[graphql_name]
                kwargs[python_name] = convert(item, context) if item is not None else None
        return type_(**kwargs)

    definition.from_input = from_input
    return cls
