"""Matching movements to payers by virtual account only; reversals; the office's decisions."""

from __future__ import annotations

import itertools
import random
from datetime import date
from decimal import Decimal

import pytest

from tests.bank_files import BRANCH, COLLECTION, PREFIX, va
from worker.bank.matching import (
    ASSIGN,
    AUTO,
    MATCHED,
    NO_VA,
    NOT_FEE,
    OFFICE,
    REVERSAL,
    REVERSAL_UNPAIRED,
    REVERSED,
    UNMATCHED,
    VA_INVALID,
    VA_UNKNOWN,
    WITHDRAWN,
    Match,
    OfficeDecision,
    StoredMovement,
    UnionRange,
    match,
    matched_flows,
)
from worker.bank.model import CREDIT, DEBIT, Movement
from worker.domain.accounts import derived_payer_account

UNION = UnionRange(BRANCH, PREFIX, COLLECTION)
PAYERS = {va(1): 1, va(2): 2}


def mv(ref, direction, amount, account=None, *, reversal=False, day=10, pos=1, stmt="S1", reverses_ref=None, bank_ref=None, withdrawn=False):
    m = Movement(pos, ref, direction, reversal, Decimal(amount), date(2025, 1, day), date(2025, 1, day), account,
                 bank_ref=bank_ref, reverses_ref=reverses_ref)
    return StoredMovement(COLLECTION, stmt, m, withdrawn)


def results(items, decisions=None, payers=PAYERS):
    out = match(items, payers, UNION, decisions)
    return {k[1]: (r.status, r.reason, r.payer_id) for k, r in out.items()}


def test_the_table_of_the_specification():
    other_bank = "61" + "11401081" + "0000267002001002"
    items = [
        mv("a", CREDIT, "10.00", va(1)),
        mv("b", CREDIT, "10.00", va(99), pos=2),  # the union's range, nobody's
        mv("c", CREDIT, "10.00", va(1)[:-1] + "9", pos=3),  # check digits wrong
        mv("d", CREDIT, "10.00", "PL" + other_bank, pos=4),  # another bank
        mv("e", CREDIT, "10.00", None, pos=5),
        mv("f", CREDIT, "10.00", COLLECTION, pos=6),
        mv("g", DEBIT, "4.00", va(2), pos=7),  # a return to the payer
        mv("h", DEBIT, "1.50", None, pos=8),  # a bank fee
        mv("i", DEBIT, "9.00", va(99), pos=9),
    ]
    assert results(items) == {
        "a": (MATCHED, None, 1),
        "b": (UNMATCHED, VA_UNKNOWN, None),
        "c": (UNMATCHED, VA_INVALID, None),
        "d": (UNMATCHED, VA_INVALID, None),
        "e": (UNMATCHED, NO_VA, None),
        "f": (UNMATCHED, NO_VA, None),
        "g": (MATCHED, None, 2),
        "h": (NOT_FEE, None, None),
        "i": (NOT_FEE, None, None),
    }
    out = match(items, PAYERS, UNION)
    assert out[(COLLECTION, "a")] == Match(MATCHED, payer_id=1, matched_by=AUTO, virtual_account=va(1))
    assert out[(COLLECTION, "e")].virtual_account is None and out[(COLLECTION, "d")].virtual_account == other_bank


def test_a_reversal_pairs_with_the_latest_earlier_unreversed_credit_with_the_same_account_and_amount():
    items = [
        mv("c1", CREDIT, "50.00", va(1), day=2),
        mv("c2", CREDIT, "50.00", va(1), day=5),
        mv("c3", CREDIT, "60.00", va(1), day=6),  # another amount
        mv("r1", DEBIT, "50.00", va(1), reversal=True, day=7),
        mv("r2", DEBIT, "50.00", va(1), reversal=True, day=8),
        mv("r3", DEBIT, "50.00", va(1), reversal=True, day=9),  # nothing left
        mv("c4", CREDIT, "50.00", va(1), day=20),  # later than every reversal
    ]
    got = results(items)
    assert got["c2"] == (REVERSED, None, 1) and got["r1"] == (REVERSAL, None, 1)
    assert got["c1"] == (REVERSED, None, 1) and got["r2"] == (REVERSAL, None, 1)
    assert got["r3"] == (UNMATCHED, REVERSAL_UNPAIRED, None)
    assert got["c3"] == got["c4"] == (MATCHED, None, 1)
    out = match(items, PAYERS, UNION)
    assert out[(COLLECTION, "r1")].reverses == (COLLECTION, "c2") and out[(COLLECTION, "r2")].reverses == (COLLECTION, "c1")


def test_a_reversal_on_the_same_day_pairs_with_an_earlier_position_only():
    items = [mv("r", DEBIT, "5.00", va(1), reversal=True, pos=1), mv("c", CREDIT, "5.00", va(1), pos=2)]
    assert results(items) == {"r": (UNMATCHED, REVERSAL_UNPAIRED, None), "c": (MATCHED, None, 1)}


def test_the_reference_the_bank_gives_wins_over_the_latest_candidate():
    items = [mv("c1", CREDIT, "5.00", va(1), day=1, bank_ref="B1"), mv("c2", CREDIT, "5.00", va(1), day=2),
             mv("r", DEBIT, "5.00", None, reversal=True, day=3, reverses_ref="B1")]
    assert results(items) == {"c1": (REVERSED, None, 1), "c2": (MATCHED, None, 1), "r": (REVERSAL, None, 1)}


