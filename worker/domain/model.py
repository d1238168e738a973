"""The declaration model: one typed, immutable shape for every DO-1 version and channel.

Form mappers (``worker.forms``) and the scan mapper produce it; the checks, the fee rules
and the loader consume it. No I/O here. Money is ``Decimal``; dates are ``date``.
Enumerated values keep the contract's English names (``FIRST``, ``RESIDENTIAL``…); the
e-form's Polish values are translated by the mappers.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

# purposes (CelZlozenia/Rodzaj)
FIRST = "FIRST"  # PIERWSZA
CHANGE = "CHANGE"  # NOWA
CORRECTION = "CORRECTION"  # KOREKTA

# property kinds (RodzajNieruchomosci)
RESIDENTIAL = "RESIDENTIAL"  # ZAMIESZKALA
NON_RESIDENTIAL = "NON_RESIDENTIAL"  # NIEZAMIESZKALA
MIXED = "MIXED"  # MIESZANA

# building types (RodzajZabudowy)
SINGLE_FAMILY = "SINGLE_FAMILY"  # JEDNORODZINNA
MULTI_FLAT = "MULTI_FLAT"  # WIELOLOKALOWA

# declarant kinds
PERSON = "PERSON"
INSTITUTION = "INSTITUTION"

# channels
EPUAP = "EPUAP"
PAPER = "PAPER"


@dataclass(frozen=True)
class Address:
    postal_code: str
    town: str
    building: str
    street: str | None = None
    flat: str | None = None
    post_office: str | None = None


@dataclass(frozen=True)
class Declarant:
    kind: str  # PERSON or INSTITUTION
    legal_title: str  # TytulPrawny as on the form (WLASCICIEL, ZARZADCA, …)
    address: Address
    pesel: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    institution_name: str | None = None
    nip: str | None = None
    regon: str | None = None
    other_id: str | None = None  # InnyIdentyfikator "TYPE:VALUE" when a person has no PESEL
    emails: tuple[str, ...] = ()
    phones: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        if self.kind == PERSON:
            return " ".join(p for p in (self.first_name, self.last_name) if p)
        return self.institution_name or ""


@dataclass(frozen=True)
class Property:
    gmina: str  # as written on the form; the rules give the canonical name
    address: Address
    kind: str  # RESIDENTIAL / NON_RESIDENTIAL / MIXED
    building_type: str | None = None  # SINGLE_FAMILY / MULTI_FLAT / None
    parcel: str | None = None
    precinct: str | None = None  # Obreb


@dataclass(frozen=True)
class Dwelling:
    residents: int
    number: str | None = None  # NrLokalu; None for a single-family house


@dataclass(frozen=True)
class CalculationLine:
    """One declared line of the residential calculation (Wyliczenie/Pozycja)."""

    description: str
    persons: int
    rate: Decimal
    amount: Decimal


@dataclass(frozen=True)
class ResidentialPart:
    dwellings: tuple[Dwelling, ...]
    composting: bool
    lines: tuple[CalculationLine, ...]
    fee: Decimal  # declared Wyliczenie/Oplata
    composting_discount: Decimal | None = None  # declared ZwolnienieKompostownik

    @property
    def residents(self) -> int:
        return sum(d.residents for d in self.dwellings)


@dataclass(frozen=True)
class ContainerLine:
    """One declared container line (CzescNiezamieszkala/Pojemnik)."""

    capacity_l: int
    count: int
    emptyings_per_year: int
    rate: Decimal
    amount: Decimal


@dataclass(frozen=True)
class NonResidentialPart:
    containers: tuple[ContainerLine, ...]
    fee: Decimal  # declared CzescNiezamieszkala/Oplata


@dataclass(frozen=True)
class Attachment:
    filename: str
    format: str
    size: int  # decoded bytes
    description: str | None = None


@dataclass(frozen=True)
class Declaration:
    form: str  # "DO-1/2025"
    purpose: str  # FIRST / CHANGE / CORRECTION
    applies_from: date
    declarant: Declarant
    property: Property
    monthly_fee: Decimal  # declared OplataMiesieczna
    residential: ResidentialPart | None = None
    non_residential: NonResidentialPart | None = None
    change_reason: str | None = None  # PrzyczynaZmiany as on the form (SMIERC_MIESZKANCA, …)
    justification: str | None = None  # Uzasadnienie
    e_correspondence: bool | None = None  # ZgodaNaKorespondencjeElektroniczna
    statement: bool = True  # Oswiadczenie
    attachments: tuple[Attachment, ...] = ()
    filed_at: datetime | None = None  # set from the channel: ePUAP dataNadania, paper DataWplywu
    channel: str | None = None  # EPUAP / PAPER, set by the pipeline

    @builtins.property  # the field `property` above shadows the builtin in this class body
    def residents(self) -> int:
        return self.residential.residents if self.residential else 0

    @builtins.property  # the field `property` above shadows the builtin in this class body
    def composting(self) -> bool:
        return bool(self.residential and self.residential.composting)

    @builtins.property  # the field `property` above shadows the builtin in this class body
    def form_code(self) -> str:
        return self.form.split("/", 1)[0]

    @builtins.property  # the field `property` above shadows the builtin in this class body
    def form_version(self) -> str:
        return self.form.split("/", 1)[1] if "/" in self.form else ""


__all__ = [
    "Address",
    "Attachment",
    "CalculationLine",
    "ContainerLine",
    "Declarant",
    "Declaration",
    "Dwelling",
    "NonResidentialPart",
    "Property",
    "ResidentialPart",
]
