"""The declaration model kept as JSON with each document (``worker.domain.serialize``) comes
back equal, whatever the values: the property's reconciliation decides from it."""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from datetime import UTC, date, datetime
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from worker.domain import model
from worker.domain.serialize import declaration_from_dict, declaration_to_dict


def strategy(tp: typing.Any) -> st.SearchStrategy:
    """Values of ``tp`` (the model's types), every field filled."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        (inner,) = [a for a in typing.get_args(tp) if a is not type(None)]
        return st.none() | strategy(inner)
    if origin is tuple:
        return st.lists(strategy(typing.get_args(tp)[0]), max_size=3).map(tuple)
    if tp is Decimal:
        return st.decimals(allow_nan=False, allow_infinity=False, places=2, min_value=-10**6, max_value=10**6)
    if tp is datetime:
        return st.datetimes(timezones=st.sampled_from([None, UTC]))
    if tp is date:
        return st.dates()
    if dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp)
        return st.builds(tp, **{f.name: strategy(hints[f.name]) for f in dataclasses.fields(tp)})
    return st.from_type(tp)


@settings(max_examples=80, deadline=None)
@given(strategy(model.Declaration))
def test_a_declaration_comes_back_equal_from_json(decl):
    stored = json.loads(json.dumps(declaration_to_dict(decl)))  # as the database keeps it
    assert declaration_from_dict(stored) == decl
