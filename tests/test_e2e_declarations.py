"""End to end through the real stages and the database: documents signed by xmlsec1 with
the test PKI, stored, processed, loaded; corrections, changes, review, arrival order."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import select

from adapters.db.tables import ebok_declaration, ebok_fee_period, ebok_payer, worker_audit, worker_document
from tests.sigtools import xmlsig
from tests.sigtools.pki import ALICJA
from worker import config as config_mod, review
from worker.app import App


def signed(pki, *, purpose="PIERWSZA", applies="2025-03-03", residents=2, fee=None, filed: datetime) -> bytes:
    fee = fee or f"{Decimal('38.00') * residents:.2f}"
    doc = xmlsig.declaration(ALICJA, fee=fee, residents=residents)
    doc = doc.replace("<wnio:Rodzaj>PIERWSZA</wnio:Rodzaj>", f"<wnio:Rodzaj>{purpose}</wnio:Rodzaj>")
    doc = doc.replace("<wnio:ObowiazujeOd>2025-03-03</wnio:ObowiazujeOd>", f"<wnio:ObowiazujeOd>{applies}</wnio:ObowiazujeOd>")
    if purpose == "KOREKTA":
        doc = doc.replace("</wnio:ObowiazujeOd>", "</wnio:ObowiazujeOd><wnio:Uzasadnienie>Błędna liczba mieszkańców.</wnio:Uzasadnienie>")
    return xmlsig.sign(doc, xmlsig.pz_signature(pki.seal, filed - timedelta(minutes=20), xmlsig.ep_signature(ALICJA)), pki.seal)


@pytest.fixture
def app(db_url, tmp_path, trust_files):
    anchors, seal = trust_files
    cfg = config_mod.from_dict(
        {
            "database": {"url": db_url},
            "storage": {"path": str(tmp_path / "documents")},
            "signatures": {"trust_anchors": str(anchors), "trusted_profile_seals": [str(seal)]},
            "payments": {"bank_branch": "10901014", "account_prefix": "4000"},
        },
        base=tmp_path,
    )
    a = App(cfg)
    yield a
    a.engine.dispose()


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def deliver(app, raw: bytes, ref: str, filed: datetime) -> int:
    return app.intake.store(channel="EPUAP", source_ref=f"/cr/dekl#{ref}", raw=raw, filed_at=filed, metadata={"czyTestowe": False}, mailbox="/cr/dekl").document_id


def declarations(app) -> dict[int, dict]:
    with app.engine.connect() as conn:
        return {r["document_id"]: dict(r) for r in conn.execute(select(ebok_declaration)).mappings()}


def periods(app) -> list[tuple[str, str | None, str]]:
    with app.engine.connect() as conn:
        rows = conn.execute(select(ebok_fee_period).order_by(ebok_fee_period.c.valid_from)).mappings().all()
    return [(r["valid_from"].isoformat(), r["valid_to"].isoformat() if r["valid_to"] else None, f"{r['monthly_fee']:.2f}") for r in rows]


FIRST_FILED = utc(2025, 3, 10, 9)
CHANGE_FILED = utc(2025, 6, 15, 9)
CORR_FILED = utc(2025, 7, 1, 9)


def test_first_change_and_correction_give_the_fee_periods(app, pki):
    first = deliver(app, signed(pki, filed=FIRST_FILED), "first", FIRST_FILED)
    change = deliver(app, signed(pki, purpose="NOWA", applies="2025-06-10", residents=3, filed=CHANGE_FILED), "change", CHANGE_FILED)
    app.processor.run_pending()
    d = declarations(app)
    assert d[first]["status"] == d[change]["status"] == "ACCEPTED", (d[first]["findings"], d[change]["findings"])
    assert d[first]["signature"] == "TRUSTED_PROFILE" and d[first]["signer"] == "Alicja Wróblewska"
    assert periods(app) == [("2025-03-01", "2025-05-31", "76.00"), ("2025-06-01", None, "114.00")]

    corr = deliver(app, signed(pki, purpose="KOREKTA", residents=1, filed=CORR_FILED), "corr", CORR_FILED)
    app.processor.run_pending()
    d = declarations(app)
    assert d[corr]["status"] == "ACCEPTED" and d[corr]["corrects_id"] == d[first]["id"]
    assert d[first]["status"] == "SUPERSEDED"
    assert periods(app) == [("2025-03-01", "2025-05-31", "38.00"), ("2025-06-01", None, "114.00")]
    with app.engine.connect() as conn:
        assert len(conn.execute(select(ebok_payer)).all()) == 1


def test_a_correction_arriving_first_waits_and_is_rechecked(app, pki):
    corr = deliver(app, signed(pki, purpose="KOREKTA", residents=1, filed=CORR_FILED), "corr", CORR_FILED)
    app.processor.run_pending()
    d = declarations(app)
    assert d[corr]["status"] == "NEEDS_REVIEW"
    assert [f["code"] for f in d[corr]["findings"]] == ["CORRECTION_WITHOUT_BASE"]
    first = deliver(app, signed(pki, filed=FIRST_FILED), "first", FIRST_FILED)
    app.processor.run_pending()
    d = declarations(app)
    assert d[corr]["status"] == "ACCEPTED" and d[first]["status"] == "SUPERSEDED"
    assert periods(app) == [("2025-03-01", None, "38.00")]


def test_fee_mismatch_goes_to_review_and_the_office_decides(app, pki, capsys):
    doc = deliver(app, signed(pki, fee="80.00", filed=FIRST_FILED), "first", FIRST_FILED)
    app.processor.run_pending()
    d = declarations(app)[doc]
    assert d["status"] == "NEEDS_REVIEW" and "FEE_MISMATCH" in {f["code"] for f in d["findings"]}
    assert d["declared_fee"] == Decimal("80.00") and d["computed_fee"] == Decimal("76.00")
    assert periods(app) == []  # takes no part until decided
    review.list_queue(app)
    review.show(app, d["id"])
    shown = capsys.readouterr().out
    assert f"#{d['id']}" in shown and "FEE_MISMATCH" in shown and "80,00 zł" in shown and "76,00 zł" in shown and "None" not in shown
    with pytest.raises(review.UsageError):
        review.decide(app, d["id"], "ACCEPTED", note="  ", user="akowalska")
    review.decide(app, d["id"], "ACCEPTED", note="Sprawdzono z mieszkańcem: 2 osoby.", user="akowalska")
    assert declarations(app)[doc]["status"] == "ACCEPTED"
    assert periods(app) == [("2025-03-01", None, "76.00")]  # the computed fee is what is charged
    with pytest.raises(review.UsageError, match="tylko dla deklaracji do weryfikacji"):
        review.decide(app, d["id"], "REJECTED", note="Za późno.", user="akowalska")
    # reprocessing keeps the office's decision
    from worker.processing import requeue

    with app.engine.begin() as conn:
        requeue(conn, [doc], datetime.now(timezone.utc))
    app.processor.run_pending()
    assert declarations(app)[doc]["status"] == "ACCEPTED"
    with app.engine.connect() as conn:
        actions = [r.action for r in conn.execute(select(worker_audit.c.action).order_by(worker_audit.c.id))]
        note = conn.execute(select(worker_document.c.review_note)).scalar_one()
    assert actions == ["PROCESSED", "REVIEW_ACCEPT", "PROCESSED"] and note.startswith("Sprawdzono")


def test_tampered_document_is_rejected_and_loaded_without_links(app, pki):
    raw = signed(pki, filed=FIRST_FILED).replace(b"<wnio:LiczbaMieszkancow>2<", b"<wnio:LiczbaMieszkancow>1<")
    doc = deliver(app, raw, "tampered", FIRST_FILED)
    app.processor.run_pending()
    d = declarations(app)[doc]
    assert d["status"] == "REJECTED" and "SIGNATURE_INVALID" in {f["code"] for f in d["findings"]}
    assert d["payer_id"] is None and d["property_id"] is None and periods(app) == []


@pytest.mark.parametrize("revoked", [False, True])
def test_revocation_required_uses_the_configured_crls(db_url, tmp_path, trust_files, pki, revoked):
    from cryptography.hazmat.primitives.serialization import Encoding

    from tests.sigtools.pki import utc as pki_utc

    anchors, seal = trust_files
    crl = pki.crl(pki.seal_ca, [(pki.seal, pki_utc(2024, 1, 1))] if revoked else [], last=pki_utc(2025, 1, 1), next=None)
    (tmp_path / "seal-ca.crl").write_bytes(crl.public_bytes(Encoding.DER))
    root_crl = pki.crl(pki.root, [], last=pki_utc(2025, 1, 1), next=None)  # every CA of the chain needs its list
    (tmp_path / "root.crl").write_bytes(root_crl.public_bytes(Encoding.PEM))
    base = {
        "database": {"url": db_url},
        "storage": {"path": str(tmp_path / "documents")},
        "signatures": {"trust_anchors": str(anchors), "trusted_profile_seals": [str(seal)], "revocation": "required"},
    }
    no_crl = App(config_mod.from_dict(base, base=tmp_path))
    doc = deliver(no_crl, signed(pki, filed=FIRST_FILED), "first", FIRST_FILED)
    no_crl.processor.run_pending()
    d = declarations(no_crl)[doc]
    assert d["status"] == "NEEDS_REVIEW" and d["signature_status"] == "INDETERMINATE"
    assert "SIGNATURE_INDETERMINATE" in {f["code"] for f in d["findings"]}
    no_crl.engine.dispose()

    base["signatures"]["crls"] = ["seal-ca.crl", "root.crl"]
    with_crl = App(config_mod.from_dict(base, base=tmp_path))
    with with_crl.engine.begin() as conn:
        from worker.processing import requeue

        requeue(conn, [doc], datetime.now(timezone.utc))
    with_crl.processor.run_pending()
    d = declarations(with_crl)[doc]
    if revoked:
        assert d["status"] == "REJECTED" and "SIGNATURE_UNTRUSTED" in {f["code"] for f in d["findings"]}
    else:
        assert d["status"] == "ACCEPTED" and d["signature_status"] == "VALID"
    with_crl.engine.dispose()


def test_new_rates_recompute_every_property_without_a_new_declaration(app, pki):
    from importlib import resources

    from rules.ruleset import loads_ruleset
    from worker.fees import recompute_if_rates_changed

    doc = deliver(app, signed(pki, filed=FIRST_FILED), "first", FIRST_FILED)
    app.processor.run_pending()
    assert periods(app) == [("2025-03-01", None, "76.00")]
    assert recompute_if_rates_changed(app.engine, app.settings.ruleset) == 1  # first start: fingerprint recorded
    assert recompute_if_rates_changed(app.engine, app.settings.ruleset) is None  # unchanged rates: nothing to do

    shipped = (resources.files("rules") / "czysty-region.toml").read_text(encoding="utf-8")
    new_table = (
        '[[residential]]\nvalid_from = 2025-07-01\nresolution = "uchwała (test)"\ncomposting_discount = 2.00\n'
        "tiers = [\n  { first_person = 1, last_person = 4, rate = 40.00 },\n"
        "  { first_person = 5, last_person = 5, rate = 32.50 },\n  { first_person = 6, rate = 26.50 },\n]\n\n"
    )
    marker = "# ---------------------------------------------------------------------------------------\n# Non-residential part"
    assert marker in shipped
    new_rules = loads_ruleset(shipped.replace(marker, new_table + marker), source="test")
    assert recompute_if_rates_changed(app.engine, new_rules) == 1
    assert periods(app) == [("2025-03-01", "2025-06-30", "76.00"), ("2025-07-01", None, "80.00")]
    assert declarations(app)[doc]["status"] == "ACCEPTED"


# --- arrival order must not matter (issue #11): the property decided as a whole ------------
#
# Each case is run in every arrival order, one fresh database per order; every order must
# give the values of the issue.


def arrive(app, pki, specs: dict[str, dict], order: str) -> dict[str, dict]:
    """Deliver and process the declarations named in ``order`` one by one, in that order;
    the eBOK rows by name."""
    ids = {}
    for name in order:
        spec = dict(specs[name])
        filed = spec.pop("filed")
        ids[name] = deliver(app, signed(pki, filed=filed, **spec), name, filed)
        app.processor.run_pending()
    rows = declarations(app)
    return {name: rows[doc] for name, doc in ids.items()}


def codes(row: dict) -> list[str]:
    return [f["code"] for f in row["findings"]]


def reconciled_audit(app) -> list[tuple[int, str, str, str, str]]:
    with app.engine.connect() as conn:
        rows = conn.execute(select(worker_audit).where(worker_audit.c.action == "RECONCILED").order_by(worker_audit.c.id)).mappings().all()
    return [(r["declaration_id"], r["actor"], r["old_status"], r["new_status"], r["note"]) for r in rows]


RETRO = {
    "F": dict(purpose="PIERWSZA", applies="2025-01-10", residents=4, filed=utc(2025, 1, 20, 9)),
    "N": dict(purpose="NOWA", applies="2025-02-05", residents=2, filed=utc(2025, 3, 5, 9)),
}


@pytest.mark.parametrize("order", ["FN", "NF"])
def test_retroactive_decrease_whatever_the_order(app, pki, order):
    d = arrive(app, pki, RETRO, order)
    assert d["F"]["status"] == "ACCEPTED" and codes(d["F"]) == []
    assert d["N"]["status"] == "NEEDS_REVIEW" and codes(d["N"]) == ["RETROACTIVE_DECREASE"]
    assert periods(app) == [("2025-01-01", None, "152.00")]
    audit = reconciled_audit(app)
    if order == "NF":  # N was accepted alone, and is decided again when F arrives: audited
        assert audit == [(d["N"]["id"], "worker", "ACCEPTED", "NEEDS_REVIEW", f"Deklaracja rozstrzygnięta ponownie po wczytaniu deklaracji nr {d['F']['id']} (dokument nr {d['F']['document_id']}).")]
        with app.engine.connect() as conn:
            doc = conn.execute(select(worker_document).where(worker_document.c.id == d["N"]["document_id"])).mappings().one()
        assert doc["outcome"] == "NEEDS_REVIEW" and [f["code"] for f in doc["findings"]] == ["RETROACTIVE_DECREASE"]
    else:
        assert audit == []


CORRECTED_BASE = {
    "F": dict(purpose="PIERWSZA", applies="2025-01-15", residents=3, filed=utc(2025, 1, 20, 9)),
    "K": dict(purpose="KOREKTA", applies="2025-02-10", residents=2, filed=utc(2025, 2, 11, 9)),
    "N": dict(purpose="NOWA", applies="2025-02-10", residents=4, filed=utc(2025, 2, 12, 9)),
}


@pytest.mark.parametrize("order", ["FKN", "FNK", "KFN", "KNF", "NFK", "NKF"])
def test_a_correction_corrects_what_was_filed_before_it_whatever_the_order(app, pki, order):
    d = arrive(app, pki, CORRECTED_BASE, order)
    assert (d["F"]["status"], d["K"]["status"], d["N"]["status"]) == ("SUPERSEDED", "ACCEPTED", "ACCEPTED")
    assert d["K"]["corrects_id"] == d["F"]["id"] and d["N"]["corrects_id"] is None
    assert codes(d["K"]) == [] and codes(d["N"]) == []
    # N, filed after the correction, applies over it from February
    assert periods(app) == [("2025-01-01", "2025-01-31", "114.00"), ("2025-02-01", None, "152.00")]


SUPERSEDED_ONE = {
    "F": dict(purpose="PIERWSZA", applies="2025-01-15", residents=3, filed=utc(2025, 1, 20, 9)),
    "N": dict(purpose="NOWA", applies="2025-02-10", residents=4, filed=utc(2025, 2, 12, 9)),
    "K": dict(purpose="KOREKTA", applies="2025-03-01", residents=2, filed=utc(2025, 3, 2, 9)),
}


@pytest.mark.parametrize("order", ["FNK", "FKN", "KFN", "KNF", "NFK", "NKF"])
def test_the_declaration_in_force_when_the_correction_was_filed_is_superseded_whatever_the_order(app, pki, order):
    d = arrive(app, pki, SUPERSEDED_ONE, order)
    assert (d["F"]["status"], d["N"]["status"], d["K"]["status"]) == ("ACCEPTED", "SUPERSEDED", "ACCEPTED")
    assert d["K"]["corrects_id"] == d["N"]["id"]
    assert periods(app) == [
        ("2025-01-01", "2025-01-31", "114.00"),
        ("2025-02-01", "2025-02-28", "152.00"),
        ("2025-03-01", None, "76.00"),
    ]


def test_an_office_decision_re_decides_the_property(app, pki):
    """The office's decision is an input of the property's reconciliation: accepting the
    base lets the waiting correction (filed after it) correct it, audited as the worker's."""
    first = deliver(app, signed(pki, fee="80.00", filed=FIRST_FILED), "first", FIRST_FILED)
    corr = deliver(app, signed(pki, purpose="KOREKTA", residents=1, filed=CORR_FILED), "corr", CORR_FILED)
    app.processor.run_pending()
    d = declarations(app)
    assert d[first]["status"] == "NEEDS_REVIEW" and set(codes(d[first])) == {"FEE_MISMATCH"}
    assert d[corr]["status"] == "NEEDS_REVIEW" and codes(d[corr]) == ["CORRECTION_WITHOUT_BASE"]
    review.decide(app, d[first]["id"], "ACCEPTED", note="Opłata wyliczona przez biuro.", user="akowalska")
    d = declarations(app)
    assert d[corr]["status"] == "ACCEPTED" and codes(d[corr]) == [] and d[corr]["corrects_id"] == d[first]["id"]
    assert d[first]["status"] == "SUPERSEDED"
    assert periods(app) == [("2025-03-01", None, "38.00")]
    note = f"Deklaracja rozstrzygnięta ponownie po decyzji biura w sprawie deklaracji nr {d[first]['id']}."
    assert sorted(reconciled_audit(app)) == sorted(
        [(d[corr]["id"], "worker", "NEEDS_REVIEW", "ACCEPTED", note), (d[first]["id"], "worker", "ACCEPTED", "SUPERSEDED", note)]
    )
    # reprocessing both keeps the office's decision, and so the same outcome
    from worker.processing import requeue

    with app.engine.begin() as conn:
        requeue(conn, [first, corr], datetime.now(timezone.utc))
    app.processor.run_pending()
    d = declarations(app)
    assert (d[first]["status"], d[corr]["status"]) == ("SUPERSEDED", "ACCEPTED")
    assert periods(app) == [("2025-03-01", None, "38.00")]


