"""The ePUAP pull loop over real HTTP on loopback: the real zeep client against the double,
storing into the real durable intake (SQLite). Every scenario ends with the exactly-once
check: each queued document confirmed once, in order, stored once with its exact bytes."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest
from lxml import etree
from sqlalchemy import select

from adapters.db.tables import worker_document, worker_mailbox
from adapters.epuap import double, wssec
from adapters.epuap.client import skrot_of
from adapters.epuap.pull import pull_mailboxes
from adapters.storage import DocumentStore
from worker.config import EpuapConfig, Mailbox
from worker.intake import Intake

DEKL = Mailbox("czystyregion", "deklaracje")
INNE = Mailbox("czystyregion", "inne")
OBJ = "http://wsdl.epuap.gov.pl/obiekty/"
PASSWORD_ENV = "EBOK_TEST_EPUAP_KEY_PASSWORD"


@pytest.fixture
def samples(shared_dir) -> Path:
    return shared_dir / "spec/samples/signed"


@pytest.fixture
def server(keys, samples):
    srv = double.serve("127.0.0.1", 0, None, keys, load={DEKL.address: samples, INNE.address: samples})
    yield srv
    srv.shutdown()


@pytest.fixture
def intake(engine, tmp_path) -> Intake:
    return Intake(engine, DocumentStore(tmp_path / "documents"))


@pytest.fixture
def cfg(server, keys, monkeypatch) -> EpuapConfig:
    monkeypatch.setenv(PASSWORD_ENV, keys.system_key_password)
    return EpuapConfig(
        enabled=True,
        endpoint=server.url,
        certificate=keys.system_certificate,
        private_key=keys.system_key,
        private_key_password_env=PASSWORD_ENV,
        response_certificate=keys.double_certificate,
        timeout_s=5.0,
        connect_timeout_s=2.0,
        batch_limit=100,
        max_attempts=5,
        backoff_initial_s=0.001,
        backoff_max_s=0.01,
        mailboxes=(DEKL, INNE),
    )


def rows(engine, mailbox: str | None = None) -> list[dict]:
    query = select(worker_document).order_by(worker_document.c.id)
    if mailbox is not None:
        query = query.where(worker_document.c.source == mailbox)
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def assert_exactly_once(server, intake, engine, expected: dict[str, list[double.QueuedDocument]]) -> None:
    """Each expected document: confirmed once on ePUAP (in FIFO order), stored once, bytes intact."""
    for address, docs in expected.items():
        assert server.pending(address) == [], f"{address}: documents left on ePUAP"
        assert [d.name for d in server.confirmed(address)] == [d.name for d in docs]
        stored = rows(engine, address)
        assert sorted(r["sha256"] for r in stored) == sorted(DocumentStore.digest(d.content) for d in docs)
        by_sha = {r["sha256"]: r for r in stored}
        for d in docs:
            row = by_sha[DocumentStore.digest(d.content)]
            assert intake.store_.get(row["storage_key"]) == d.content
            assert row["channel"] == "EPUAP" and row["source_ref"] == f"{address}#{row['sha256']}"
            assert row["meta"]["skrot"] == skrot_of(d.content)


def initial(server) -> dict[str, list[double.QueuedDocument]]:
    return {address: server.pending(address) for address in (DEKL.address, INNE.address)}


def pull(cfg, intake, **kw):
    return {r.mailbox: r for r in pull_mailboxes(cfg, intake, **kw)}


# --------------------------------------------------------------------------- the full loop


def test_full_loop_drains_two_mailboxes_exactly_once_with_all_metadata(server, cfg, intake, engine, samples):
    expected = initial(server)
    assert len(expected[DEKL.address]) == 6
    reports = pull(cfg, intake)
    for address, docs in expected.items():
        r = reports[address]
        assert r.ok and r.drained and r.gave_up is None and r.errors == []
        assert (r.fetched, r.stored_new, r.duplicates, r.confirmed) == (len(docs), len(docs), 0, len(docs))
        assert r.round_trips == 2 * len(docs) + 1  # fetch + confirm each, one empty fetch
        assert r.last_success_at is not None
    assert_exactly_once(server, intake, engine, expected)

    # metadata of one document, against its sidecar
    sidecar = json.loads((samples / "do1-2025-pz-nowy-jednorodzinna.xml.meta.json").read_text(encoding="utf-8"))
    row = next(r for r in rows(engine, DEKL.address) if r["meta"]["nazwaPliku"] == "do1-2025-pz-nowy-jednorodzinna.xml")
    meta = row["meta"]
    assert row["filed_at"] == datetime.fromisoformat(sidecar["dataNadania"])
    assert meta["danePodmiotu"]["pesel"] == sidecar["danePodmiotu"]["pesel"]
    assert meta["danePodmiotu"]["zgoda"] is True and meta["danePodmiotu"]["typOsoby"] == "F"
    assert meta["daneNadawcy"]["uzytkownik"] == sidecar["nadawca_uzytkownik"]
    assert meta["adresOdpowiedzi"] == sidecar["adresOdpowiedzi"]
    assert meta["czyTestowe"] is False and meta["typPliku"] == "application/xml"
    assert meta["adresSkrytki"] == DEKL.address and meta["nazwaSkrytki"] == DEKL.skrytka
    assert meta["identyfikatorDokumentu"] and meta["daneDodatkowe"]["fields"]["IdentyfikatorDokumentu"] == meta["identyfikatorDokumentu"]
    assert "zawartosc" not in json.dumps(meta)

    with engine.connect() as conn:
        boxes = {r.address: r for r in conn.execute(select(worker_mailbox))}
    assert set(boxes) == {DEKL.address, INNE.address}
    assert all(b.last_success_at is not None and b.last_error is None for b in boxes.values())

    # a second pass finds nothing and stores nothing
    again = pull(cfg, intake)
    assert all(r.ok and r.drained and r.fetched == 0 and r.round_trips == 1 for r in again.values())
    assert len(rows(engine)) == 12


def test_every_request_validates_against_the_reference_schema(server, cfg, intake, shared_dir):
    schema = etree.XMLSchema(etree.parse(str(shared_dir / "reference/epuap/obiektypk.xsd")))
    reports = pull(replace(cfg, batch_limit=2), intake)  # the limit makes the pass count the rest too
    assert reports[DEKL.address].remaining == 4
    operations = set()
    for record in server.requests:
        env = etree.fromstring(record.body)
        payload = env.find(f"{{{wssec.SOAP11}}}Body")[0]
        assert schema.validate(payload), schema.error_log
        assert all(etree.QName(child).namespace is None for child in payload)  # unqualified children
        operations.add(record.operation)
        assert record.accepted
    assert operations == {"oczekujaceDokumenty", "pobierzNastepny", "potwierdzOdebranie"}


def test_test_submissions_are_stored_flagged_and_hostile_extra_data_is_not_expanded(server, cfg, intake, engine):
    bomb = '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]><DaneDodatkowe>&lol2;</DaneDodatkowe>'
    box = "/czystyregion/testy"
    server.enqueue(box, b"<test>1</test>", {"czyTestowe": True, "dataNadania": "2025-01-02T03:04:05"}, name="t.xml")
    server.enqueue(box, b"<test>2</test>", {"daneDodatkowe": bomb}, name="u.xml")
    expected = {box: server.pending(box)}
    reports = pull(replace(cfg, mailboxes=(Mailbox("czystyregion", "testy"),)), intake)
    assert reports[box].test_documents == 1 and reports[box].stored_new == 2
    assert_exactly_once(server, intake, engine, expected)
    first, second = rows(engine, box)
    assert first["meta"]["czyTestowe"] is True and second["meta"]["czyTestowe"] is False
    assert first["filed_at"].utcoffset() is not None  # no offset given: read as Europe/Warsaw
    assert first["meta"]["dataNadania"].startswith("2025-01-02T03:04:05+01:00")
    assert second["meta"]["daneDodatkowe"]["error"] == "DTD/DOCTYPE not allowed"
    assert "lollol" not in json.dumps(second["meta"])


def test_batch_limit_bounds_a_pass_and_the_next_pass_continues(server, cfg, intake, engine):
    expected = initial(server)
    small = replace(cfg, batch_limit=4, mailboxes=(DEKL,))
    first = pull(small, intake)[DEKL.address]
    assert (first.confirmed, first.remaining, first.drained, first.round_trips) == (4, 2, False, 2 * 4 + 1)
    second = pull(small, intake)[DEKL.address]
    assert (second.confirmed, second.drained) == (2, True)
    assert_exactly_once(server, intake, engine, {DEKL.address: expected[DEKL.address]})


# --------------------------------------------------------------------------- crashes and lost replies


class Crash(BaseException):
    """The process dies (not an Exception: nothing in the loop may swallow it)."""


class CrashAfterStore:
    """Intake that 'kills the process' right after the n-th store returned (before confirming)."""

    def __init__(self, intake: Intake, after: int) -> None:
        self.intake, self.after = intake, after

    def store(self, **kw):
        result = self.intake.store(**kw)
        self.after -= 1
        if self.after == 0:
            raise Crash
        return result

    def record_pull(self, *a, **kw):
        return self.intake.record_pull(*a, **kw)


def test_redelivery_after_a_crash_between_store_and_confirm(server, cfg, intake, engine):
    expected = initial(server)
    one = replace(cfg, mailboxes=(DEKL,))
    with pytest.raises(Crash):
        pull_mailboxes(one, CrashAfterStore(intake, after=3), None)
    assert len(server.confirmed(DEKL.address)) == 2 and len(rows(engine, DEKL.address)) == 3
    report = pull(one, intake)[DEKL.address]  # "restarted" worker
    assert (report.fetched, report.stored_new, report.duplicates, report.confirmed) == (4, 3, 1, 4)
    assert_exactly_once(server, intake, engine, {DEKL.address: expected[DEKL.address]})


@pytest.mark.parametrize("position", ["middle", "last"])
def test_a_lost_confirmation_reply(server, cfg, intake, engine, position):
    expected = initial(server)
    server.faults.add("confirm-lost", after=2 if position == "middle" else 5)
    report = pull(replace(cfg, mailboxes=(DEKL,)), intake)[DEKL.address]
    assert report.ok and report.retries == 1 and len(report.errors) == 1
    assert (report.fetched, report.stored_new, report.duplicates) == (6, 6, 0)
    assert report.confirmed == 6  # the lost one inferred from the next fetch
    assert server.faults.injected == [("potwierdzOdebranie", "confirm-lost")]
    assert_exactly_once(server, intake, engine, {DEKL.address: expected[DEKL.address]})


def test_a_failed_confirmation_is_redone_after_fetching_the_same_document_again(server, cfg, intake, engine):
    expected = initial(server)
    server.faults.add("confirm-fail", times=2)
    report = pull(replace(cfg, mailboxes=(DEKL,)), intake)[DEKL.address]
    assert report.ok and report.retries == 2
    assert (report.fetched, report.stored_new, report.duplicates, report.confirmed) == (8, 6, 2, 6)
    assert any("kod=-1" in e and "potwierdzOdebranie" in e for e in report.errors)
    assert_exactly_once(server, intake, engine, {DEKL.address: expected[DEKL.address]})


# --------------------------------------------------------------------------- injected faults


FETCH_FAULTS = ["http500", "drop", "hang", "soap-fault", "soap-fault-200", "garbage", "bad-signature", "unsigned", "status-error"]


@pytest.mark.parametrize("operation", ["pobierzNastepny", "potwierdzOdebranie"])
@pytest.mark.parametrize("kind", FETCH_FAULTS)
def test_each_fault_kind_is_retried_and_ends_exactly_once(server, cfg, intake, engine, kind, operation):
    box = Mailbox("czystyregion", "krotka")
    for doc in server.pending(DEKL.address)[:3]:
        server.enqueue(box.address, doc.content, doc.meta, name=doc.name)
    expected = {box.address: server.pending(box.address)}
    server.faults.hang_s = 10.0
    server.faults.add(kind, operation, times=2, after=1)
    report = pull(replace(cfg, mailboxes=(box,), timeout_s=0.3), intake)[box.address]
    assert report.ok and report.drained and report.retries == 2 and len(report.errors) == 2
    assert [k for _, k in server.faults.injected] == [kind, kind]
    assert report.stored_new == 3 and report.confirmed == 3
    assert_exactly_once(server, intake, engine, expected)
    message = report.errors[0]
    if kind in ("soap-fault", "soap-fault-200"):
        assert "Wyjatek kod=5003" in message and "chwilowo niedostępna" in message and "Podpis" not in message
        assert ("HTTP 500" in message) == (kind == "soap-fault")
    elif kind == "status-error":
        assert "kod=-1" in message and "Podpis" not in message
    elif kind in ("bad-signature", "unsigned"):
        assert message.startswith("Podpis WS-Security odpowiedzi ePUAP jest nieprawidłowy")
    elif kind == "hang":
        assert "czas oczekiwania" in message
    else:
        assert operation in message


def test_random_faults_at_30_percent_still_end_exactly_once(server, cfg, intake, engine):
    expected = {DEKL.address: server.pending(DEKL.address)}
    server.faults.probability = 0.3
    server.faults._random.seed(7)
    server.faults.random_kinds = ("http500", "drop", "soap-fault", "garbage", "bad-signature", "confirm-lost", "confirm-fail")
    deadline = 0
    while any(server.pending(a) for a in expected) and deadline < 20:
        pull(replace(cfg, max_attempts=3, mailboxes=(DEKL,)), intake)
        deadline += 1
    assert len(server.faults.injected) > 3
    assert_exactly_once(server, intake, engine, expected)


def test_a_persistently_failing_epuap_ends_the_pass_with_a_report_and_the_next_pass_recovers(server, cfg, intake, engine):
    expected = initial(server)
    server.faults.add("soap-fault", "pobierzNastepny", times=-1)
    failed = pull(cfg, intake)
    for r in failed.values():
        assert not r.ok and r.retries == cfg.max_attempts - 1 and r.fetched == 0
        assert "Wyjatek kod=5003" in r.gave_up and r.last_success_at is None
    with engine.connect() as conn:
        box = conn.execute(select(worker_mailbox).where(worker_mailbox.c.address == DEKL.address)).one()
    assert box.last_success_at is None and "5003" in box.last_error
    assert rows(engine) == []
    server.faults.clear()
    recovered = pull(cfg, intake)
    assert all(r.ok and r.drained for r in recovered.values())
    assert_exactly_once(server, intake, engine, expected)
    with engine.connect() as conn:
        box = conn.execute(select(worker_mailbox).where(worker_mailbox.c.address == DEKL.address)).one()
    assert box.last_success_at is not None and box.last_error is None


def test_an_unreachable_endpoint_is_a_report_not_an_exception(cfg, intake, server):
    server.shutdown()
    reports = pull(replace(cfg, max_attempts=2), intake)
    assert all(not r.ok and "Błąd połączenia" in r.gave_up for r in reports.values())


# --------------------------------------------------------------------------- trust and configuration


def test_a_wrong_client_certificate_is_refused_and_nothing_moves(server, cfg, intake, engine, other_keys, monkeypatch):
    expected = initial(server)
    monkeypatch.setenv(PASSWORD_ENV, other_keys.system_key_password)
    foreign = replace(cfg, certificate=other_keys.system_certificate, private_key=other_keys.system_key, max_attempts=2)
    reports = pull(foreign, intake)
    for r in reports.values():
        assert not r.ok and "WS-Security" in r.gave_up and "unknown client certificate" in r.gave_up
        assert "Podpis" not in r.gave_up  # a refusal (Fault), not a response-signature error
    assert rows(engine) == [] and initial(server) == expected
    assert server.requests and not any(rec.accepted for rec in server.requests)


def test_responses_signed_by_an_unpinned_certificate_are_refused(server, cfg, intake, engine, other_keys):
    expected = initial(server)
    reports = pull(replace(cfg, response_certificate=other_keys.double_certificate, max_attempts=2), intake)
    assert all(not r.ok and r.gave_up.startswith("Podpis WS-Security") for r in reports.values())
    assert rows(engine) == [] and initial(server) == expected


def test_key_problems_are_reported_per_mailbox(cfg, intake, monkeypatch):
    monkeypatch.delenv(PASSWORD_ENV)
    reports = pull(cfg, intake)
    assert all(not r.ok and PASSWORD_ENV in r.gave_up for r in reports.values())
    monkeypatch.setenv(PASSWORD_ENV, "not the password")
    reports = pull(cfg, intake)
    assert all(not r.ok and "klucza" in r.gave_up for r in reports.values())


def test_one_mailbox_by_address_and_an_unknown_one_refused(server, cfg, intake, engine):
    reports = pull_mailboxes(cfg, intake, "czystyregion/inne", password=None)
    assert [r.mailbox for r in reports] == [INNE.address] and reports[0].confirmed == 6
    assert server.pending(DEKL.address) and not server.pending(INNE.address)
    with pytest.raises(ValueError, match="Nieznana skrytka"):
        pull_mailboxes(cfg, intake, "/nie/ma")


def test_latency_is_applied_per_request(server, cfg, intake, engine):
    """Correctness under latency (timing itself is measured in bench/, not asserted here)."""
    expected = initial(server)
    server.faults.latency_s = 0.005
    reports = pull(cfg, intake)
    assert all(r.ok for r in reports.values())
    assert_exactly_once(server, intake, engine, expected)


def test_document_bytes_with_bom_and_skrot_is_sha1_of_the_exact_bytes(server, cfg, intake, engine):
    box = Mailbox("czystyregion", "bom")
    content = b"\xef\xbb\xbf<?xml version='1.0' encoding='UTF-8'?><a>\xc5\xbc\xc3\xb3\xc5\x82w</a>\r\n"
    server.enqueue(box.address, content, {}, name="bom.xml")
    report = pull(replace(cfg, mailboxes=(box,)), intake)[box.address]
    assert report.confirmed == 1
    (row,) = rows(engine, box.address)
    assert intake.store_.get(row["storage_key"]) == content
    import hashlib

    assert row["meta"]["skrot"] == base64.b64encode(hashlib.sha1(content).digest()).decode()


def test_logs_at_debug_carry_events_and_no_personal_data_or_content(server, cfg, intake, engine, samples, caplog):
    import logging

    caplog.set_level(logging.DEBUG)
    server.faults.add("confirm-lost")
    reports = pull(cfg, intake)
    assert all(r.ok for r in reports.values())
    events = {getattr(rec, "event", None) for rec in caplog.records}
    assert {"epuap.fetch", "epuap.confirm", "epuap.retry", "epuap.pass", "epuap.confirm_inferred"} <= events
    fetch = next(rec for rec in caplog.records if getattr(rec, "event", None) == "epuap.fetch")
    assert fetch.mailbox in (DEKL.address, INNE.address) and isinstance(fetch.document_id, int)
    personal = set()
    for sidecar in samples.glob("*.meta.json"):
        meta = json.loads(sidecar.read_text(encoding="utf-8"))
        personal |= {meta["danePodmiotu"]["pesel"], meta["danePodmiotu"]["nazwiskoNazwa"], meta["nadawca_uzytkownik"]}
    text = "\n".join(f"{rec.getMessage()} {rec.__dict__}" for rec in caplog.records)
    assert not [p for p in personal if p in text]
    assert "Deklaracja" not in text and "zawartosc" not in text
