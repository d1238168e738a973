"""Statement files for the tests: MT940 pages and camt.053 documents written from data.

The texts follow the layouts the banks publish (``spec/payments.md`` section 1); names,
accounts and amounts are invented. The camt.053 documents are valid against the ISO XSDs
(a test checks), so every refusal a test provokes is the one it changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from worker.domain.accounts import payer_account, with_check_digits

BRANCH = "10901014"
PREFIX = "4000"
COLLECTION = with_check_digits(BRANCH + "0000000012345678")  # the union's collection account (NRB)
OTHER_ACCOUNT = with_check_digits("11401081" + "0000267002001002")


def va(payer_id: int) -> str:
    """The virtual account of payer ``payer_id`` (the id-based numbers of the loader)."""
    return payer_account(BRANCH, PREFIX, payer_id)


def _amt(value: Decimal | str) -> str:
    return f"{Decimal(value):.2f}".replace(".", ",")


# --------------------------------------------------------------------------- MT940


@dataclass
class Line:
    """One ``:61:`` with its ``:86:`` lines."""

    mark: str  # C, D, RC, RD
    amount: str
    value: str = "250110"  # YYMMDD
    entry: str = "0110"  # MMDD or ""
    bank_ref: str = "NONREF"
    details: list[str] = field(default_factory=list)  # each item one :86: tag (lines joined by \n inside)
    kind: str = "NTRF"


def mt940_page(lines: list[Line], *, opening: str = "0,00", number: str = "12/1", account: str = "PL" + COLLECTION,
               final: bool = True, first: bool = True, currency: str = "PLN", closing: str | None = None,
               date: str = "250110", ref: str = "ST250110/1", opening_mark: str = "C") -> str:
    total = Decimal(opening.replace(",", ".")) * (1 if opening_mark == "C" else -1)
    out = [f":20:{ref}", f":25:{account}", f":28C:{number}", f":{'60F' if first else '60M'}:{opening_mark}{date}{currency}{opening}"]
    for ln in lines:
        entry = ln.entry
        out.append(f":61:{ln.value}{entry}{ln.mark}N{ln.amount}{ln.kind}NONREF//{ln.bank_ref}")
        for d in ln.details:
            out.append(":86:" + d)
        amount = Decimal(ln.amount.replace(",", "."))
        total += amount if ln.mark in ("C", "RD") else -amount
    if closing is None:
        closing = ("C" if total >= 0 else "D") + date + currency + _amt(abs(total))
    out.append(f":{'62F' if final else '62M'}:{closing}")
    out.append("-")
    return "\r\n".join(out) + "\r\n"


def zbp86(code: str, title: str, name: str, va_account: str | None, *, mark: str = "~", width: int = 27) -> str:
    """A ZBP ``:86:``: the title cut in pieces of ``width`` (mid-word), the virtual account in
    ~61 (the test bank's description), the name in ~32/~33, lines of 65 characters."""
    pieces = [title[i : i + width] for i in range(0, len(title), width)] or [""]
    text = f"{code}{mark}00{code}PRZELEW"
    for k, piece in enumerate(pieces):
        text += f"{mark}{20 + k}{piece}"
    text += f"{mark}32{name[:35]}"
    if len(name) > 35:
        text += f"{mark}33{name[35:70]}"
    if va_account is not None:
        text += f"{mark}61{va_account}"
    return "\n".join(text[i : i + 65] for i in range(0, len(text), 65))


# --------------------------------------------------------------------------- camt.053


@dataclass
class Tx:
    amount: str | None = None  # None: the entry's amount, no TxDtls amount
    cdtr_acct: str | None = None
    dbtr_acct: str | None = None
    dbtr_name: str | None = "JAN KOWALSKI"
    cdtr_name: str | None = None
    ustrd: list[str] = field(default_factory=lambda: ["OPLATA ZA ODPADY"])


@dataclass
class Entry:
    amount: str
    cd: str = "CRDT"
    reversal: bool = False
    status: str = "BOOK"
    booked: str = "2025-01-10"  # a date, or a date-time (DtTm)
    value: str | None = "2025-01-10"
    acct_svcr_ref: str | None = None
    ntry_ref: str | None = None
    txs: list[Tx] = field(default_factory=lambda: [Tx()])
    ccy: str = "PLN"


def _date_choice(tag: str, value: str) -> str:
    return f"<{tag}><{'DtTm' if 'T' in value else 'Dt'}>{value}</{'DtTm' if 'T' in value else 'Dt'}></{tag}>"


def camt053(entries: list[Entry], *, version: str = "02", opening: str = "100.00", closing: str | None = None,
            account: str = "PL" + COLLECTION, stmt_id: str = "STMT-2025-010", seq: int | None = 10,
            copy: str | None = None, ccy: str = "PLN", statements: int = 1, prolog: str = '<?xml version="1.0" encoding="UTF-8"?>\n') -> bytes:
    v08 = version == "08"

    def party(tag: str, name: str | None) -> str:
        if name is None:
            return ""
        return f"<{tag}><Pty><Nm>{name}</Nm></Pty></{tag}>" if v08 else f"<{tag}><Nm>{name}</Nm></{tag}>"

    def acct(tag: str, number: str | None) -> str:
        return f"<{tag}><Id><IBAN>{number}</IBAN></Id></{tag}>" if number else ""

    def stmt(k: int) -> str:
        total = Decimal(opening)
        body = []
        for e in entries:
            if e.status == "BOOK":
                total += Decimal(e.amount) if e.cd == "CRDT" else -Decimal(e.amount)
            txs = []
            for t in e.txs:
                amount = ""
                if t.amount is not None:
                    amount = f'<Amt Ccy="{e.ccy}">{t.amount}</Amt>' if v08 else f'<AmtDtls><TxAmt><Amt Ccy="{e.ccy}">{t.amount}</Amt></TxAmt></AmtDtls>'
                parties = party("Dbtr", t.dbtr_name) + acct("DbtrAcct", t.dbtr_acct) + party("Cdtr", t.cdtr_name) + acct("CdtrAcct", t.cdtr_acct)
                rmt = "".join(f"<Ustrd>{u}</Ustrd>" for u in t.ustrd)
                txs.append(f"<TxDtls>{amount}{'<RltdPties>' + parties + '</RltdPties>' if parties else ''}{'<RmtInf>' + rmt + '</RmtInf>' if rmt else ''}</TxDtls>")
            sts = f"<Sts><Cd>{e.status}</Cd></Sts>" if v08 else f"<Sts>{e.status}</Sts>"
            body.append(
                "<Ntry>"
                + (f"<NtryRef>{e.ntry_ref}</NtryRef>" if e.ntry_ref else "")
                + f'<Amt Ccy="{e.ccy}">{e.amount}</Amt><CdtDbtInd>{e.cd}</CdtDbtInd>'
                + ("<RvslInd>true</RvslInd>" if e.reversal else "")
                + sts
                + _date_choice("BookgDt", e.booked)
                + (_date_choice("ValDt", e.value) if e.value else "")
                + (f"<AcctSvcrRef>{e.acct_svcr_ref}</AcctSvcrRef>" if e.acct_svcr_ref else "")
                + "<BkTxCd/>"
                + (f"<NtryDtls>{''.join(txs)}</NtryDtls>" if txs else "")
                + "</Ntry>"
            )
        end = closing if closing is not None else f"{total:.2f}"

        def bal(code: str, amount: str) -> str:
            d = Decimal(amount)
            return (f"<Bal><Tp><CdOrPrtry><Cd>{code}</Cd></CdOrPrtry></Tp><Amt Ccy=\"{ccy}\">{abs(d):.2f}</Amt>"
                    f"<CdtDbtInd>{'CRDT' if d >= 0 else 'DBIT'}</CdtDbtInd><Dt><Dt>2025-01-10</Dt></Dt></Bal>")

        sid = stmt_id if statements == 1 else f"{stmt_id}-{k}"
        return ("<Stmt>" + f"<Id>{sid}</Id>"
                + (f"<ElctrncSeqNb>{seq + k - 1}</ElctrncSeqNb>" if seq is not None else "")
                + "<CreDtTm>2025-01-10T18:00:00+01:00</CreDtTm>"
                + (f"<CpyDplctInd>{copy}</CpyDplctInd>" if copy else "")
                + f"<Acct><Id><IBAN>{account}</IBAN></Id><Ccy>{ccy}</Ccy></Acct>"
                + bal("OPBD", opening) + bal("CLBD", end) + "".join(body) + "</Stmt>")

    ns = f"urn:iso:std:iso:20022:tech:xsd:camt.053.001.{version}"
    doc = (f'{prolog}<Document xmlns="{ns}"><BkToCstmrStmt><GrpHdr><MsgId>MSG-1</MsgId>'
           f"<CreDtTm>2025-01-10T18:00:00+01:00</CreDtTm></GrpHdr>"
           + "".join(stmt(k) for k in range(1, statements + 1)) + "</BkToCstmrStmt></Document>")
    return doc.encode("utf-8")
