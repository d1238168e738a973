"""PESEL, NIP, REGON and postal codes: strict digits, real checksums, Polish messages without the number."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from worker.domain.identifiers import (
    check_nip,
    check_pesel,
    check_postal_code,
    check_regon,
    nip_problem,
    pesel_problem,
    regon_problem,
)

PESEL_WEIGHTS = (1, 3, 7, 9, 1, 3, 7, 9, 1, 3)
NIP_WEIGHTS = (6, 5, 7, 2, 3, 4, 5, 6, 7)


def pesel_for(born: date, serial: int) -> str:
    """A PESEL built by the published rule (independently of python-stdnum)."""
    offset = {18: 80, 19: 0, 20: 20, 21: 40, 22: 60}[born.year // 100]
    body = f"{born.year % 100:02d}{born.month + offset:02d}{born.day:02d}{serial:04d}"
    check = (10 - sum(w * int(c) for w, c in zip(PESEL_WEIGHTS, body, strict=False)) % 10) % 10
    return body + str(check)


@given(st.dates(min_value=date(1800, 1, 1), max_value=date(2299, 12, 31)), st.integers(0, 9999))
def test_pesel_by_the_published_rule(born, serial):
    pesel = pesel_for(born, serial)
    assert pesel_problem(pesel) is None
    assert check_pesel(pesel, "PESEL") == []
    wrong = pesel[:-1] + str((int(pesel[-1]) + 1) % 10)
    assert pesel_problem(wrong) == "niezgodna cyfra kontrolna"


@given(st.integers(0, 10**9 - 1))
def test_nip_by_the_published_rule(prefix):
    body = f"{prefix:09d}"
    check = sum(w * int(c) for w, c in zip(NIP_WEIGHTS, body, strict=False)) % 11
    if check == 10:  # no valid NIP has this prefix
        assert all(nip_problem(body + str(d)) for d in range(10))
        return
    assert nip_problem(body + str(check)) is None
    assert nip_problem(body + str((check + 1) % 10)) == "niezgodna cyfra kontrolna"


@pytest.mark.parametrize(
    "value, problem",
    [
        ("44051401359", None),
        (" 44051401359 ", None),
        ("44051401358", "niezgodna cyfra kontrolna"),
        ("4405140135", "musi składać się z 11 cyfr (podano 10)"),
        ("440514013591", "musi składać się z 11 cyfr (podano 12)"),
        ("4405-1401359", "może zawierać tylko cyfry, bez kresek, spacji i liter"),
        ("4405140135X", "może zawierać tylko cyfry, bez kresek, spacji i liter"),
        ("٤٤051401359", "może zawierać tylko cyfry, bez kresek, spacji i liter"),
        ("44133101357", "zawiera nieistniejącą datę urodzenia"),
        ("00000000000", "zawiera nieistniejącą datę urodzenia"),
    ],
)
def test_pesel_cases(value, problem):
    assert pesel_problem(value) == problem


def test_pesel_birth_date_not_after_filing():
    pesel = pesel_for(date(2025, 3, 1), 123)
    assert pesel_problem(pesel, on=date(2025, 3, 1)) is None
    assert pesel_problem(pesel, on=date(2025, 3, 1) - timedelta(days=1)) is not None


def test_pesel_findings():
    (f,) = check_pesel("44051401358", "Skladajacy/Osoba/IdOsoby/PESEL")
    assert (f.code, f.severity, f.field) == ("PESEL_INVALID", "error", "Skladajacy/Osoba/IdOsoby/PESEL")
    assert "44051401358" not in f.message and "PESEL" in f.message
    assert [x.code for x in check_pesel(None, "P")] == ["PESEL_INVALID"]
    assert [x.code for x in check_pesel("  ", "P")] == ["PESEL_INVALID"]
    assert check_pesel(None, "P", required=False) == []


@pytest.mark.parametrize(
    "value, ok",
    [
        ("7492045956", True),  # the union's own NIP
        ("1234563218", True),
        ("1234563219", False),
        ("749-204-59-56", False),
        ("PL7492045956", False),
        ("749204595", False),
        ("", False),
    ],
)
def test_nip_cases(value, ok):
    assert (nip_problem(value) is None) is ok


def test_nip_findings():
    assert [f.code for f in check_nip(None, "NIP")] == ["NIP_INVALID"]
    assert "Brak numeru NIP" in check_nip("", "NIP")[0].message
    assert check_nip(None, "NIP", required=False) == []
    (f,) = check_nip("1234563219", "NIP")
    assert f.severity == "error" and "1234563219" not in f.message


@pytest.mark.parametrize(
    "value, ok",
    [
        ("160223990", True),  # the union's own REGON
        ("123456785", True),
        ("12345678512347", True),
        ("160223991", False),
        ("12345678512346", False),
        ("12345678612347", False),  # 14 digits: the inner 9-digit check fails
        ("1234567", False),
        ("16022399O", False),
    ],
)
def test_regon_cases(value, ok):
    assert (regon_problem(value) is None) is ok


def test_regon_is_optional():
    assert check_regon(None, "REGON") == [] and check_regon("", "REGON") == []
    assert [f.code for f in check_regon("160223991", "REGON")] == ["REGON_INVALID"]


@pytest.mark.parametrize(
    "value, ok",
    [("47-200", True), (" 46-380 ", True), ("00-001", True), ("47200", False), ("47-2000", False),
     ("4a-200", False), ("47 200", False), ("٤٧-٢٠٠", False), ("", False), (None, False)],
)
def test_postal_codes(value, ok):
    found = check_postal_code(value, "Nieruchomosc/Adres/KodPocztowy")
    assert (found == []) is ok
    for f in found:
        assert (f.code, f.severity, f.field) == ("POSTAL_CODE_INVALID", "error", "Nieruchomosc/Adres/KodPocztowy")
