"""A property decided as a whole: every declaration's status, the database findings and
the fee periods, from the set of the property's declarations — whatever order they
arrived in.

Pure: no I/O. The loader (``adapters.db.ebok``) reads the property's declarations, calls
:func:`reconcile` and writes the differences.

Input (:class:`Filed`), one per declaration of the property: its facts (with the filing
time), its payer, the findings of the document-level checks (form, signature, content,
fee arithmetic, deadlines — everything that does not depend on other declarations) and the
office's decision (``review accept/reject``), if any.

The declarations are decided in filing order, each one against the state of the property
*as of its filing*: what the declarations filed strictly before it made of it. Filing
time is a fact of the document, so the result is a function of the set alone. Within one
instant, declarations filed at exactly the same time do not see each other.

- **Document-level outcome**: a declaration whose own findings reject it stays REJECTED;
  it gets no database findings and takes no part in what follows.
- **KOREKTA** (``fee-rules.md``): it corrects an *earlier* declaration — among the same
  payer's declarations of the property filed before it and ACCEPTED at that point, the one
  with the same ``ObowiazujeOd``; if none, the latest one in force on that date
  (:func:`rules.periods.select_correction_base`). Nothing → ``CORRECTION_WITHOUT_BASE``
  (for review). A declaration filed after the correction is never its base.
- **NOWA**: ``RETROACTIVE_DECREASE`` when it lowers the fee for a month before its filing
  month, judged against the fee periods of the declarations filed before it
  (:func:`rules.periods.check_retroactive_decrease`).
- **Status**: the worst of the document and database findings; a NEEDS_REVIEW outcome
  that the office decided (ACCEPTED or REJECTED) takes the office's decision — a binding
  input. An outcome that is ACCEPTED or REJECTED by itself stands without the office.
- **SUPERSEDED**: a declaration that an ACCEPTED correction corrects (once the correction
  is decided, so for every declaration filed after that correction too).
- **Fee periods**: from the ACCEPTED and SUPERSEDED declarations
  (:func:`rules.periods.compute_fee_periods`) that have a payer (a period is always
  charged to someone; the office cannot accept a declaration without one).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import groupby

from rules.periods import (
    FeePeriod,
    PeriodInput,
    _utc_naive,
    check_retroactive_decrease,
    compute_fee_periods,
    correction_without_base,
    select_correction_base,
)
from rules.ruleset import RuleSet
from worker.domain.findings import ACCEPTED, NEEDS_REVIEW, REJECTED, SUPERSEDED, Finding, outcome_of
from worker.domain.model import CHANGE, CORRECTION, Declaration

#: the codes :func:`reconcile` decides; never produced by the document-level checks
DATABASE_CODES = frozenset({"RETROACTIVE_DECREASE", "CORRECTION_WITHOUT_BASE"})


@dataclass(frozen=True)
class Filed:
    """One declaration of the property, as the loader knows it."""

    declaration_id: int
    payer_id: int | None
    declaration: Declaration
    findings: tuple[Finding, ...] = ()  # document-level only (no :data:`DATABASE_CODES`)
    decision: str | None = None  # the office's: ACCEPTED / REJECTED

    @property
    def filed_at(self) -> datetime | None:
        return self.declaration.filed_at

    def as_period_input(self, corrects_id: int | None) -> PeriodInput:
        d = self.declaration
        return PeriodInput(self.declaration_id, self.payer_id, d.purpose, d.applies_from, d.filed_at, corrects_id, d)


@dataclass(frozen=True)
class Decided:
    """What the property's reconciliation says about one declaration."""

    declaration_id: int
    status: str
    findings: tuple[Finding, ...]  # the database findings (document-level ones not repeated)
    corrects_id: int | None = None


@dataclass(frozen=True)
class PropertyState:
    declarations: dict[int, Decided]
    periods: list[FeePeriod]

    def status(self, declaration_id: int) -> str:
        return self.declarations[declaration_id].status


