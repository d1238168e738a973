"""Batches are loaded set-wise (``adapters.db.ebok.load_batch``, ``signature_digests.apply_batch``):
a batch must leave exactly what loading its documents one at a time leaves. Real signed
documents (xmlsec1, the test PKI), several payers and properties, corrections arriving
before their base, changes, a payer's data changed by a later declaration, a replayed
copy of a signature arriving before its original — processed once one document per
batch and once all in one batch, on the same database, then compared row by row."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import delete, func, select, update

from adapters.db.tables import (
    ebok_declaration,
    ebok_fee_period,
    ebok_payer,
    ebok_property,
    worker_audit,
    worker_document,
    worker_signature_digest,
)
from tests.sigtools import xmlsig
from tests.sigtools.pki import Person, make_pesel
from tests.test_e2e_declarations import app, deliver  # noqa: F401  (fixture)
from worker import states
from worker.config import ProcessingConfig


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


ANNA = Person("Anna", "Nowak", make_pesel(date(1970, 5, 4), 11, True), date(1970, 5, 4))
PIOTR = Person("Piotr", "Kowalski", make_pesel(date(1981, 2, 9), 22, False), date(1981, 2, 9))
EWA = Person("Ewa", "Zielińska", make_pesel(date(1965, 11, 30), 33, True), date(1965, 11, 30))


def signed(pki, who: Person, filed: datetime, **kw) -> bytes:
    doc = xmlsig.declaration_at(who, created=filed.date().isoformat(), **kw)
    return xmlsig.sign(doc, xmlsig.pz_signature(pki.seal, filed - timedelta(minutes=5), xmlsig.ep_signature(who)), pki.seal)


def corpus(pki) -> list[tuple[str, bytes, datetime]]:
    """(reference, bytes, filing time) in arrival order (not filing order)."""
    anna_first = signed(pki, ANNA, utc(2025, 2, 3, 9), street="Polna", building="1", applies="2025-02-01", residents=2)
    anna_corr = signed(pki, ANNA, utc(2025, 3, 10, 9), street="Polna", building="1", purpose="KOREKTA", applies="2025-02-01", residents=3)
    anna_change = signed(pki, ANNA, utc(2025, 6, 2, 9), street="Polna", building="1", purpose="NOWA", applies="2025-06-01", residents=4)
    piotr_first = signed(pki, PIOTR, utc(2025, 1, 15, 9), street="Leśna", building="7", applies="2025-01-01", residents=3)
    # a change that lowers the fee for months already past: for review
    piotr_retro = signed(pki, PIOTR, utc(2025, 5, 20, 9), street="Leśna", building="7", purpose="NOWA", applies="2025-02-01", residents=1)
    piotr_second_home = signed(pki, PIOTR, utc(2025, 4, 1, 9), street="Opolska", building="3", applies="2025-04-01", residents=3)
    ewa_first = signed(pki, EWA, utc(2025, 3, 3, 9), street="Szkolna", building="9", applies="2025-03-01", residents=5)
    ewa_corr_no_base = signed(pki, EWA, utc(2025, 2, 1, 9), street="Szkolna", building="9", purpose="KOREKTA", applies="2025-01-01",
                              residents=2)
    return [
        ("anna-corr", anna_corr, utc(2025, 3, 10, 9)),  # before its base
        ("piotr-retro", piotr_retro, utc(2025, 5, 20, 9)),
        ("anna-copy", anna_first + b"\n<!-- ponownie -->", utc(2025, 9, 1, 9)),  # a copy, before its original
        ("ewa-corr", ewa_corr_no_base, utc(2025, 2, 1, 9)),
        ("anna-first", anna_first, utc(2025, 2, 3, 9)),
        ("piotr-first", piotr_first, utc(2025, 1, 15, 9)),
        ("anna-change", anna_change, utc(2025, 6, 2, 9)),
        ("piotr-home2", piotr_second_home, utc(2025, 4, 1, 9)),
        ("ewa-first", ewa_first, utc(2025, 3, 3, 9)),
    ]


def snapshot(app) -> dict:
    """The eBOK tables and the documents' outcomes, keyed by what does not depend on ids."""
    with app.engine.connect() as conn:
        refs = {r.id: r.source_ref for r in conn.execute(select(worker_document.c.id, worker_document.c.source_ref))}
        decl_ref = {r.id: refs[r.document_id] for r in conn.execute(select(ebok_declaration.c.id, ebok_declaration.c.document_id))}
        payer = {r.id: r.pesel for r in conn.execute(select(ebok_payer.c.id, ebok_payer.c.pesel))}
        prop = {r.id: r.match_key for r in conn.execute(select(ebok_property.c.id, ebok_property.c.match_key))}
        declarations = {
            refs[r.document_id]: (r.status, [f["code"] for f in r.findings], decl_ref.get(r.corrects_id), payer.get(r.payer_id),
                                  prop.get(r.property_id), str(r.computed_fee))
            for r in conn.execute(select(ebok_declaration))
        }
        documents = {refs[r.id]: (r.state, r.outcome, [f["code"] for f in r.findings or []])
                     for r in conn.execute(select(worker_document))}
        payers = {r.pesel: (r.name, r.street, r.building, r.bank_account is not None) for r in conn.execute(select(ebok_payer))}
        properties = sorted(prop.values())
        periods = sorted(
            (prop[r.property_id], payer[r.payer_id], decl_ref[r.declaration_id], r.valid_from.isoformat(),
             r.valid_to.isoformat() if r.valid_to else None, f"{r.monthly_fee:.2f}")
            for r in conn.execute(select(ebok_fee_period))
        )
        processed = conn.execute(select(func.count()).select_from(worker_audit).where(worker_audit.c.action == "PROCESSED")).scalar_one()
    return dict(declarations=declarations, documents=documents, payers=payers, properties=properties, periods=periods, processed=processed)


