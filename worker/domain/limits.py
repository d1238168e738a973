"""What the eBOK columns can hold, checked before anything is loaded (no I/O).

Content that does not fit a column must never be a technical failure — PostgreSQL refuses
an over-long ``varchar`` where SQLite stores it — so both behave the same: a value longer
than its column is a ``SCHEMA_INVALID`` finding naming the field and the limit (never the
value), and what is loaded is cut to the column (the raw document keeps every byte). An
e-mail address or phone number that is not one (or is longer than its column) is an
informational ``CONTACT_INVALID`` finding and is not stored: contact data is not part of
the fee, so it never rejects the declaration. The limits equal the column lengths of ``adapters/db/tables.py`` (a test compares
them).

>>> from worker.domain.model import Address
>>> fit_text("Kowalska-Wiśniewska", 10)
'Kowalska-W'
>>> is_email("jan.kowalski@example.pl"), is_email("jan kowalski"), is_email("a@b")
(True, False, False)
>>> is_phone("+48 601 234 567"), is_phone("601-234-567"), is_phone("brak")
(True, True, False)
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from worker.domain import model
from worker.domain.findings import Finding, finding

#: model attribute → (eBOK column, its length)
PAYER_LIMITS = {
    "first_name": ("ebok_payer.first_name", 100),
    "last_name": ("ebok_payer.last_name", 100),
    "name": ("ebok_payer.name", 300),
    "institution_name": ("ebok_payer.name", 300),
    "regon": ("ebok_payer.regon", 14),
    "email": ("ebok_payer.email", 254),
    "phone": ("ebok_payer.phone", 20),
}
ADDRESS_LIMITS = {
    "postal_code": 6,
    "town": 100,
    "street": 100,
    "building": 20,
    "flat": 20,
}
PROPERTY_LIMITS = {"parcel": ("ebok_property.parcel", 50), "gmina": ("ebok_property.gmina", 100)}

# the field names findings use: the scan export's for paper, the e-form's for ePUAP
_FIELDS_PAPER = {
    "first_name": "skladajacy.imie", "last_name": "skladajacy.nazwisko", "institution_name": "skladajacy.nazwa",
    "name": "skladajacy.imie", "regon": "skladajacy.regon", "email": "skladajacy.email", "phone": "skladajacy.telefon",
    "parcel": "nieruchomosc.nr_dzialki", "gmina": "nieruchomosc.gmina",
}
_FIELDS_EPUAP = {
    "first_name": "Skladajacy/Osoba/Imie", "last_name": "Skladajacy/Osoba/Nazwisko",
    "institution_name": "Skladajacy/Instytucja/NazwaInstytucji", "name": "Skladajacy/Osoba",
    "regon": "Skladajacy/Instytucja/IdInstytucji/REGON", "email": "Skladajacy/Kontakt/Email",
    "phone": "Skladajacy/Kontakt/Telefon", "parcel": "Nieruchomosc/NrDzialki", "gmina": "Nieruchomosc/Gmina",
}
_ADDRESS_PAPER = {"postal_code": "kod_pocztowy", "town": "miejscowosc", "street": "ulica", "building": "budynek", "flat": "lokal"}
_ADDRESS_EPUAP = {"postal_code": "KodPocztowy", "town": "Miejscowosc", "street": "Ulica", "building": "Budynek", "flat": "Lokal"}

_EMAIL = re.compile(r"[^@\s]+@[^@\s.]+(\.[^@\s.]+)+")
_PHONE_CHARS = re.compile(r"\+?[0-9 ()./-]+")


def fit_text(value: str, limit: int) -> str:
    return value[:limit]


def is_email(value: str) -> bool:
    return len(value) <= 254 and _EMAIL.fullmatch(value) is not None


def is_phone(value: str) -> bool:
    digits = sum(c.isdigit() for c in value)
    return _PHONE_CHARS.fullmatch(value) is not None and 7 <= digits <= 15


def _field(channel: str | None, attr: str) -> str:
    return (_FIELDS_PAPER if channel == model.PAPER else _FIELDS_EPUAP)[attr]


def _address_field(channel: str | None, prefix: str, attr: str) -> str:
    if channel == model.PAPER:
        return f"{prefix}.adres.{_ADDRESS_PAPER[attr]}"
    base = "Skladajacy/AdresZamieszkania/Adres" if prefix == "skladajacy" else "Nieruchomosc/Adres"
    return f"{base}/{_ADDRESS_EPUAP[attr]}"


def _too_long(field: str, length: int, limit: int) -> Finding:
    return finding("SCHEMA_INVALID", field, f"Wartość jest za długa ({length} znaków); mieści się najwyżej {limit} znaków.")


def _fit_address(address: model.Address, channel: str | None, prefix: str, out: list[Finding]) -> model.Address:
    changes = {}
    for attr, limit in ADDRESS_LIMITS.items():
        value = getattr(address, attr)
        if value is not None and len(value) > limit:
            out.append(_too_long(_address_field(channel, prefix, attr), len(value), limit))
            changes[attr] = fit_text(value, limit)
    return dataclasses.replace(address, **changes) if changes else address


def fit_declaration(decl: model.Declaration, channel: str | None) -> tuple[model.Declaration, list[Finding]]:
    """``decl`` cut to what the eBOK columns hold, and the findings saying what did not fit."""
    out: list[Finding] = []
    who = decl.declarant
    changes: dict[str, Any] = {}
    for attr in ("first_name", "last_name", "institution_name", "regon"):
        value = getattr(who, attr)
        limit = PAYER_LIMITS[attr][1]
        if value is not None and len(value) > limit:
            out.append(_too_long(_field(channel, attr), len(value), limit))
            changes[attr] = fit_text(value, limit)
    emails = []
    for value in who.emails:
        if not is_email(value):
            out.append(finding("CONTACT_INVALID", _field(channel, "email"), "Podany adres e-mail nie jest poprawnym adresem e-mail; nie został zapisany."))
        else:
            emails.append(value)
    phones = []
    for value in who.phones:
        if not is_phone(value):
            out.append(finding("CONTACT_INVALID", _field(channel, "phone"), "Podany numer telefonu nie jest poprawnym numerem telefonu "
                                                                             "(7–15 cyfr, dozwolone +, spacje, nawiasy i myślniki); nie został zapisany."))
        elif len(value) > PAYER_LIMITS["phone"][1]:
            limit = PAYER_LIMITS["phone"][1]
            out.append(finding("CONTACT_INVALID", _field(channel, "phone"), f"Numer telefonu jest za długi ({len(value)} znaków; mieści się najwyżej {limit}); nie został zapisany."))
        else:
            phones.append(value)
    if tuple(emails) != who.emails:
        changes["emails"] = tuple(emails)
    if tuple(phones) != who.phones:
        changes["phones"] = tuple(phones)
    address = _fit_address(who.address, channel, "skladajacy", out)
    if address is not who.address:
        changes["address"] = address
    if changes:
        who = dataclasses.replace(who, **changes)
    name_limit = PAYER_LIMITS["name"][1]
    if who.kind == model.PERSON and len(who.name) > name_limit:  # each part fits, together they do not
        out.append(_too_long(_field(channel, "name"), len(who.name), name_limit))
        half = (name_limit - 1) // 2
        who = dataclasses.replace(who, first_name=fit_text(who.first_name or "", half), last_name=fit_text(who.last_name or "", half))

    prop = decl.property
    prop_changes: dict[str, Any] = {}
    for attr, (_, limit) in PROPERTY_LIMITS.items():
        value = getattr(prop, attr)
        if value is not None and len(value) > limit:
            out.append(_too_long(_field(channel, attr), len(value), limit))
            prop_changes[attr] = fit_text(value, limit)
    p_address = _fit_address(prop.address, channel, "nieruchomosc", out)
    if p_address is not prop.address:
        prop_changes["address"] = p_address
    if prop_changes:
        prop = dataclasses.replace(prop, **prop_changes)
    if who is decl.declarant and prop is decl.property:
        return decl, out
    return dataclasses.replace(decl, declarant=who, property=prop), out
