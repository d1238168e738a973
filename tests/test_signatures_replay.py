"""Issue #10, attack 3 (replay) through the real stages and the database: one signature,
one filing. Documents signed by xmlsec1 with the test PKI; a copy differs from the
original by a comment outside the signed content, so its bytes (and SHA-256) differ."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from adapters.db.tables import ebok_declaration, worker_audit, worker_document, worker_signature_digest
from tests.test_e2e_declarations import app, declarations, deliver, periods, signed  # noqa: F401  (fixture)
from worker.processing import requeue


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


FIRST_FILED = utc(2025, 3, 10, 9)
K1_FILED = utc(2025, 7, 1, 9)
K2_FILED = utc(2025, 9, 1, 9)
REPLAY_FILED = utc(2026, 1, 12, 9)


def copy_of(raw: bytes) -> bytes:
    return raw + b"\n<!-- przeslane ponownie -->"


def codes(row) -> list[str]:
    return [f["code"] for f in row["findings"]]


def audit(app, action: str) -> list[dict]:
    with app.engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(worker_audit).where(worker_audit.c.action == action)).mappings()]


def test_a_replayed_old_correction_changes_nothing(app, pki):
    first = deliver(app, signed(pki, residents=2, filed=FIRST_FILED), "first", FIRST_FILED)
    k1_raw = signed(pki, purpose="KOREKTA", residents=1, filed=K1_FILED)
    k1 = deliver(app, k1_raw, "k1", K1_FILED)
    app.processor.run_pending()
    k2 = deliver(app, signed(pki, purpose="KOREKTA", residents=2, filed=K2_FILED), "k2", K2_FILED)
    app.processor.run_pending()
    d = declarations(app)
    assert [d[i]["status"] for i in (first, k1, k2)] == ["SUPERSEDED", "SUPERSEDED", "ACCEPTED"]
    before = periods(app)
    assert before == [("2025-03-01", None, "76.00")]

    replay = deliver(app, copy_of(k1_raw), "replay", REPLAY_FILED)
    app.processor.run_pending()
    d = declarations(app)
    r = d[replay]
    assert (r["status"], codes(r)) == ("REJECTED", ["DUPLICATE_SIGNATURE"])
    assert f"dokumencie nr {k1}" in r["findings"][0]["message"]
    assert r["signature_status"] == "VALID" and r["corrects_id"] is None
    assert (d[k1]["status"], d[k2]["status"], d[k2]["corrects_id"]) == ("SUPERSEDED", "ACCEPTED", d[k1]["id"])
    assert periods(app) == before  # the fee stays 76.00
    with app.engine.connect() as conn:
        doc = conn.execute(select(worker_document).where(worker_document.c.id == replay)).mappings().one()
        digests = conn.execute(select(worker_signature_digest.c.document_id, worker_signature_digest.c.digest)).all()
    assert doc["outcome"] == "REJECTED"
    by_doc = {}
    for doc_id, digest in digests:
        by_doc.setdefault(doc_id, set()).add(digest)
    assert by_doc[replay] == by_doc[k1] and len(by_doc) == 4  # every verified signature recorded
    # processing the copy again decides the same
    with app.engine.begin() as conn:
        requeue(conn, [replay], utc(2026, 2, 1))
    app.processor.run_pending()
    d = declarations(app)
    assert (d[replay]["status"], d[k1]["status"], d[k2]["status"]) == ("REJECTED", "SUPERSEDED", "ACCEPTED")
    assert "DUPLICATE_SIGNATURE" in codes(d[replay]) and codes(d[k1]) == []
    assert periods(app) == before


def test_a_copy_loaded_before_its_earlier_filed_original_is_redecided(app, pki):
    first = deliver(app, signed(pki, residents=2, filed=FIRST_FILED), "first", FIRST_FILED)
    k1_raw = signed(pki, purpose="KOREKTA", residents=1, filed=K1_FILED)
    copy = deliver(app, copy_of(k1_raw), "copy", REPLAY_FILED)  # the copy arrives first
    app.processor.run_pending()
    d = declarations(app)
    assert d[copy]["status"] == "ACCEPTED" and d[first]["status"] == "SUPERSEDED"
    assert periods(app) == [("2025-03-01", None, "38.00")]

    original = deliver(app, k1_raw, "original", K1_FILED)  # filed earlier, delivered later
    app.processor.run_pending()
    d = declarations(app)
    assert d[original]["status"] == "ACCEPTED" and d[original]["corrects_id"] == d[first]["id"]
    assert (d[copy]["status"], codes(d[copy])) == ("REJECTED", ["DUPLICATE_SIGNATURE"])
    assert f"dokumencie nr {original}" in d[copy]["findings"][0]["message"]
    assert d[copy]["corrects_id"] is None and d[first]["status"] == "SUPERSEDED"
    with app.engine.connect() as conn:
        rows = conn.execute(select(ebok_declaration.c.id).where(ebok_declaration.c.document_id == original)).scalars().all()
        fee_decls = {r.declaration_id for r in conn.execute(select(ebok_declaration.c.id.label("declaration_id")).where(ebok_declaration.c.status == "ACCEPTED"))}
        outcome = conn.execute(select(worker_document.c.outcome).where(worker_document.c.id == copy)).scalar_one()
    assert periods(app) == [("2025-03-01", None, "38.00")] and fee_decls == set(rows)
    assert outcome == "REJECTED"
    (entry,) = audit(app, "DUPLICATE_SIGNATURE")
    assert (entry["document_id"], entry["old_status"], entry["new_status"]) == (copy, "ACCEPTED", "REJECTED")
    assert entry["note"] == f"signature first filed in document {original}"


def test_the_redecided_copy_stops_being_a_base(app, pki):
    # a copy of the FIRST declaration is loaded first and corrected; then the original arrives
    first_raw = signed(pki, residents=2, filed=FIRST_FILED)
    copy = deliver(app, copy_of(first_raw), "copy", utc(2025, 3, 12, 9))
    app.processor.run_pending()
    corr = deliver(app, signed(pki, purpose="KOREKTA", residents=1, filed=K1_FILED), "corr", K1_FILED)
    app.processor.run_pending()
    d = declarations(app)
    assert d[corr]["corrects_id"] == d[copy]["id"] and d[copy]["status"] == "SUPERSEDED"
    original = deliver(app, first_raw, "original", FIRST_FILED)
    app.processor.run_pending()  # the correction is processed again and finds the original
    d = declarations(app)
    assert d[copy]["status"] == "REJECTED" and codes(d[copy]) == ["DUPLICATE_SIGNATURE"]
    assert d[corr]["status"] == "ACCEPTED" and d[corr]["corrects_id"] == d[original]["id"]
    assert d[original]["status"] == "SUPERSEDED"
    assert periods(app) == [("2025-03-01", None, "38.00")]


def test_byte_identical_redelivery_stays_one_document(app, pki):
    raw = signed(pki, residents=2, filed=FIRST_FILED)
    first = deliver(app, raw, "first", FIRST_FILED)
    app.processor.run_pending()
    again = deliver(app, raw, "first", FIRST_FILED)
    app.processor.run_pending()
    assert again == first
    d = declarations(app)
    assert list(d) == [first] and d[first]["status"] == "ACCEPTED" and codes(d[first]) == []


def test_same_file_filed_twice_the_same_moment_lowest_id_counts(app, pki):
    raw = signed(pki, residents=2, filed=FIRST_FILED)
    a = deliver(app, raw, "a", FIRST_FILED)
    b = deliver(app, copy_of(raw), "b", FIRST_FILED)
    app.processor.run_pending()
    d = declarations(app)
    assert d[min(a, b)]["status"] == "ACCEPTED"
    assert (d[max(a, b)]["status"], codes(d[max(a, b)])) == ("REJECTED", ["DUPLICATE_SIGNATURE"])
    assert periods(app) == [("2025-03-01", None, "76.00")]


def test_dry_run_shows_the_duplicate_and_writes_nothing(app, pki):
    raw = signed(pki, residents=2, filed=FIRST_FILED)
    a = deliver(app, raw, "a", FIRST_FILED)
    app.processor.run_pending()
    b = deliver(app, copy_of(raw), "b", utc(2025, 3, 11))
    preview = app.processor.preview(b)
    assert preview["new_outcome"] == "REJECTED" and preview["new_codes"] == ["DUPLICATE_SIGNATURE"]
    with app.engine.connect() as conn:
        assert conn.execute(select(worker_signature_digest.c.document_id)).scalars().all() == [a]


def test_duplicates_are_logged_without_personal_data(app, pki, caplog):
    import logging

    raw = signed(pki, residents=2, filed=FIRST_FILED)
    copy = deliver(app, copy_of(raw), "copy", utc(2025, 3, 12, 9))
    app.processor.run_pending()
    original = deliver(app, raw, "original", FIRST_FILED)
    later = deliver(app, copy_of(copy_of(raw)), "later", utc(2025, 3, 13, 9))
    with caplog.at_level(logging.INFO, logger="adapters.db.signature_digests"):
        app.processor.run_pending()
    events = [(r.event, r.document_id, r.first_document_id) for r in caplog.records if getattr(r, "event", "").startswith("signature.duplicate")]
    assert ("signature.duplicate_redecided", copy, original) in events
    assert ("signature.duplicate", later, original) in events
    from tests.sigtools.pki import ALICJA

    assert not any(ALICJA.pesel in r.getMessage() or ALICJA.last in r.getMessage() for r in caplog.records)