def forget_the_load(app) -> None:
    """Back to the state right after intake: the documents stored, nothing loaded."""
    with app.engine.begin() as conn:
        for table in (ebok_fee_period, worker_signature_digest, worker_audit, ebok_declaration, ebok_payer, ebok_property):
            conn.execute(delete(table))
        conn.execute(update(worker_document).values(state=states.RECEIVED, outcome=None, findings=None, declaration=None, attempts=0,
                                                     processed_at=None))


def test_one_batch_leaves_what_one_document_at_a_time_leaves(app, pki):
    for ref, raw, filed in corpus(pki):
        deliver(app, raw, ref, filed)

    app.processor.config = ProcessingConfig(workers=1, batch_size=1)
    report = app.processor.run_pending()
    assert (report.processed, report.failed) == (9, 0)
    one_by_one = snapshot(app)

    forget_the_load(app)
    app.processor.config = ProcessingConfig(workers=1, batch_size=50)
    report = app.processor.run_pending()
    assert (report.processed, report.failed) == (9, 0)
    batched = snapshot(app)

    assert batched == one_by_one
    d = batched["declarations"]
    ref = "/cr/dekl#{}".format
    # the cases are really there (so the comparison compares something)
    assert d[ref("anna-corr")][0] == "ACCEPTED" and d[ref("anna-corr")][2] == ref("anna-first")
    assert d[ref("anna-first")][0] == "SUPERSEDED"
    assert d[ref("anna-copy")][0] == "REJECTED" and "DUPLICATE_SIGNATURE" in d[ref("anna-copy")][1]
    assert d[ref("ewa-corr")][:2] == ("NEEDS_REVIEW", ["CORRECTION_WITHOUT_BASE"])
    assert d[ref("piotr-retro")][0] == "NEEDS_REVIEW" and "RETROACTIVE_DECREASE" in d[ref("piotr-retro")][1]
    assert len(batched["payers"]) == 3 and len(batched["properties"]) == 4
    assert batched["processed"] == 9
    # the outcome of every document is its declaration's
    for r, (state, outcome, codes) in batched["documents"].items():
        assert state == states.DONE and (outcome, codes) == d[r][:2], r


def test_reprocessing_everything_in_one_batch_changes_nothing(app, pki):
    for ref, raw, filed in corpus(pki):
        deliver(app, raw, ref, filed)
    app.processor.config = ProcessingConfig(workers=1, batch_size=3)
    app.processor.run_pending()
    before = snapshot(app)
    with app.engine.connect() as conn:
        ids = list(conn.execute(select(worker_document.c.id).order_by(worker_document.c.id)).scalars())
    app.processor.config = ProcessingConfig(workers=1, batch_size=50)
    results = app.processor.process_ids(ids, force=True)
    assert set(results.values()) <= {"ACCEPTED", "NEEDS_REVIEW", "REJECTED", "SUPERSEDED"}
    after = snapshot(app)
    assert after["processed"] == 2 * before["processed"]
    assert {k: v for k, v in after.items() if k != "processed"} == {k: v for k, v in before.items() if k != "processed"}
