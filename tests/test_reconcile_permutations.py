"""Arrival order must not matter (``fee-rules.md``): random sets of 2–6 declarations of one
property, loaded through the real loader (``adapters.db.ebok.load``) in different orders,
give the same statuses, findings, corrected-declaration links and fee periods.

Runs on the test database of the suite: SQLite by default, PostgreSQL with
``EBOK_TEST_DATABASE_URL`` (CI runs both).

What is drawn: first declarations, changes (among them sales and deaths), corrections;
one or two payers; the day each applies from and its filing time (unique per set, to the
minute: ties of filing time are decided by the pure function's own tests); document-level
findings (none, one for review, one that rejects) and office decisions (accept / reject),
given as the documents' stored decisions, as after a review and a reprocessing.

Which orders: every permutation of a set of up to 4 declarations (at most 24); for 5 or 6
declarations the arrival order sorted by filing time, its reverse and 4 drawn
permutations — 720 orders of 6 would cost minutes per example. Each order is loaded in
its own transaction, rolled back afterwards, so the orders do not see each other. 60
examples (about 1 800 loads): some 10 s on SQLite and 30 s on PostgreSQL on a CI runner,
well under a minute on either database.
"""

from __future__ import annotations

import hashlib
import itertools
from datetime import UTC, date, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, select

from adapters.db import ebok
from adapters.db.tables import ebok_declaration, ebok_fee_period, ebok_payer, worker_document
from rules.periods import DEATH, SALE
from rules.ruleset import load_ruleset
from tests import factories
from tests.sigtools.pki import ALICJA
from worker.config import PaymentsConfig
from worker.domain import model
from worker.domain.findings import ACCEPTED, REJECTED, finding
from worker.pipeline import Context

RULES = load_ruleset()
PAYERS = (factories.PESEL, ALICJA.pesel)
NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)

REVIEW = finding("FEE_MISMATCH", "Oplata/Kwota", "Zadeklarowana opłata różni się od wyliczonej.")
REJECT = finding("COMPOSTING_NOT_ALLOWED", "Kompostownik", "Kompostownik zadeklarowany dla budynku wielolokalowego.")


@st.composite
def declaration_sets(draw):
    """A property's declarations: (name, Declaration, document findings, office decision)."""
    n = draw(st.integers(2, 6))
    minutes = draw(st.lists(st.integers(0, 59), min_size=n, max_size=n, unique=True))  # unique filing times
    out = []
    for i in range(n):
        purpose = draw(st.sampled_from([model.FIRST, model.CHANGE, model.CHANGE, model.CORRECTION, model.CORRECTION]))
        reason = draw(st.sampled_from([None, None, SALE, DEATH])) if purpose == model.CHANGE else None
        applies = date(2025, draw(st.integers(1, 6)), draw(st.sampled_from([1, 10, 15, 28])))
        filed_day = applies + timedelta(days=draw(st.integers(-5, 75)))
        filed = datetime(filed_day.year, filed_day.month, filed_day.day, 9, minutes[i], tzinfo=UTC)
        decl = factories.declaration(
            draw(st.integers(1, 6)), purpose=purpose, applies_from=applies, filed_at=filed,
            pesel=draw(st.sampled_from(PAYERS)), change_reason=reason,
        )
        own = draw(st.sampled_from([(), (), (), (REVIEW,), (REJECT,)]))
        decision = draw(st.sampled_from([None, None, ACCEPTED, REJECTED]))
        out.append((f"d{i}", decl, own, decision))
    return out


def load_in_order(engine, items, order) -> dict:
    """Load ``items`` in ``order`` through the real loader, in one transaction that is
    rolled back; what the eBOK tables then say, by declaration name."""
    with engine.connect() as conn:
        tx = conn.begin()
        try:
            for k in order:
                name, decl, own, decision = items[k]
                raw = f"{name}:{decl!r}".encode()
                doc_id = conn.execute(
                    insert(worker_document).values(
                        channel=model.EPUAP, source_ref=f"/cr/dekl#{name}", source="/cr/dekl", sha256=hashlib.sha256(raw).hexdigest(),
                        size=len(raw), storage_key=name, filed_at=decl.filed_at, received_at=NOW, meta={}, state="PROCESSING",
                        attempts=1, review_decision=decision,
                    ).returning(worker_document.c.id)
                ).scalar_one()
                doc = conn.execute(select(worker_document).where(worker_document.c.id == doc_id)).mappings().one()
                ctx = Context(raw=raw, channel=model.EPUAP, filed_at=decl.filed_at, document_id=doc_id)
                ctx.declaration, ctx.gmina, ctx.computed_fee = decl, "Kędzierzyn-Koźle", decl.monthly_fee
                ctx.findings = list(own)
                ebok.load(conn, doc, ctx, payments=PaymentsConfig(), ruleset=RULES, now=NOW, actor="worker")
            d = ebok_declaration.c
            names = {r.id: r.source_ref.split("#")[1] for r in conn.execute(select(d.id, d.source_ref))}
            pesels = {r.id: r.pesel for r in conn.execute(select(ebok_payer.c.id, ebok_payer.c.pesel))}
            declarations = {
                names[r.id]: (r.status, tuple((f["code"], f["message"]) for f in r.findings), names.get(r.corrects_id))
                for r in conn.execute(select(d.id, d.status, d.findings, d.corrects_id))
            }
            fp = ebok_fee_period.c
            periods = [
                (r.valid_from, r.valid_to, f"{r.monthly_fee:.2f}", names[r.declaration_id], pesels[r.payer_id])
                for r in conn.execute(select(fp.valid_from, fp.valid_to, fp.monthly_fee, fp.declaration_id, fp.payer_id).order_by(fp.valid_from))
            ]
        finally:
            tx.rollback()
    return {"declarations": declarations, "periods": periods}


def orders(n: int, data) -> list[tuple[int, ...]]:
    by_filing = tuple(range(n))  # the test sorts the set by filing time
    if n <= 4:
        return list(itertools.permutations(by_filing))
    drawn = [tuple(data.draw(st.permutations(by_filing), label="order")) for _ in range(4)]
    return [by_filing, by_filing[::-1], *drawn]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(items=declaration_sets(), data=st.data())
def test_arrival_order_does_not_matter_through_the_loader(engine, items, data):
    items = sorted(items, key=lambda it: it[1].filed_at)
    results = {}
    for order in orders(len(items), data):
        results[order] = load_in_order(engine, items, order)
    first_order, expected = next(iter(results.items()))
    assert len(expected["declarations"]) == len(items)
    for order, got in results.items():
        assert got == expected, f"arrival order {order} differs from {first_order}"
