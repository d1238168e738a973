"""Property: whatever order statements and declarations arrive in, the tables are the same.

Random fee periods (with corrections replacing a property's periods), payers, statements of
credits, returns, fees and reversals to known, unknown, invalid and missing virtual accounts,
and office decisions; the events arrive in a random order and after each one everything is
recomputed from what has arrived (as the worker does: matching over all stored movements,
charges from the fee periods in force, the accounts). After the last event the payments,
charges and accounts must equal those of the canonical order, and every account must keep
the table's invariants after every event.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from rules.charges import FeePeriodRow, charges_from_periods
from rules.ledger import accounts, check_account, net_paid
from rules.ruleset import load_ruleset
from tests.bank_files import BRANCH, COLLECTION, PREFIX, va
from worker.bank.matching import ASSIGN, NOT_FEE, OfficeDecision, StoredMovement, UnionRange, match, matched_flows
from worker.bank.model import CREDIT, DEBIT, Movement

RULES = load_ruleset()
UNION = UnionRange(BRANCH, PREFIX, COLLECTION)
TODAY = date(2025, 9, 20)
PAYERS = (1, 2, 3)
money = st.integers(min_value=0, max_value=30000).map(lambda g: Decimal(g) / 100)


@st.composite
def property_versions(draw, prop: int):
    """A property's fee periods: the declaration's, then up to two corrections (each a
    complete new set of contiguous periods, possibly for another payer)."""
    versions = []
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        start = draw(st.integers(min_value=0, max_value=8))
        periods, month = [], start
        for k in range(draw(st.integers(min_value=1, max_value=3))):
            length = draw(st.integers(min_value=1, max_value=6))
            last = k == 2 or draw(st.booleans())
            first = date(2025, 1, 1) + timedelta(days=31 * month)
            first = first.replace(day=1)
            end_month = month + length
            end = None if last else (date(2025, 1, 1) + timedelta(days=31 * end_month)).replace(day=1) - timedelta(days=1)
            periods.append((first, end, draw(money), draw(st.sampled_from(PAYERS))))
            if last:
                break
            month = end_month
        versions.append(periods)
    return versions


@st.composite
def histories(draw):
    properties = {p: draw(property_versions(p)) for p in range(1, draw(st.integers(min_value=1, max_value=3)) + 1)}
    movements = []
    n = 0
    for s in range(draw(st.integers(min_value=1, max_value=4))):
        day = date(2025, 1, 5) + timedelta(days=draw(st.integers(min_value=0, max_value=250)))
        for pos in range(1, draw(st.integers(min_value=1, max_value=5)) + 1):
            n += 1
            kind = draw(st.sampled_from(["credit", "credit", "credit", "return", "fee", "reversal"]))
            target = draw(st.sampled_from([va(1), va(2), va(3), va(42), None, "12" + "0" * 24]))
            amount = draw(st.sampled_from([Decimal("50.00"), Decimal("174.50"), Decimal("0.01")]) | money.filter(lambda m: m > 0))
            direction = DEBIT if kind in ("return", "fee") or (kind == "reversal" and draw(st.booleans())) else CREDIT
            movements.append((f"S{s}", Movement(pos, f"T{n}", direction, kind == "reversal", amount, day, day,
                                                None if kind == "fee" else target)))
    decided = draw(st.lists(st.sampled_from([f"T{k}" for k in range(1, n + 1)]), max_size=3, unique=True))
    decisions = {(COLLECTION, ref): draw(st.sampled_from([OfficeDecision(ASSIGN, 2), OfficeDecision(NOT_FEE)])) for ref in decided}
    return properties, movements, decisions


def tables(arrived):
    """Everything recomputed from what has arrived: the three tables as plain values."""
    periods, movements, decisions = [], [], {}
    pid = 0
    for kind, item in arrived:
        if kind == "statement":
            movements.extend(StoredMovement(COLLECTION, stmt, m) for stmt, m in item)
        elif kind == "decision":
            decisions.update(item)
    # a property's fee periods: those of its latest version that has arrived (a correction
    # supersedes whatever arrived before or after it)
    latest: dict[int, tuple[int, list]] = {}
    for kind, item in arrived:
        if kind == "declaration":
            prop, version, rows = item
            if prop not in latest or version > latest[prop][0]:
                latest[prop] = (version, rows)
    for prop, (_, rows) in sorted(latest.items()):
        for first, end, fee, payer in rows:
            pid += 1
            periods.append(FeePeriodRow(pid, prop, payer, first, end, fee))
    payers = {va(p): p for p in PAYERS}
    results = match(movements, payers, UNION, decisions)
    charges = charges_from_periods(periods, TODAY, RULES)
    accs = accounts(charges, net_paid(matched_flows(movements, results)), TODAY)
    for a in accs.values():
        assert check_account(a) == [], a
    payments = sorted((k, r.status, r.reason, r.payer_id, r.reverses) for k, r in results.items())
    charge_rows = sorted((s.charge.key, s.charge.amount, s.charge.due_on, s.paid, s.state) for a in accs.values() for s in a.charges)
    account_rows = sorted((a.payer_id, a.charged, a.paid, a.balance, a.arrears, a.overpayment) for a in accs.values())
    return payments, charge_rows, account_rows


def events_of(properties, movements, decisions):
    events = []
    for prop, versions in properties.items():
        for v, rows in enumerate(versions):
            events.append(("declaration", (prop, v, rows)))
    by_statement: dict[str, list] = {}
    for stmt, m in movements:
        by_statement.setdefault(stmt, []).append((stmt, m))
    events.extend(("statement", items) for items in by_statement.values())
    if decisions:
        events.append(("decision", decisions))
    return events


@settings(max_examples=150, deadline=None)
@given(histories(), st.randoms(use_true_random=False))
def test_any_arrival_order_gives_the_same_tables(history, rnd):
    events = events_of(*history)
    expected = tables(events)
    shuffled = list(events)
    rnd.shuffle(shuffled)
    for i in range(1, len(shuffled)):
        tables(shuffled[:i])  # recomputed after every event; the invariants hold throughout
    assert tables(shuffled) == expected