def with_decision(own: str, decision: str | None) -> str:
    """A declaration's status with the office's decision: a NEEDS_REVIEW outcome that the
    office decided (ACCEPTED or REJECTED) takes the decision — also when the declaration
    is reprocessed and still needs review; an outcome that is ACCEPTED or REJECTED by itself
    stands without the office.

    >>> with_decision(NEEDS_REVIEW, ACCEPTED), with_decision(REJECTED, ACCEPTED), with_decision(NEEDS_REVIEW, None)
    ('ACCEPTED', 'REJECTED', 'NEEDS_REVIEW')
    """
    if own == NEEDS_REVIEW and decision in (ACCEPTED, REJECTED):
        return decision
    return own


def _filing_key(f: Filed) -> datetime:
    return _utc_naive(f.filed_at)


def reconcile(declarations: Iterable[Filed], ruleset: RuleSet | None) -> PropertyState:
    """Decide the property from the set of its declarations (see the module docstring).

    ``ruleset`` None (no rules loaded): no retroactive-decrease check and no fee periods.
    """
    items = sorted(declarations, key=lambda f: (_filing_key(f), f.declaration_id))
    decided: dict[int, Decided] = {}
    status: dict[int, str] = {}
    links: dict[int, int | None] = {}
    earlier: list[Filed] = []  # not rejected, filed before the current instant

    for _, group in groupby(items, key=_filing_key):
        same_instant = list(group)
        superseding: list[int] = []
        for f in same_instant:
            own = outcome_of(f.findings)
            if own == REJECTED:
                decided[f.declaration_id] = Decided(f.declaration_id, with_decision(own, f.decision), ())
                status[f.declaration_id] = decided[f.declaration_id].status
                continue
            found: list[Finding] = []
            base: int | None = None
            if f.declaration.purpose == CORRECTION:
                candidates = [e.as_period_input(links.get(e.declaration_id)) for e in earlier if status[e.declaration_id] == ACCEPTED]
                base = select_correction_base(f.as_period_input(None), candidates)
                if base is None:
                    found.append(correction_without_base(f.declaration.channel))
            elif f.declaration.purpose == CHANGE and ruleset is not None:
                taking_part = [
                    e.as_period_input(links.get(e.declaration_id)) for e in earlier if status[e.declaration_id] in (ACCEPTED, SUPERSEDED)
                ]
                before = compute_fee_periods(taking_part, ruleset) if taking_part else []
                found.extend(check_retroactive_decrease(f.as_period_input(None), before, ruleset))
            st = with_decision(outcome_of([*f.findings, *found]), f.decision)
            decided[f.declaration_id] = Decided(f.declaration_id, st, tuple(found), base)
            if st == ACCEPTED and base is not None:
                superseding.append(base)
        # what was decided at this instant becomes part of the state the later ones see
        for f in same_instant:
            if decided[f.declaration_id].status != REJECTED:
                status[f.declaration_id] = decided[f.declaration_id].status
                links[f.declaration_id] = decided[f.declaration_id].corrects_id
                earlier.append(f)
        for base in superseding:
            status[base] = SUPERSEDED

    for did, st in status.items():
        if st == SUPERSEDED and decided[did].status != SUPERSEDED:
            d = decided[did]
            decided[did] = Decided(did, SUPERSEDED, d.findings, d.corrects_id)

    taking_part = [
        f.as_period_input(decided[f.declaration_id].corrects_id)
        for f in items
        if decided[f.declaration_id].status in (ACCEPTED, SUPERSEDED) and f.payer_id is not None
    ]
    periods = compute_fee_periods(taking_part, ruleset) if taking_part and ruleset is not None else []
    return PropertyState(decided, periods)


def document_findings(findings: Sequence[Finding]) -> tuple[Finding, ...]:
    """The document-level part of stored findings (without :data:`DATABASE_CODES`)."""
    return tuple(f for f in findings if f.code not in DATABASE_CODES)


__all__ = ["DATABASE_CODES", "Decided", "Filed", "PropertyState", "document_findings", "reconcile", "with_decision"]
