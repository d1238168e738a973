"""Polish identifiers: PESEL, NIP, REGON and postal codes, checked into findings.

The checksums are python-stdnum's (``stdnum.pl.pesel``, ``.nip``, ``.regon``). On top of
it the worker is strict about the form: an identifier is exactly its digits (surrounding
whitespace aside) — no dashes, spaces or ``PL`` prefix, which stdnum would quietly
remove — because the contract stores it as digits and compares it with the signer's. A
PESEL must also carry a real birth date, and, when the filing date is known, one not
after it.

Messages are Polish and never repeat the identifier itself (findings are shown in
several places, and a PESEL does not belong in all of them); ``field`` says which one.

>>> pesel_problem("44051401359") is None
True
>>> pesel_problem("44051401358")
'niezgodna cyfra kontrolna'
>>> [f.code for f in check_nip("1234563219", "NIP")]
['NIP_INVALID']
>>> check_postal_code("47-200", "KodPocztowy")
[]
"""

from __future__ import annotations

import re
from datetime import date

from stdnum.exceptions import InvalidChecksum, InvalidComponent, InvalidFormat, InvalidLength, ValidationError
from stdnum.pl import nip as _nip
from stdnum.pl import pesel as _pesel
from stdnum.pl import regon as _regon

from worker.domain.findings import Finding, finding

_POSTAL_CODE = re.compile(r"[0-9]{2}-[0-9]{3}")
_DIGITS = re.compile(r"[0-9]+")


def _digits_problem(value: str, lengths: tuple[int, ...]) -> str | None:
    if not _DIGITS.fullmatch(value):
        return "może zawierać tylko cyfry, bez kresek, spacji i liter"
    if len(value) not in lengths:
        expected = " albo ".join(str(n) for n in lengths)
        return f"musi składać się z {expected} cyfr (podano {len(value)})"
    return None


def _stdnum_problem(exc: ValidationError) -> str:
    if isinstance(exc, InvalidChecksum):
        return "niezgodna cyfra kontrolna"
    if isinstance(exc, InvalidComponent):
        return "zawiera nieistniejącą datę urodzenia"
    if isinstance(exc, InvalidLength):
        return "ma nieprawidłową liczbę cyfr"
    if isinstance(exc, InvalidFormat):
        return "ma nieprawidłową postać"
    return "jest nieprawidłowy"


def pesel_problem(value: str, *, on: date | None = None) -> str | None:
    """What is wrong with a PESEL (Polish phrase), or ``None`` when it is valid.

    ``on``: the filing date; a birth date after it is not real.

    >>> pesel_problem("44051401359", on=date(1944, 5, 13))
    'data urodzenia zapisana w numerze jest późniejsza niż data złożenia deklaracji'
    >>> pesel_problem("4405140135")
    'musi składać się z 11 cyfr (podano 10)'
    """
    value = value.strip()
    problem = _digits_problem(value, (11,))
    if problem:
        return problem
    try:
        _pesel.validate(value)
        born = _pesel.get_birth_date(value)
    except ValidationError as exc:
        return _stdnum_problem(exc)
    if on is not None and born > on:
        return "data urodzenia zapisana w numerze jest późniejsza niż data złożenia deklaracji"
    return None


def nip_problem(value: str) -> str | None:
    """What is wrong with a NIP, or ``None``.

    >>> nip_problem("7492045956") is None, nip_problem("749-204-59-56") is not None
    (True, True)
    """
    value = value.strip()
    problem = _digits_problem(value, (10,))
    if problem:
        return problem
    try:
        _nip.validate(value)
    except ValidationError as exc:
        return _stdnum_problem(exc)
    return None


def regon_problem(value: str) -> str | None:
    """What is wrong with a REGON (9 or 14 digits), or ``None``.

    >>> regon_problem("160223990") is None, regon_problem("160223991")
    (True, 'niezgodna cyfra kontrolna')
    """
    value = value.strip()
    problem = _digits_problem(value, (9, 14))
    if problem:
        return problem
    try:
        _regon.validate(value)
    except ValidationError as exc:
        return _stdnum_problem(exc)
    return None


def check_pesel(value: str | None, field: str, *, on: date | None = None, required: bool = True) -> list[Finding]:
    """``PESEL_INVALID`` when the PESEL is wrong, or missing while ``required``."""
    if value is None or not value.strip():
        if not required:
            return []
        return [
            finding(
                "PESEL_INVALID",
                field,
                "Brak numeru PESEL. Osoba fizyczna składa deklarację z numerem PESEL.",
            )
        ]
    problem = pesel_problem(value, on=on)
    if problem is None:
        return []
    return [finding("PESEL_INVALID", field, f"Numer PESEL jest nieprawidłowy: {problem}.")]


def check_nip(value: str | None, field: str, *, required: bool = True) -> list[Finding]:
    """``NIP_INVALID`` when the NIP is wrong, or missing while ``required``."""
    if value is None or not value.strip():
        if not required:
            return []
        return [
            finding(
                "NIP_INVALID",
                field,
                "Brak numeru NIP. Instytucja, wspólnota lub spółdzielnia składa deklarację z numerem NIP.",
            )
        ]
    problem = nip_problem(value)
    if problem is None:
        return []
    return [finding("NIP_INVALID", field, f"Numer NIP jest nieprawidłowy: {problem}.")]


def check_regon(value: str | None, field: str) -> list[Finding]:
    """``REGON_INVALID`` when a REGON is given and wrong (it is optional)."""
    if value is None or not value.strip():
        return []
    problem = regon_problem(value)
    if problem is None:
        return []
    return [finding("REGON_INVALID", field, f"Numer REGON jest nieprawidłowy: {problem}.")]


def check_postal_code(value: str | None, field: str) -> list[Finding]:
    """``POSTAL_CODE_INVALID`` unless the value is ``NN-NNN``.

    >>> [f.message for f in check_postal_code("47200", "KodPocztowy")]
    ['Kod pocztowy „47200” jest nieprawidłowy: wymagana postać NN-NNN, np. 47-200.']
    """
    if value is None or not value.strip():
        return [finding("POSTAL_CODE_INVALID", field, "Brak kodu pocztowego.")]
    if _POSTAL_CODE.fullmatch(value.strip()):
        return []
    shown = value.strip()[:20]
    return [
        finding(
            "POSTAL_CODE_INVALID",
            field,
            f"Kod pocztowy „{shown}” jest nieprawidłowy: wymagana postać NN-NNN, np. 47-200.",
        )
    ]


__all__ = [
    "check_nip",
    "check_pesel",
    "check_postal_code",
    "check_regon",
    "nip_problem",
    "pesel_problem",
    "regon_problem",
]