def test_a_reversal_of_a_debit_pairs_with_an_earlier_debit():
    items = [mv("d", DEBIT, "3.00", va(2), day=1), mv("rd", CREDIT, "3.00", va(2), reversal=True, day=2),
             mv("rd2", CREDIT, "3.00", va(2), reversal=True, day=3)]
    assert results(items) == {"d": (REVERSED, None, 2), "rd": (REVERSAL, None, 2), "rd2": (UNMATCHED, REVERSAL_UNPAIRED, None)}


def test_an_unmatched_credit_reversed_leaves_the_queue():
    items = [mv("c", CREDIT, "5.00", va(77), day=1), mv("r", DEBIT, "5.00", va(77), reversal=True, day=2)]
    assert results(items) == {"c": (REVERSED, None, None), "r": (REVERSAL, None, None)}


def test_the_office_decides_and_its_decisions_win_and_take_no_part_in_pairing():
    items = [mv("c1", CREDIT, "5.00", None, day=1), mv("c2", CREDIT, "5.00", va(1), day=2), mv("c3", CREDIT, "5.00", va(1), day=3),
             mv("r", DEBIT, "5.00", va(1), reversal=True, day=4), mv("f", DEBIT, "2.00", None, day=5)]
    decisions = {(COLLECTION, "c1"): OfficeDecision(ASSIGN, 2), (COLLECTION, "c3"): OfficeDecision(ASSIGN, 1),
                 (COLLECTION, "f"): OfficeDecision(NOT_FEE)}
    got = match(items, PAYERS, UNION, decisions)
    assert got[(COLLECTION, "c1")] == Match(MATCHED, payer_id=2, matched_by=OFFICE)
    assert got[(COLLECTION, "c3")].matched_by == OFFICE
    assert got[(COLLECTION, "r")].reverses == (COLLECTION, "c2")  # c3, decided, is not a candidate
    assert got[(COLLECTION, "f")] == Match(NOT_FEE, matched_by=OFFICE)
    with pytest.raises(ValueError):
        OfficeDecision(ASSIGN)


def test_withdrawn_movements():
    items = [mv("c", CREDIT, "5.00", va(1), withdrawn=True), mv("r", DEBIT, "5.00", va(1), reversal=True, day=11)]
    assert results(items) == {"c": (WITHDRAWN, None, None), "r": (UNMATCHED, REVERSAL_UNPAIRED, None)}


def test_masked_identifiers_and_derived_numbers_match_like_any_account():
    key = bytes(range(32))
    derived = derived_payer_account(BRANCH, PREFIX, "pesel", "44051401359", key)
    items = [mv("m", CREDIT, "5.00", "XX" + va(1)[12:]), mv("d", CREDIT, "6.00", derived, pos=2),
             mv("x", CREDIT, "6.00", "XX12", pos=3), mv("y", CREDIT, "6.00", "X" * 20 + "1", pos=4)]
    got = results(items, payers={va(1): 1, derived: 7})
    assert got == {"m": (MATCHED, None, 1), "d": (MATCHED, None, 7), "x": (UNMATCHED, VA_UNKNOWN, None), "y": (UNMATCHED, VA_INVALID, None)}


def test_the_result_does_not_depend_on_the_order_movements_arrive_in():
    rng = random.Random(26)
    items = []
    for n in range(40):
        payer = rng.choice([1, 2, 99])
        direction = rng.choice([CREDIT, CREDIT, DEBIT])
        items.append(mv(f"t{n}", direction, rng.choice(["5.00", "7.00"]), va(payer), reversal=rng.random() < 0.3,
                        day=1 + n // 4, pos=n % 4, stmt=f"S{n // 4}"))
    expected = match(items, PAYERS, UNION)
    for _ in range(20):
        rng.shuffle(items)
        assert match(items, PAYERS, UNION) == expected
    assert {r.status for r in expected.values()} >= {MATCHED, REVERSED, REVERSAL, UNMATCHED}


def test_matched_flows_feed_the_account():
    items = [mv("a", CREDIT, "10.00", va(1)), mv("b", DEBIT, "4.00", va(1), pos=2), mv("c", CREDIT, "1.00", None, pos=3)]
    flows = matched_flows(items, match(items, PAYERS, UNION))
    assert [(f.payer_id, f.direction, f.amount) for f in flows] == [(1, CREDIT, Decimal("10.00")), (1, DEBIT, Decimal("4.00"))]


def test_every_permutation_of_a_small_history():
    base = [mv("c1", CREDIT, "5.00", va(1), day=1), mv("c2", CREDIT, "5.00", va(1), day=1, pos=2),
            mv("r", DEBIT, "5.00", va(1), reversal=True, day=1, pos=3), mv("x", DEBIT, "5.00", va(1), day=2)]
    expected = match(base, PAYERS, UNION)
    for order in itertools.permutations(base):
        assert match(order, PAYERS, UNION) == expected
    assert expected[(COLLECTION, "r")].reverses == (COLLECTION, "c2")
