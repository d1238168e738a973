"""MT940 (Polish ZBP variant and mBank's own :86:) read into checked statements or refused."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from tests.bank_files import COLLECTION, OTHER_ACCOUNT, Line, camt053, mt940_page, va, zbp86
from worker.bank.model import CREDIT, DEBIT, StatementRefused
from worker.bank.options import BankFormat
from worker.bank.statement import detect, read_statements

ZBP = BankFormat(account=COLLECTION, format="mt940", virtual_account_from="mt940-86-subfield:61", encoding="cp852")
MBANK = BankFormat(account=COLLECTION, format="mt940", virtual_account_from="mt940-86-label:ID IPH", encoding="iso-8859-2", unique_ref="mbank-tnr")


def refused(raw: bytes, fmt: BankFormat) -> StatementRefused:
    with pytest.raises(StatementRefused) as info:
        read_statements(raw, fmt)
    return info.value


TITLE = "OPŁATA ZA GOSPODAROWANIE ODPADAMI KOMUNALNYMI STYCZEŃ 2025"
NAME = "JÓZEF ŻÓŁTOWSKI-GĘŚLAK"


def zbp_file(encoding: str = "cp852", **page) -> bytes:
    text = mt940_page([
        Line("C", "174,50", details=[zbp86("020", TITLE, NAME, va(12))]),
        Line("D", "2,50", details=["073~00073OPŁATA~20PROWIZJA ZA PRZELEWY"]),
    ], opening="1000,00", **page)
    return text.encode(encoding)


# --------------------------------------------------------------------------- ZBP


def test_a_zbp_statement_with_polish_letters():
    (s,) = read_statements(zbp_file(), ZBP)
    assert (s.account, s.statement_ref, s.number, s.sequence, s.final) == (COLLECTION, "12/1/2025-01-10", 12, 1, True)
    assert (s.opening, s.closing, s.closing_date, s.currency) == (Decimal("1000.00"), Decimal("1172.00"), date(2025, 1, 10), "PLN")
    credit, fee = s.movements
    assert (credit.direction, credit.amount, credit.reversal, credit.virtual_account) == (CREDIT, Decimal("174.50"), False, va(12))
    assert credit.title == TITLE  # pieces cut mid-word and lines of 65 joined as given
    assert credit.counterparty_name == NAME
    assert (credit.tx_ref, fee.tx_ref) == ("12/1/2025-01-10#1", "12/1/2025-01-10#2")
    assert (fee.direction, fee.virtual_account, fee.title) == (DEBIT, None, "PROWIZJA ZA PRZELEWY")
    assert (credit.booked_on, credit.value_on) == (date(2025, 1, 10), date(2025, 1, 10))


@pytest.mark.parametrize("encoding", ["cp852", "windows-1250", "iso-8859-2", "utf-8"])
def test_every_configured_code_page_reads_the_same_letters(encoding):
    fmt = BankFormat(account=COLLECTION, format="mt940", virtual_account_from="mt940-86-subfield:61", encoding=encoding)
    codec = {"windows-1250": "cp1250", "iso-8859-2": "iso8859_2"}.get(encoding, encoding)
    (s,) = read_statements(zbp_file(codec), fmt)
    assert (s.movements[0].title, s.movements[0].counterparty_name) == (TITLE, NAME)


def test_a_wrong_code_page_gives_other_letters_or_an_encoding_error():
    # every byte is a letter in CP852: Windows-1250 bytes read as CP852 give wrong letters, not an error
    (s,) = read_statements(zbp_file("cp1250"), ZBP)
    assert s.movements[0].counterparty_name != NAME
    # ISO-8859-2 maps the Windows-1250 bytes 0x80-0x9F to control characters: refused
    iso = BankFormat(account=COLLECTION, format="mt940", virtual_account_from="mt940-86-subfield:61", encoding="iso-8859-2")
    assert refused(zbp_file("cp1250"), iso).reason == "encoding_error"
    # UTF-8 is strict: CP852 bytes are not UTF-8
    utf = BankFormat(account=COLLECTION, format="mt940", virtual_account_from="mt940-86-subfield:61", encoding="utf-8")
    e = refused(zbp_file("cp852"), utf)
    assert (e.reason, e.line) == ("encoding_error", 6)


@pytest.mark.parametrize("bad", [b"\x00", b"\x09", b"\x1b", b"\x7f"])
def test_control_characters_are_refused_with_their_line(bad):
    raw = zbp_file().replace(b":28C:12/1", b":28C:12/1" + bad)
    e = refused(raw, ZBP)
    assert (e.reason, e.line) == ("encoding_error", 3)
    assert bad.decode("latin-1") not in str(e)


@pytest.mark.parametrize("mark", ["~", "<", "^", "+"])
def test_the_configured_subfield_mark(mark):
    fmt = BankFormat(account=COLLECTION, format="mt940", virtual_account_from="mt940-86-subfield:61", subfield_mark=mark)
    raw = mt940_page([Line("C", "10,00", details=[zbp86("020", "ZA LUTY", "ANNA NOWAK", va(3), mark=mark)])]).encode("cp852")
    (s,) = read_statements(raw, fmt)
    assert (s.movements[0].title, s.movements[0].counterparty_name, s.movements[0].virtual_account) == ("ZA LUTY", "ANNA NOWAK", va(3))


def test_two_86_per_61_and_pages_with_60m_62m_each_balanced():
    page1 = mt940_page([Line("C", "100,00", details=["020", "~00020PRZELEW~20ZA STYCZEN~61" + va(1)]),
                        Line("RC", "100,00", details=["~00STORNO~61" + va(1)])],
                       opening="50,00", number="00107/00001", final=False)
    page2 = mt940_page([Line("RD", "3,00", details=["~00ZWROT PROWIZJI"]), Line("C", "20,00", details=["~61" + va(2)])],
                       opening="50,00", number="107/2", first=False)
    s1, s2 = read_statements((page1 + page2).encode("cp852"), ZBP)
    assert (s1.statement_ref, s1.final, s2.statement_ref, s2.final) == ("107/1/2025-01-10", False, "107/2/2025-01-10", True)
    credit, storno = s1.movements
    assert (credit.title, credit.virtual_account) == ("ZA STYCZEN", va(1))
    assert (storno.direction, storno.reversal) == (DEBIT, True)
    assert [(m.direction, m.reversal) for m in s2.movements] == [(CREDIT, True), (CREDIT, False)]
    assert s2.closing == Decimal("73.00")


def test_a_page_whose_balance_does_not_add_up_to_the_grosz_is_refused_with_its_page():
    page1 = mt940_page([Line("C", "1,00")], number="7/1", final=False)
    page2 = mt940_page([Line("C", "1,00")], number="7/2", first=False, opening="1,00", closing="C250110PLN2,01")
    e = refused((page1 + page2).encode(), ZBP)
    assert (e.reason, e.page, e.line) == ("balance_mismatch", 2, 13)
    assert "balance_mismatch (strona 2, wiersz 13)" in e.reason_text()


def test_a_debit_opening_balance():
    (s,) = read_statements(mt940_page([Line("C", "5,00")], opening="10,00", opening_mark="D").encode(), ZBP)
    assert (s.opening, s.closing) == (Decimal("-10.00"), Decimal("-5.00"))


def test_an_entry_date_across_the_new_year():
    (s,) = read_statements(mt940_page([Line("C", "5,00", value="251231", entry="0102")], date="260102").encode(), ZBP)
    assert (s.movements[0].value_on, s.movements[0].booked_on) == (date(2025, 12, 31), date(2026, 1, 2))


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ((":25:PL" + COLLECTION, ":25:PL" + OTHER_ACCOUNT), "account_unknown"),
        ((":25:PL" + COLLECTION, ":25:"), "structure_invalid"),
        (("C250110PLN1000,00", "C250110EUR1000,00"), "currency_unsupported"),
        ((":61:2501100110CN174,50", ":61:2502300110CN174,50"), "structure_invalid"),  # 30 February
        ((":61:2501100110CN174,50", ":61:2501100110CN174,505"), "structure_invalid"),  # three decimals
        ((":61:2501100110CN174,50", ":61:2501100110CN0,00"), "structure_invalid"),
        ((":28C:12/1", ":28C:X"), "structure_invalid"),
        ((":62F:", ":64:"), "structure_invalid"),  # no closing balance
    ],
)
def test_refusals_from_the_file_alone(change, reason):
    raw = zbp_file().replace(change[0].encode(), change[1].encode())
    e = refused(raw, ZBP)
    assert e.reason == reason
    assert e.line is not None


def test_a_leading_zero_statement_number_is_dropped_from_the_identity():
    (s,) = read_statements(zbp_file(number="00012/00001"), ZBP)
    assert s.statement_ref == "12/1/2025-01-10"


def test_a_swift_envelope_is_read():
    raw = ("{1:F01BPKOPLPWAXXX0000000000}{2:O9400000000000}{4:\r\n" + mt940_page([Line("C", "5,00")]).replace("\r\n-\r\n", "\r\n-}\r\n")).encode()
    (s,) = read_statements(raw, ZBP)
    assert s.movements[0].amount == Decimal("5.00")


def test_the_61_bank_reference_as_unique_reference_and_virtual_account():
    fmt = BankFormat(account=COLLECTION, format="mt940", virtual_account_from="mt940-61-bank-ref", unique_ref="61-bank-ref")
    (s,) = read_statements(mt940_page([Line("C", "5,00", bank_ref=va(4)), Line("C", "6,00", bank_ref=va(5))]).encode(), fmt)
    assert [(m.tx_ref, m.virtual_account) for m in s.movements] == [(va(4), va(4)), (va(5), va(5))]
    dup = mt940_page([Line("C", "5,00", bank_ref="X1"), Line("C", "6,00", bank_ref="X1")]).encode()
    e = refused(dup, fmt)
    assert (e.reason, e.entry) == ("structure_invalid", 2)


# --------------------------------------------------------------------------- mBank


def mbank_file() -> bytes:
    """mBank's layout: SOH before and '-' ETX after the block, labelled parts in :86:, lines
    broken anywhere (the TNR too), ISO-8859-2."""
    d1 = ("911 TRANSAKCJA COLLECT; ID IPH: XX000000000012; Z RACH.: \n" + OTHER_ACCOUNT + "; OD: ŁUCJA WĘGIEREK  \n"
          "UL. KRÓTKA 5 47-200 KĘDZIERZYN-KOŹLE; TYT.: OPŁATA ZA ODPADY   ; TNR: 1793010738\n37502.000001")
    d2 = "911 TRANSAKCJA COLLECT; ID IPH: XX000000000013; Z RACH.: " + OTHER_ACCOUNT + "; OD: JAN NOWAK; TYT.: LUTY; \nTNR: 179301073844398.000001"
    text = mt940_page([Line("C", "45,00", details=[d1], kind="NTRF"), Line("C", "44,00", details=[d2])], opening="0,46", number="3/1")
    lines = text.split("\r\n")
    framed = "\x01\r\n" + "\r\n".join(lines[:-2]) + "\r\n-\x03\r\n"
    return framed.encode("iso8859_2")


def test_mbank_labels_soh_etx_and_line_breaks_anywhere():
    (s,) = read_statements(mbank_file(), MBANK)
    a, b = s.movements
    assert (a.tx_ref, b.tx_ref) == ("179301073837502.000001", "179301073844398.000001")
    assert (a.virtual_account, b.virtual_account) == ("XX000000000012", "XX000000000013")
    assert (a.title, a.counterparty_name) == ("OPŁATA ZA ODPADY", "ŁUCJA WĘGIEREK")  # the address stays in the file
    assert b.counterparty_name == "JAN NOWAK"
    assert s.closing == Decimal("89.46")


# --------------------------------------------------------------------------- format recognition


def test_mt942_is_not_a_statement():
    raw = (":20:ST250110CYC/0001\r\n:25:PL" + COLLECTION + "\r\n:28C:1/1\r\n:34F:PLN0\r\n:13D:2501101815+0100\r\n"
           ":61:2501100110CN0,01NTRFNONREF//MB1\r\n:86:911 TRANSAKCJA\r\n:90C:1PLN0,01\r\n-\r\n").encode()
    assert refused(raw, MBANK).reason == "not_a_statement"


def test_the_other_format_and_unknown_files():
    assert refused(camt053([]), ZBP).reason == "format_not_configured"
    assert refused(b"Lorem ipsum dolor sit amet\n", ZBP).reason == "format_unknown"
    assert refused(b"", ZBP).reason == "format_unknown"
    assert refused(b"<html><body>:20:</body></html>", ZBP).reason == "format_unknown"
    assert detect(zbp_file()) == "mt940"


def test_text_before_the_first_tag_is_refused():
    assert refused(b"NAGLOWEK\r\n" + zbp_file(), ZBP).reason == "structure_invalid"


def test_reading_and_refusing_log_nothing(caplog):
    """The parsers never log: a statement's names, titles and accounts stay out of the logs
    (the mt-940 library logs a tag's text when its own parse fails; it is not used)."""
    caplog.set_level("DEBUG")
    read_statements(zbp_file(), ZBP)
    refused(zbp_file().replace(b":61:2501100110CN174,50", b":61:JAN KOWALSKI 174,50"), ZBP)
    refused(mbank_file().replace(b"0110CN45,00", b"0110CN45,01"), MBANK)
    assert caplog.records == []
