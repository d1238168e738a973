"""ISO 20022 camt.053.001.02 and .001.08 statements (``spec/payments.md`` section 1) → :class:`Statement`.

The bytes are parsed like every XML from outside (:func:`worker.forms.safe_xml.parse_untrusted`:
UTF-8 only, no DTD, no entity, no network; an XInclude element is refused too:
``xml_forbidden``) and validated against the version's XSD shipped in ``schemas/bank/``
(``schema_invalid``, with the line). Then, per ``Stmt``:

- the account (``Acct/Id/IBAN`` or ``Othr/Id``) must be the collection account
  (``account_unknown``), every amount and the account in PLN (``currency_unsupported``);
- balances ``OPBD`` (else ``PRCD``) and ``CLBD``; only entries with status ``BOOK``
  (``.08``: ``Sts/Cd``) are movements, and opening + booked credits − booked debits must be
  the closing balance to the grosz (``balance_mismatch``);
- an entry with several ``TxDtls`` is a batch: one movement per ``TxDtls``, whose amounts
  must add up to the entry's (``structure_invalid``);
- ``tx_ref`` = ``Ntry/AcctSvcrRef``, else ``<Stmt/Id>#<NtryRef, or n>`` (n: the entry's place
  in the statement), with ``/k`` for the k-th ``TxDtls`` of a batch;
- ``RvslInd`` true marks a reversal: with ``CRDT`` the reversed movement was a debit;
- the virtual account (``virtual_account_from``): ``camt-cdtracct`` reads the union's side
  of the original transfer — ``RltdPties/CdtrAcct`` when the original movement credited the
  account, ``DbtrAcct`` when it debited it (the ISO definitions: the account to which the
  entry was posted); ``camt-ustrd`` the second ``RmtInf/Ustrd`` (left out of the title);
- the counterparty is the other side (``Dbtr/Nm``, ``.08``: ``Dbtr/Pty/Nm``, or ``Cdtr``);
  the title is the ``Ustrd`` pieces joined as given, blanks folded;
- booking and value dates: ``Dt``, or ``DtTm`` taken as its Polish date.

``CpyDplctInd`` (``COPY``, ``DUPL``, ``CODU``) marks the statement as a copy (``duplicate``).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from lxml import etree

from worker.bank.model import CAMT053, CREDIT, DEBIT, Movement, Statement, StatementRefused, check_balance, check_unique_refs
from worker.bank.options import BankFormat, normalise_account
from worker.bank.zbp import fold_blanks
from worker.domain.clock import WARSAW
from worker.domain.xmlvalue import string_value, stripped_value
from worker.forms.registry import FormSpec
from worker.forms.safe_xml import XmlRefused, parse_untrusted

NAMESPACES = {
    "urn:iso:std:iso:20022:tech:xsd:camt.053.001.02": "02",
    "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08": "08",
}
XSD = {"02": "bank/camt.053.001.02.xsd", "08": "bank/camt.053.001.08.xsd"}
#: the statement schemas, described like forms so the forms' XSD cache serves them (they are
#: not in the forms registry: a statement is no declaration)
SCHEMAS = {
    v: FormSpec(code="camt.053", version=f"001.{v}", namespace=ns, xsd=XSD[v], mapper=None,  # type: ignore[arg-type]
                root_element="Document", title=f"Wyciąg bankowy ISO 20022 camt.053.001.{v}")
    for ns, v in NAMESPACES.items()
}
_XINCLUDE = ("http://www.w3.org/2001/XInclude", "http://www.w3.org/2003/XInclude")
CURRENCY = "PLN"
_GROSZ = Decimal("0.01")


def _schema(version: str) -> etree.XMLSchema:
    """The version's compiled XSD (the forms' validator cache: one per thread)."""
    return SCHEMAS[version].lxml_schema()


def _root(raw: bytes) -> tuple[etree._Element, str]:
    try:
        root = parse_untrusted(raw, max_bytes=len(raw) + 1)
    except XmlRefused as exc:
        reason = {"dtd": "xml_forbidden", "encoding": "encoding_error"}.get(exc.reason, "xml_malformed")
        raise StatementRefused(reason) from None
    for el in root.iter():
        if isinstance(el.tag, str) and etree.QName(el).namespace in _XINCLUDE:
            raise StatementRefused("xml_forbidden", line=el.sourceline)
    version = NAMESPACES.get(etree.QName(root).namespace or "")
    if version is None:
        raise StatementRefused("format_unknown")
    schema = _schema(version)
    if not schema.validate(root):
        errors = schema.error_log
        line = errors[0].line if len(errors) else None
        raise StatementRefused("schema_invalid", line=line)
    return root, version


class _Reader:
    """Namespaced look-ups within one document."""

    def __init__(self, namespace: str, version: str) -> None:
        self.ns = {"c": namespace}
        self.version = version

    def find(self, el: etree._Element, path: str) -> etree._Element | None:
        return el.find("/".join(f"c:{p}" for p in path.split("/")), self.ns)

    def findall(self, el: etree._Element, path: str) -> list[etree._Element]:
        return el.findall("/".join(f"c:{p}" for p in path.split("/")), self.ns)

    def text(self, el: etree._Element, path: str) -> str | None:
        return stripped_value(self.find(el, path)) or None

    def amount(self, el: etree._Element | None, line_of: etree._Element) -> Decimal:
        text = stripped_value(el)
        if el is None or not text:
            raise StatementRefused("structure_invalid", line=line_of.sourceline)
        if el.get("Ccy") != CURRENCY:
            raise StatementRefused("currency_unsupported", line=el.sourceline)
        try:
            value = Decimal(text)
        except InvalidOperation:
            raise StatementRefused("structure_invalid", line=el.sourceline) from None
        if value != value.quantize(_GROSZ):
            raise StatementRefused("structure_invalid", line=el.sourceline)
        return value.quantize(_GROSZ)

    def day(self, el: etree._Element | None) -> date | None:
        """``Dt``, or ``DtTm`` as its Polish date, of a date-choice element."""
        if el is None:
            return None
        dt = self.text(el, "Dt")
        if dt is not None:
            return date.fromisoformat(dt[:10])
        dtm = self.text(el, "DtTm")
        if dtm is None:
            return None
        moment = datetime.fromisoformat(dtm)
        if moment.tzinfo is None:
            return moment.date()  # a local time: in Poland
        return moment.astimezone(WARSAW).date()

    def account(self, el: etree._Element | None) -> str | None:
        if el is None:
            return None
        value = self.text(el, "Id/IBAN") or self.text(el, "Id/Othr/Id")
        return normalise_account(value) if value else None

    def party_name(self, el: etree._Element | None) -> str | None:
        if el is None:
            return None
        name = self.text(el, "Pty/Nm") if self.version == "08" else self.text(el, "Nm")
        return fold_blanks(name) if name else None


def _balances(r: _Reader, stmt: etree._Element) -> tuple[Decimal, Decimal, date, etree._Element]:
    found: dict[str, tuple[Decimal, date | None, etree._Element]] = {}
    for bal in r.findall(stmt, "Bal"):
        code = r.text(bal, "Tp/CdOrPrtry/Cd")
        if code not in ("OPBD", "PRCD", "CLBD") or code in found:
            continue
        amount = r.amount(r.find(bal, "Amt"), bal)
        sign = -1 if r.text(bal, "CdtDbtInd") == "DBIT" else 1
        found[code] = (sign * amount, r.day(r.find(bal, "Dt")), bal)
    opening = found.get("OPBD") or found.get("PRCD")
    closing = found.get("CLBD")
    if opening is None or closing is None or closing[1] is None:
        raise StatementRefused("structure_invalid", line=stmt.sourceline)
    return opening[0], closing[0], closing[1], closing[2]


def _statement(r: _Reader, stmt: etree._Element, index: int, fmt: BankFormat) -> Statement:
    stmt_id = r.text(stmt, "Id")
    if stmt_id is None:
        raise StatementRefused("structure_invalid", line=stmt.sourceline, page=index)
    acct = r.find(stmt, "Acct")
    account = r.account(acct)
    if account != fmt.account:
        raise StatementRefused("account_unknown", line=acct.sourceline if acct is not None else stmt.sourceline, page=index)
    ccy = r.text(acct, "Ccy") if acct is not None else None
    if ccy is not None and ccy != CURRENCY:
        raise StatementRefused("currency_unsupported", line=acct.sourceline if acct is not None else None, page=index)
    opening, closing, closing_date, closing_el = _balances(r, stmt)
    seq = r.text(stmt, "ElctrncSeqNb")
    number = int(Decimal(seq)) if seq is not None else None

    movements: list[Movement] = []
    for n, ntry in enumerate(r.findall(stmt, "Ntry"), 1):
        status = r.text(ntry, "Sts/Cd") if r.version == "08" else r.text(ntry, "Sts")
        if status != "BOOK":
            continue
        movements.extend(_entry(r, ntry, n, stmt_id, index, fmt, len(movements)))

    check_balance(opening, movements, closing, line=closing_el.sourceline, page=index)
    return Statement(
        format=CAMT053,
        account=account,
        statement_ref=stmt_id,
        number=number,
        sequence=None,
        final=True,
        opening=opening,
        closing=closing,
        closing_date=closing_date,
        currency=CURRENCY,
        duplicate=r.text(stmt, "CpyDplctInd") in ("COPY", "DUPL", "CODU"),
        movements=tuple(movements),
    )


def _entry(r: _Reader, ntry: etree._Element, n: int, stmt_id: str, page: int, fmt: BankFormat, before: int) -> list[Movement]:
    amount = r.amount(r.find(ntry, "Amt"), ntry)
    if amount <= 0:
        raise StatementRefused("structure_invalid", line=ntry.sourceline, page=page, entry=n)
    direction = CREDIT if r.text(ntry, "CdtDbtInd") == "CRDT" else DEBIT
    reversal = (r.text(ntry, "RvslInd") or "").lower() in ("true", "1")
    booked_on = r.day(r.find(ntry, "BookgDt"))
    if booked_on is None:
        raise StatementRefused("structure_invalid", line=ntry.sourceline, page=page, entry=n)
    value_on = r.day(r.find(ntry, "ValDt")) or booked_on
    base = r.text(ntry, "AcctSvcrRef") or f"{stmt_id}#{r.text(ntry, 'NtryRef') or n}"
    details = [tx for nd in r.findall(ntry, "NtryDtls") for tx in r.findall(nd, "TxDtls")]
    # the union's side of the original transfer: a credit (not reversed) or the reversal of one
    union_credited = (direction == CREDIT) != reversal

    if len(details) > 1:
        amounts = []
        for tx in details:
            el = r.find(tx, "Amt") if r.version == "08" else None
            el = el if el is not None else r.find(tx, "AmtDtls/TxAmt/Amt")
            amounts.append(r.amount(el, tx))
        if sum(amounts, Decimal("0.00")) != amount:
            raise StatementRefused("structure_invalid", line=ntry.sourceline, page=page, entry=n)
        parts = [(f"{base}/{k}", a, tx) for k, (a, tx) in enumerate(zip(amounts, details, strict=True), 1)]
    else:
        parts = [(base, amount, details[0] if details else None)]

    out = []
    for j, (tx_ref, part_amount, tx) in enumerate(parts, 1):
        if part_amount <= 0:
            raise StatementRefused("structure_invalid", line=(tx if tx is not None else ntry).sourceline, page=page, entry=n)
        va, title, name = _transaction(r, tx, union_credited, fmt)
        out.append(Movement(
            position=before + j,
            tx_ref=tx_ref,
            direction=direction,
            reversal=reversal,
            amount=part_amount,
            booked_on=booked_on,
            value_on=value_on,
            virtual_account=va,
            title=title,
            counterparty_name=name,
            bank_ref=r.text(ntry, "AcctSvcrRef"),
        ))
    return out


def _transaction(r: _Reader, tx: etree._Element | None, union_credited: bool, fmt: BankFormat) -> tuple[str | None, str | None, str | None]:
    if tx is None:
        return None, None, None
    parties = r.find(tx, "RltdPties")
    ustrd = [string_value(el) or "" for el in r.findall(tx, "RmtInf/Ustrd")]
    va: str | None = None
    if fmt.va_source == "camt-cdtracct" and parties is not None:
        va = r.account(r.find(parties, "CdtrAcct" if union_credited else "DbtrAcct"))
    elif fmt.va_source == "camt-ustrd" and len(ustrd) > 1:
        va = "".join(ustrd[1].split()) or None
        ustrd = ustrd[:1] + ustrd[2:]
    name = r.party_name(r.find(parties, "Dbtr" if union_credited else "Cdtr")) if parties is not None else None
    title = fold_blanks("".join(ustrd)) or None
    return va, title, name


def parse_camt053(raw: bytes, fmt: BankFormat) -> tuple[Statement, ...]:
    """Every ``Stmt`` of a camt.053 file, checked; :class:`StatementRefused` for the whole
    file at the first problem."""
    root, version = _root(raw)
    r = _Reader(etree.QName(root).namespace or "", version)
    statements = tuple(_statement(r, stmt, i, fmt) for i, stmt in enumerate(r.findall(root, "BkToCstmrStmt/Stmt"), 1))
    check_unique_refs(statements)
    return statements


__all__ = ["NAMESPACES", "XSD", "parse_camt053"]
