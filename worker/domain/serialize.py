"""The declaration model as plain JSON data, and back (kept with the document, so fee
periods can be recomputed without re-reading raw documents).

>>> from datetime import date
>>> from decimal import Decimal
>>> from worker.domain.model import Address, Declarant, Declaration, Property
>>> a = Address("47-200", "Kędzierzyn-Koźle", "12", street="Piastowska")
>>> d = Declaration(form="DO-1/2025", purpose="FIRST", applies_from=date(2025, 1, 20),
...                 declarant=Declarant("PERSON", "WLASCICIEL", a, pesel="44051401359"),
...                 property=Property("Kędzierzyn-Koźle", a, "RESIDENTIAL"), monthly_fee=Decimal("174.50"))
>>> declaration_from_dict(declaration_to_dict(d)) == d
True
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from worker.domain import model


def _encode(value: Any) -> Any:
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, tuple):
        return [_encode(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    names = _field_names(type(value))
    if names is not None:
        return {name: _encode(getattr(value, name)) for name in names}
    return value


_FIELD_NAMES: dict[type, tuple[str, ...] | None] = {}


def _field_names(cls: type) -> tuple[str, ...] | None:
    """The field names of a dataclass (None: not one), looked up once per class."""
    try:
        return _FIELD_NAMES[cls]
    except KeyError:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in dataclasses.fields(cls)) if dataclasses.is_dataclass(cls) else None
        return names


def declaration_to_dict(decl: model.Declaration) -> dict[str, Any]:
    encoded: dict[str, Any] = _encode(decl)
    return encoded


def _optional(decode: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: None if value is None else decode(value)


@functools.cache
def _decoder(tp: Any) -> Callable[[Any], Any]:
    """The function that decodes a JSON value into ``tp`` (built once per type)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _decoder(args[0])
    if origin is tuple:
        inner = _decoder(typing.get_args(tp)[0])
        return _optional(lambda value: tuple(inner(v) for v in value))
    if tp is Decimal:
        return _optional(Decimal)
    if tp is datetime:
        return _optional(datetime.fromisoformat)
    if tp is date:
        return _optional(date.fromisoformat)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp)
        fields = [(f.name, _decoder(hints[f.name])) for f in dataclasses.fields(tp)]
        cls = tp
        return _optional(lambda value: cls(**{name: decode(value[name]) for name, decode in fields if name in value}))
    return lambda value: value


def declaration_from_dict(data: dict[str, Any]) -> model.Declaration:
    decoded: model.Declaration = _decoder(model.Declaration)(data)
    return decoded
