"""Small builders of domain objects for tests (no I/O)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal

from worker.domain import model

PESEL = "44051401359"  # the unsigned sample's declarant (fictitious, valid checksum)


def address(**kw) -> model.Address:
    base = dict(postal_code="47-200", town="Kędzierzyn-Koźle", building="12", street="Piastowska")
    base.update(kw)
    return model.Address(**base)


def declaration(residents: int = 2, *, purpose: str = model.FIRST, applies_from: date = date(2025, 3, 1),
                filed_at: datetime | None = None, pesel: str = PESEL, building: str = "12", **kw) -> model.Declaration:
    rate = Decimal("38.00")
    decl = model.Declaration(
        form="DO-1/2025",
        purpose=purpose,
        applies_from=applies_from,
        declarant=model.Declarant(model.PERSON, "WLASCICIEL", address(), pesel=pesel, first_name="Jan", last_name="Testowy"),
        property=model.Property("Kędzierzyn-Koźle", address(building=building), model.RESIDENTIAL, model.SINGLE_FAMILY),
        monthly_fee=rate * residents,
        residential=model.ResidentialPart(
            dwellings=(model.Dwelling(residents),),
            composting=False,
            lines=(model.CalculationLine("osoby 1-4", residents, rate, rate * residents),),
            fee=rate * residents,
        ),
        filed_at=filed_at or datetime(2025, 3, 5, 10, 0, tzinfo=UTC),
        channel=model.EPUAP,
    )
    return replace(decl, **kw) if kw else decl
