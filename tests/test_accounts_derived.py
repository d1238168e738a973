"""Account numbers derived from the payer's identity: the same in any load order, no collisions."""

from __future__ import annotations

import random
from datetime import date, timedelta

import pytest
from stdnum import iban
from stdnum.pl import nip, pesel

from worker.domain.accounts import (
    IDENTITY_SPACE,
    derived_payer_account,
    ff1_encrypt,
    identity_index,
    in_union_range,
    nrb_is_valid,
    payer_account,
)

BRANCH, PREFIX = "10901014", "4000"
KEY = bytes.fromhex("00112233445566778899aabbccddeeff")

# NIST SP 800-38G, FF1 samples 1, 2, 4, 5, 7 and 8 (radix 10)
K128 = "2B7E151628AED2A6ABF7158809CF4F3C"
K192 = K128 + "EF4359D8D580AA4F"
K256 = K192 + "7F036D6F04FC6A94"
TWEAK = "39383736353433323130"


@pytest.mark.parametrize(
    ("key", "tweak", "expected"),
    [(K128, "", "2433477484"), (K128, TWEAK, "6124200773"), (K192, "", "2830668132"), (K192, TWEAK, "2496655549"),
     (K256, "", "6657667009"), (K256, TWEAK, "1001623463")],
)
def test_ff1_against_the_standards_samples(key, tweak, expected):
    assert ff1_encrypt(bytes.fromhex(key), bytes.fromhex(tweak), "0123456789") == expected


def peselify(born: date, serial: int) -> str:
    yy, mm = born.year % 100, born.month + {1800: 80, 1900: 0, 2000: 20, 2100: 40, 2200: 60}[born.year // 100 * 100]
    ten = f"{yy:02d}{mm:02d}{born.day:02d}{serial:04d}"
    return ten + pesel.calc_check_digit(ten)


def some_identities(n: int, seed: int = 26) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    out = set()
    while len(out) < n:
        if rng.random() < 0.7:
            born = date(1800, 1, 1) + timedelta(days=rng.randrange(182_621))
            out.add(("pesel", peselify(born, rng.randrange(10_000))))
        else:
            nine = f"{rng.randrange(1, 10**9):09d}"
            valid = [nine + d for d in "0123456789" if nip.is_valid(nine + d)]
            out.update(("nip", v) for v in valid)
    return sorted(out)


def test_identity_indices_are_one_to_one_and_below_the_space():
    ids = some_identities(3000)
    indices = [identity_index(k, v) for k, v in ids]
    assert len(set(indices)) == len(ids) and all(0 <= i < IDENTITY_SPACE for i in indices)
    assert identity_index("pesel", peselify(date(1800, 1, 1), 0)) == 0
    assert identity_index("pesel", peselify(date(2299, 12, 31), 9999)) + 1 + 10**9 == IDENTITY_SPACE


def test_derived_numbers_are_valid_distinct_and_in_the_union_range():
    ids = some_identities(1500)
    numbers = [derived_payer_account(BRANCH, PREFIX, k, v, KEY) for k, v in ids]
    assert len(set(numbers)) == len(numbers)  # no collision
    for (_, value), nrb in zip(ids, numbers, strict=True):
        assert nrb_is_valid(nrb) and iban.is_valid("PL" + nrb) and in_union_range(nrb, BRANCH, PREFIX)
        assert value not in nrb and value[:10] not in nrb  # the identifier is not in the number


def test_the_same_numbers_in_any_order_and_with_the_same_key_only():
    ids = some_identities(200)
    first = {i: derived_payer_account(BRANCH, PREFIX, *i, KEY) for i in ids}
    shuffled = list(ids)
    random.Random(1).shuffle(shuffled)
    assert {i: derived_payer_account(BRANCH, PREFIX, *i, KEY) for i in shuffled} == first
    other_key = {i: derived_payer_account(BRANCH, PREFIX, *i, bytes(16)) for i in ids}
    assert sum(other_key[i] == first[i] for i in ids) == 0


def test_derived_numbers_lie_above_every_number_a_payer_id_gets():
    lowest = min(int(derived_payer_account(BRANCH, PREFIX, *i, KEY)[14:]) for i in some_identities(300))
    assert lowest >= 10**12 - IDENTITY_SPACE
    assert int(payer_account(BRANCH, PREFIX, 10**7)[14:]) < 10**12 - IDENTITY_SPACE


def test_ranges_that_cannot_hold_every_identity_and_bad_identities_are_refused():
    assert nrb_is_valid(derived_payer_account(BRANCH, "400000", "pesel", "44051401359", KEY))  # 10 digits left: enough
    with pytest.raises(ValueError, match="derived numbers need 10"):
        derived_payer_account(BRANCH, "4000000", "pesel", "44051401359", KEY)
    with pytest.raises(ValueError, match="PESEL"):
        derived_payer_account(BRANCH, PREFIX, "pesel", "44051401358", KEY)
    with pytest.raises(ValueError, match="NIP"):
        derived_payer_account(BRANCH, PREFIX, "nip", "1234563219", KEY)
    with pytest.raises(ValueError, match="16, 24 or 32"):
        derived_payer_account(BRANCH, PREFIX, "nip", "1234563218", b"short")