def test_a_doubtful_paper_pesel_goes_to_review_and_cannot_be_accepted_without_a_payer(app):
    """A PESEL the station read with low confidence and that is not one: the office reads
    the paper (review); no payer is created from it, so the office can only reject it."""
    from tests.test_scans_stages import variant

    raw = variant(fields={"skladajacy.pesel": ("02211307580", "0.83")})
    doc = app.intake.store(channel="PAPER", source_ref="scan:doubtful", raw=raw, filed_at=None, metadata={}, mailbox="scan-inbox").document_id
    app.processor.run_pending()
    d = declarations(app)[doc]
    assert d["status"] == "NEEDS_REVIEW" and set(codes(d)) == {"LOW_CONFIDENCE", "PESEL_INVALID"}
    assert d["payer_id"] is None and d["property_id"] is not None
    with pytest.raises(review.UsageError, match="nie ma płatnika albo nieruchomości"):
        review.decide(app, d["id"], "ACCEPTED", note="Odczytano z papieru.", user="akowalska")
    review.decide(app, d["id"], "REJECTED", note="Nieczytelny PESEL: prosimy o ponowne złożenie.", user="akowalska")
    assert declarations(app)[doc]["status"] == "REJECTED" and periods(app) == []


def test_a_processed_document_logs_one_info_record_and_its_steps_at_debug(app, pki, caplog):
    doc = deliver(app, signed(pki, filed=FIRST_FILED), "logged", FIRST_FILED)
    caplog.clear()  # intake's record is not processing's
    with caplog.at_level(logging.DEBUG):
        app.processor.run_pending()
    mine = [r for r in caplog.records if getattr(r, "document_id", None) == doc or getattr(r, "event", "") == "signature.verified"]
    assert [r.event for r in mine if r.levelno >= logging.INFO] == ["document.done"]
    debug = [r.event for r in mine if r.levelno == logging.DEBUG]
    assert {"document.step", "signature.verified"} <= set(debug)
    steps = [r.step for r in mine if r.event == "document.step"]
    assert "verify_signature" in steps or any("signature" in s for s in steps), steps
