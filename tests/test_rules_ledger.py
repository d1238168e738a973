"""Charges from fee periods, allocation earliest due first, charge and account states."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from rules.charges import Charge, ChargeError, FeePeriodRow, charges_from_periods
from rules.ledger import (
    CREDIT,
    DEBIT,
    DUE,
    OVERDUE,
    PAID,
    PARTLY_PAID,
    Flow,
    account_state,
    accounts,
    allocate,
    check_account,
    net_paid,
    polish_date,
)
from rules.ruleset import load_ruleset

RULES = load_ruleset()
D = Decimal


def period(pid, fee, start, end=None, *, prop=1, payer=1):
    return FeePeriodRow(pid, prop, payer, date.fromisoformat(start), date.fromisoformat(end) if end else None, D(fee))


def state_of(periods, flows, today):
    charges = charges_from_periods(periods, today, RULES)
    return accounts(charges, net_paid(flows), today)


def summary(accs):
    return {
        p: (str(a.charged), str(a.paid), str(a.balance), str(a.arrears), str(a.overpayment),
            [(s.charge.month.isoformat(), str(s.paid), s.state) for s in a.charges])
        for p, a in accs.items()
    }


# --------------------------------------------------------------------------- the worked example


def test_the_specifications_worked_example():
    accs = state_of([period(1, "174.50", "2025-01-01")],
                    [Flow(1, CREDIT, D("200.00")), Flow(1, CREDIT, D("100.00"))], date(2025, 3, 20))
    a = accs[1]
    assert (a.charged, a.paid, a.arrears, a.balance, a.overpayment) == (D("523.50"), D("300.00"), D("223.50"), D("-223.50"), D("0.00"))
    assert [(s.charge.month.month, s.paid, s.state) for s in a.charges] == [
        (1, D("174.50"), PAID), (2, D("125.50"), OVERDUE), (3, D("0.00"), OVERDUE)]
    assert check_account(a) == []


def test_the_worked_example_with_the_correction_in_either_arrival_order():
    """A KOREKTA to 154.50 from 2025-01 replaces the declaration's period; payments and the
    correction arriving in any order give the same account after the last event."""
    events = [
        ("period", period(1, "174.50", "2025-01-01")),
        ("flow", Flow(1, CREDIT, D("200.00"))),
        ("flow", Flow(1, CREDIT, D("100.00"))),
        ("correction", period(2, "154.50", "2025-01-01")),
    ]
    results = set()
    for order in itertools.permutations(events):
        periods: dict[str, FeePeriodRow] = {}
        flows: list[Flow] = []
        for kind, item in order:
            if kind == "flow":
                flows.append(item)
            elif kind == "correction" or "correction" not in periods:
                periods[kind] = item  # the correction governs from its month once it is there
            if "correction" in periods:
                periods.pop("period", None)
            state_of(list(periods.values()), flows, date(2025, 3, 20))  # recomputed after each event
        a = state_of(list(periods.values()), flows, date(2025, 3, 20))[1]
        assert [(s.charge.month.month, s.paid, s.state) for s in a.charges] == [
            (1, D("154.50"), PAID), (2, D("145.50"), OVERDUE), (3, D("0.00"), OVERDUE)]
        assert (a.arrears, a.balance) == (D("163.50"), D("-163.50"))
        results.add(repr(summary({1: a})))
    assert len(results) == 1


# --------------------------------------------------------------------------- charges


def test_one_charge_per_month_up_to_the_current_month_and_not_past_valid_to():
    charges = charges_from_periods(
        [period(1, "38.00", "2024-11-01", "2025-01-31"), period(2, "76.00", "2025-02-01")], date(2025, 4, 30), RULES)
    assert [(c.month.isoformat(), c.amount, c.fee_period_id) for c in charges] == [
        ("2024-11-01", D("38.00"), 1), ("2024-12-01", D("38.00"), 1), ("2025-01-01", D("38.00"), 1),
        ("2025-02-01", D("76.00"), 2), ("2025-03-01", D("76.00"), 2), ("2025-04-01", D("76.00"), 2)]
    assert charges_from_periods([period(1, "38.00", "2025-05-01")], date(2025, 4, 30), RULES) == []


def test_a_period_without_a_payer_charges_nobody_and_overlaps_are_refused():
    assert charges_from_periods([period(1, "10.00", "2025-01-01", payer=None)], date(2025, 3, 1), RULES) == []
    with pytest.raises(ChargeError, match="both charge property 1, payer 1 for 2025-02"):
        charges_from_periods([period(1, "10.00", "2025-01-01", "2025-02-28"), period(2, "11.00", "2025-02-01")], date(2025, 3, 1), RULES)


def test_charges_do_not_depend_on_the_order_of_the_periods():
    ps = [period(1, "10.00", "2025-01-01", prop=2), period(2, "20.00", "2024-12-01", prop=1),
          period(3, "5.00", "2025-02-01", prop=3, payer=2)]
    expected = charges_from_periods(ps, date(2025, 3, 1), RULES)
    for order in itertools.permutations(ps):
        assert charges_from_periods(order, date(2025, 3, 1), RULES) == expected


# --------------------------------------------------------------------------- allocation and states


def charge(month, amount, *, prop=1, payer=1):
    m = date.fromisoformat(month + "-01")
    return Charge(payer, m.replace(day=15), m, prop, 1, D(amount))


def test_earliest_due_first_then_month_then_property():
    a, b, c = charge("2025-01", "10.00", prop=2), charge("2025-01", "10.00", prop=1), charge("2024-12", "10.00", prop=3)
    states, rest = allocate([a, b, c], D("15.00"), date(2025, 1, 10))
    assert [(s.charge.property_id, s.paid, s.state) for s in states] == [(3, D("10.00"), PAID), (1, D("5.00"), PARTLY_PAID), (2, D("0.00"), DUE)]
    assert rest == D("0.00")


def test_states_on_the_due_day_and_the_day_after():
    c = charge("2025-01", "10.00")
    assert allocate([c], D("0"), date(2025, 1, 15))[0][0].state == DUE
    assert allocate([c], D("3"), date(2025, 1, 15))[0][0].state == PARTLY_PAID
    assert allocate([c], D("3"), date(2025, 1, 16))[0][0].state == OVERDUE
    assert allocate([c], D("0"), date(2025, 1, 16))[0][0].state == OVERDUE
    assert allocate([c], D("10"), date(2030, 1, 1))[0][0].state == PAID
    assert allocate([charge("2025-01", "0.00")], D("0"), date(2030, 1, 1))[0][0].state == PAID


def test_overpayment_and_its_invariants():
    a = account_state(1, [charge("2025-01", "10.00"), charge("2025-02", "10.00")], D("25.00"), date(2025, 3, 1))
    assert (a.overpayment, a.arrears, a.balance) == (D("5.00"), D("0.00"), D("5.00"))
    assert all(s.state == PAID for s in a.charges)
    assert check_account(a) == []


def test_a_payer_with_only_payments_has_an_account_and_returns_lower_what_was_paid():
    paid = net_paid([Flow(2, CREDIT, D("50.00")), Flow(2, DEBIT, D("20.00")), Flow(3, CREDIT, D("1.00")), Flow(3, DEBIT, D("1.00"))])
    accs = accounts([charge("2025-01", "10.00")], paid, date(2025, 3, 1))
    assert sorted(accs) == [1, 2, 3]
    assert (accs[2].paid, accs[2].overpayment, accs[2].charges) == (D("30.00"), D("30.00"), ())
    assert (accs[3].paid, accs[3].balance) == (D("0.00"), D("0.00"))
    assert (accs[1].arrears, accs[1].balance) == (D("10.00"), D("-10.00"))
    assert all(check_account(a) == [] for a in accs.values())


def test_more_returned_than_paid_allocates_nothing_and_keeps_the_balance_true():
    a = account_state(1, [charge("2025-01", "10.00")], D("-5.00"), date(2025, 3, 1))
    assert a.charges[0].paid == D("0.00") and a.balance == D("-15.00") and a.overpayment == D("0.00")
    assert check_account(a) == []


def test_invariant_checks_catch_a_broken_account():
    good = account_state(1, [charge("2025-01", "10.00"), charge("2025-02", "10.00")], D("15.00"), date(2025, 1, 20))
    from dataclasses import replace

    assert "balance != paid - charged" in check_account(replace(good, balance=D("0.00")))
    swapped = replace(good, charges=(replace(good.charges[0], paid=D("5.00")), replace(good.charges[1], paid=D("10.00"))))
    assert any("later charge" in p for p in check_account(swapped))


def test_money_must_be_in_grosze_and_amounts_positive():
    with pytest.raises(ValueError, match="grosze"):
        net_paid([Flow(1, CREDIT, D("1.001"))])
    with pytest.raises(ValueError, match="positive"):
        net_paid([Flow(1, DEBIT, D("0.00"))])


def test_the_polish_date_of_the_computation():
    assert polish_date(datetime(2025, 3, 20, 23, 30, tzinfo=UTC)) == date(2025, 3, 21)  # 00:30 in Warsaw
    assert polish_date(datetime(2025, 7, 31, 21, 59, tzinfo=UTC)) == date(2025, 7, 31)  # 23:59 CEST
    with pytest.raises(ValueError):
        polish_date(datetime(2025, 3, 20, 12, 0))
