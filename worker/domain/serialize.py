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
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from worker.domain import model


def _encode(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return {f.name: _encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple):
        return [_encode(v) for v in value]
    if isinstance(value, (Decimal, datetime, date)):
        return value.isoformat() if not isinstance(value, Decimal) else str(value)
    return value


def declaration_to_dict(decl: model.Declaration) -> dict[str, Any]:
    encoded: dict[str, Any] = _encode(decl)
    return encoded


def _decode(tp: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _decode(args[0], value)
    if origin is tuple:
        (inner, _) = typing.get_args(tp)
        return tuple(_decode(inner, v) for v in value)
    if tp is Decimal:
        return Decimal(value)
    if tp is datetime:
        return datetime.fromisoformat(value)
    if tp is date:
        return date.fromisoformat(value)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        hints = _hints(tp)
        return tp(**{f.name: _decode(hints[f.name], value[f.name]) for f in dataclasses.fields(tp) if f.name in value})
    return value


@functools.cache
def _hints(tp: type) -> dict[str, Any]:
    return typing.get_type_hints(tp)


def declaration_from_dict(data: dict[str, Any]) -> model.Declaration:
    decoded: model.Declaration = _decode(model.Declaration, data)
    return decoded
