"""The property decided as a whole (``rules/reconcile.py``): pure, from the set of its
declarations; the three arrival-order cases of the fee rules, office decisions, rejected
documents and simultaneous filings."""

from __future__ import annotations

from datetime import UTC, date, datetime

from rules.reconcile import DATABASE_CODES, Filed, document_findings, reconcile
from rules.ruleset import load_ruleset
from tests.test_rules_support import declaration
from worker.domain.findings import ACCEPTED, NEEDS_REVIEW, REJECTED, SUPERSEDED, finding
from worker.domain.model import CHANGE, CORRECTION, FIRST

RS = load_ruleset()
REVIEW = finding("FEE_MISMATCH", None, "Zadeklarowana opłata różni się od wyliczonej.")
REJECT = finding("NO_RESIDENTS", None, "Brak mieszkańców.")


def filed(ident: int, purpose: str, applies: str, on: str, residents: int, *, payer: int = 1, findings=(), decision=None) -> Filed:
    day = date.fromisoformat(on)
    decl = declaration(
        residents=(residents,), purpose=purpose, applies_from=date.fromisoformat(applies),
        filed_at=datetime(day.year, day.month, day.day, 9, tzinfo=UTC),
    )
    return Filed(ident, payer, decl, tuple(findings), decision)


def summary(state):
    decided = {i: (d.status, [f.code for f in d.findings], d.corrects_id) for i, d in state.declarations.items()}
    periods = [(str(p.valid_from), str(p.valid_to) if p.valid_to else None, str(p.monthly_fee), p.declaration_id) for p in state.periods]
    return decided, periods


def test_retroactive_decrease_is_judged_against_what_was_filed_before():
    f = filed(1, FIRST, "2025-01-10", "2025-01-20", 4)
    n = filed(2, CHANGE, "2025-02-05", "2025-03-05", 2)
    decided, periods = summary(reconcile([n, f], RS))
    assert decided == {1: (ACCEPTED, [], None), 2: (NEEDS_REVIEW, ["RETROACTIVE_DECREASE"], None)}
    assert periods == [("2025-01-01", None, "152.00", 1)]
    assert summary(reconcile([n], RS))[0] == {2: (ACCEPTED, [], None)}  # alone: nothing to lower


def test_a_correction_corrects_only_what_was_filed_before_it():
    f = filed(1, FIRST, "2025-01-15", "2025-01-20", 3)
    k = filed(2, CORRECTION, "2025-02-10", "2025-02-11", 2)
    n = filed(3, CHANGE, "2025-02-10", "2025-02-12", 4)
    decided, periods = summary(reconcile([n, k, f], RS))
    assert decided == {1: (SUPERSEDED, [], None), 2: (ACCEPTED, [], 1), 3: (ACCEPTED, [], None)}
    assert periods == [("2025-01-01", "2025-01-31", "114.00", 1), ("2025-02-01", None, "152.00", 3)]


def test_the_declaration_in_force_when_the_correction_was_filed_is_superseded():
    f = filed(1, FIRST, "2025-01-15", "2025-01-20", 3)
    n = filed(2, CHANGE, "2025-02-10", "2025-02-12", 4)
    k = filed(3, CORRECTION, "2025-03-01", "2025-03-02", 2)
    decided, periods = summary(reconcile([k, f, n], RS))
    assert decided == {1: (ACCEPTED, [], None), 2: (SUPERSEDED, [], None), 3: (ACCEPTED, [], 2)}
    assert periods[-1] == ("2025-03-01", None, "76.00", 3)


def test_a_correction_filed_first_has_no_base_whatever_arrives_later():
    k = filed(1, CORRECTION, "2025-03-01", "2025-03-02", 2)
    f = filed(2, FIRST, "2025-03-01", "2025-03-05", 3)
    decided, periods = summary(reconcile([f, k], RS))
    assert decided == {1: (NEEDS_REVIEW, ["CORRECTION_WITHOUT_BASE"], None), 2: (ACCEPTED, [], None)}
    assert periods == [("2025-03-01", None, "114.00", 2)]


def test_office_decisions_are_binding_inputs():
    f = filed(1, FIRST, "2025-01-10", "2025-01-20", 4, findings=[REVIEW])
    k = filed(2, CORRECTION, "2025-01-10", "2025-02-01", 3)
    # the base waits for the office: the correction finds nothing to correct
    assert summary(reconcile([f, k], RS))[0] == {1: (NEEDS_REVIEW, [], None), 2: (NEEDS_REVIEW, ["CORRECTION_WITHOUT_BASE"], None)}
    accepted = Filed(1, 1, f.declaration, f.findings, ACCEPTED)
    decided, periods = summary(reconcile([k, accepted], RS))
    assert decided == {1: (SUPERSEDED, [], None), 2: (ACCEPTED, [], 1)}
    assert periods == [("2025-01-01", None, "114.00", 2)]
    rejected = Filed(1, 1, f.declaration, f.findings, REJECTED)
    assert summary(reconcile([k, rejected], RS)) == ({1: (REJECTED, [], None), 2: (NEEDS_REVIEW, ["CORRECTION_WITHOUT_BASE"], None)}, [])
    # a decision only settles what needs review: it does not revive a rejected document
    bad = filed(3, FIRST, "2025-01-10", "2025-01-20", 4, findings=[REJECT], decision=ACCEPTED)
    assert reconcile([bad], RS).status(3) == REJECTED
    # the office accepting a retroactive decrease lets it lower the fee
    n = filed(4, CHANGE, "2025-02-05", "2025-03-05", 2, decision=ACCEPTED)
    decided, periods = summary(reconcile([accepted, n], RS))
    assert decided[4] == (ACCEPTED, ["RETROACTIVE_DECREASE"], None)
    assert periods == [("2025-01-01", "2025-01-31", "152.00", 1), ("2025-02-01", None, "76.00", 4)]


def test_declarations_filed_at_the_same_time_do_not_see_each_other():
    f = filed(1, FIRST, "2025-01-10", "2025-01-20", 4)
    k = filed(2, CORRECTION, "2025-01-10", "2025-01-20", 3)
    assert summary(reconcile([k, f], RS))[0][2] == (NEEDS_REVIEW, ["CORRECTION_WITHOUT_BASE"], None)


def test_only_the_same_payers_declaration_is_corrected():
    f = filed(1, FIRST, "2025-01-10", "2025-01-20", 4, payer=1)
    k = filed(2, CORRECTION, "2025-01-10", "2025-02-01", 3, payer=2)
    assert summary(reconcile([f, k], RS))[0][2] == (NEEDS_REVIEW, ["CORRECTION_WITHOUT_BASE"], None)


def test_a_declaration_without_a_payer_is_charged_to_no_one():
    f = filed(1, FIRST, "2025-01-10", "2025-01-20", 4, payer=None, findings=[REVIEW], decision=ACCEPTED)
    state = reconcile([f], RS)
    assert state.status(1) == ACCEPTED and state.periods == []


def test_stored_findings_are_split_into_document_and_database_ones():
    retro = finding("RETROACTIVE_DECREASE", None, "…")
    assert document_findings([REVIEW, retro]) == (REVIEW,)
    assert DATABASE_CODES == {"RETROACTIVE_DECREASE", "CORRECTION_WITHOUT_BASE"}
    assert reconcile([], RS).periods == [] and reconcile([], RS).declarations == {}
