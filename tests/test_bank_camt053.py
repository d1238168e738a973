"""camt.053.001.02 and .001.08 parsed safely, validated against the ISO XSDs, checked."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from lxml import etree

from tests.bank_files import COLLECTION, OTHER_ACCOUNT, Entry, Tx, camt053, va
from worker.bank.camt053 import _schema
from worker.bank.model import CREDIT, DEBIT, StatementRefused
from worker.bank.options import BankFormat
from worker.bank.statement import read_statements

CAMT = BankFormat(account=COLLECTION, format="camt053", virtual_account_from="camt-cdtracct")
VERSIONS = ["02", "08"]


def refused(raw: bytes, fmt: BankFormat = CAMT) -> StatementRefused:
    with pytest.raises(StatementRefused) as info:
        read_statements(raw, fmt)
    return info.value


def sample(version: str, **kw) -> bytes:
    return camt053([
        Entry("174.50", acct_svcr_ref="REF-1", txs=[Tx(cdtr_acct="PL" + va(12), dbtr_acct="PL" + OTHER_ACCOUNT, dbtr_name="ANNA  NOWAK",
                                                        ustrd=["OPŁATA ZA ODPADY ", "STYCZEŃ 2025"])]),
        Entry("2.50", cd="DBIT", ntry_ref="N7", txs=[Tx(cdtr_name="BANK", dbtr_name=None, ustrd=["PROWIZJA"])]),
        Entry("99.00", status="PDNG", txs=[Tx(cdtr_acct="PL" + va(1))]),
        Entry("300.00", acct_svcr_ref="BATCH-9", booked="2025-01-10T23:30:00Z",
              txs=[Tx(amount="100.00", cdtr_acct="PL" + va(1)), Tx(amount="200.00", cdtr_acct="PL" + va(2), dbtr_name="FIRMA SP. Z O.O.")]),
        Entry("174.50", cd="DBIT", reversal=True, txs=[Tx(cdtr_acct="PL" + va(12))]),
    ], version=version, **kw)


@pytest.mark.parametrize("version", VERSIONS)
def test_the_test_documents_are_valid_against_the_iso_schema(version):
    root = etree.fromstring(sample(version))
    assert _schema(version).validate(root), _schema(version).error_log


@pytest.mark.parametrize("version", VERSIONS)
def test_a_statement_with_a_batch_a_reversal_and_a_pending_entry(version):
    (s,) = read_statements(sample(version), CAMT)
    assert (s.format, s.account, s.statement_ref, s.number, s.duplicate) == ("camt053", COLLECTION, "STMT-2025-010", 10, False)
    assert (s.opening, s.closing) == (Decimal("100.00"), Decimal("397.50"))
    refs = [m.tx_ref for m in s.movements]
    assert refs == ["REF-1", "STMT-2025-010#N7", "BATCH-9/1", "BATCH-9/2", "STMT-2025-010#5"]  # the pending entry is no movement
    first, fee, b1, b2, storno = s.movements
    assert (first.direction, first.amount, first.virtual_account) == (CREDIT, Decimal("174.50"), va(12))
    assert (first.title, first.counterparty_name) == ("OPŁATA ZA ODPADY STYCZEŃ 2025", "ANNA NOWAK")
    assert (fee.direction, fee.virtual_account, fee.counterparty_name) == (DEBIT, None, "BANK")
    assert [(m.amount, m.virtual_account) for m in (b1, b2)] == [(Decimal("100.00"), va(1)), (Decimal("200.00"), va(2))]
    assert b1.booked_on == date(2025, 1, 11)  # 23:30 UTC is past midnight in Poland
    assert (storno.direction, storno.reversal, storno.virtual_account) == (DEBIT, True, va(12))


def test_the_virtual_account_in_the_second_ustrd():
    fmt = BankFormat(account=COLLECTION, format="camt053", virtual_account_from="camt-ustrd")
    (s,) = read_statements(camt053([Entry("5.00", txs=[Tx(ustrd=["ZA STYCZEN", va(3), "DOPISEK"])])]), fmt)
    assert (s.movements[0].virtual_account, s.movements[0].title) == (va(3), "ZA STYCZENDOPISEK")


def test_a_copy_is_marked_and_several_statements_in_one_file():
    statements = read_statements(camt053([Entry("1.00")], copy="DUPL", statements=2), CAMT)
    assert [(s.statement_ref, s.number, s.duplicate) for s in statements] == [("STMT-2025-010-1", 10, True), ("STMT-2025-010-2", 11, True)]


@pytest.mark.parametrize("version", VERSIONS)
def test_a_batch_that_does_not_add_up(version):
    raw = camt053([Entry("300.00", txs=[Tx(amount="100.00"), Tx(amount="199.99")])], version=version)
    e = refused(raw)
    assert (e.reason, e.entry) == ("structure_invalid", 1) and e.line is not None


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (camt053([Entry("1.00")], closing="101.01"), "balance_mismatch"),
        (camt053([Entry("1.00")], account="PL" + OTHER_ACCOUNT), "account_unknown"),
        (camt053([Entry("1.00", ccy="EUR")]), "currency_unsupported"),
        (camt053([Entry("1.00")], ccy="EUR"), "currency_unsupported"),
        (camt053([Entry("1.005")]), "structure_invalid"),
        (camt053([Entry("1.00")]).replace(b"<GrpHdr><MsgId>MSG-1</MsgId>", b"<GrpHdr>"), "schema_invalid"),
        (camt053([Entry("1.00")]).replace(b"<Id>STMT", b"<Ident>STMT").replace(b"</Id><ElctrncSeqNb>", b"</Ident><ElctrncSeqNb>"), "schema_invalid"),
        (camt053([Entry("1.00")])[:-30], "xml_malformed"),
        (camt053([Entry("1.00")], prolog='<?xml version="1.0"?>\n<!DOCTYPE Document [<!ENTITY x "y">]>\n'), "xml_forbidden"),
        (camt053([Entry("1.00")]).replace(b"<BkToCstmrStmt>", b'<BkToCstmrStmt><xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="/etc/passwd"/>'), "xml_forbidden"),
        (camt053([Entry("1.00")], prolog='<?xml version="1.0" encoding="ISO-8859-2"?>\n'), "encoding_error"),
        (camt053([Entry("1.00")]).replace(b"camt.053.001.02", b"camt.052.001.02"), "not_a_statement"),
        (camt053([Entry("1.00")]).replace(b"camt.053.001.02", b"camt.054.001.02"), "not_a_statement"),
        (camt053([Entry("1.00")]).replace(b"camt.053.001.02", b"camt.053.001.04"), "format_unknown"),
    ],
)
def test_refusals(raw, reason):
    assert refused(raw).reason == reason


def test_the_schema_error_names_its_line_and_never_the_content():
    raw = camt053([Entry("1.00")]).replace(b"<CdtDbtInd>CRDT</CdtDbtInd><Sts>", b"<CdtDbtInd>SECRET</CdtDbtInd><Sts>")
    e = refused(raw)
    assert e.reason == "schema_invalid" and e.line == 2  # the document after the XML declaration
    assert "SECRET" not in e.reason_text()


def test_an_mt940_file_on_a_camt_account_is_the_other_format():
    from tests.bank_files import Line, mt940_page

    assert refused(mt940_page([Line("C", "1,00")]).encode()).reason == "format_not_configured"
