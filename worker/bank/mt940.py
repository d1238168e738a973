"""MT940 statements, Polish "ZBP" variant (``spec/payments.md`` section 1) → :class:`Statement`.

The file is decoded strictly in the configured code page (:mod:`worker.bank.codepage`) and
cut into tags line by line here, keeping each line exactly as written (the ``:86:`` of
mBank breaks lines anywhere, even inside a reference, and a blank at the end of a line is
part of the text), with SOH/ETX framing, ``-`` block ends and SWIFT ``{1:…}{2:…}{4:``
envelopes removed. Each ``:20:`` block is one page: its own statement, identity and
balance check (``:60F:``/``:60M:`` + credits − debits = ``:62F:``/``:62M:``, to the grosz).

The fields of a tag are read with the tag grammar of the ``mt-940`` library (its compiled
patterns for ``:28C:``, the balances and the ``:61:`` statement line, which cover the banks'
variants); the library's own parse is not used: it trims line ends, cuts long details,
turns an impossible 30 February into the 28th and logs the statement's text when a tag
does not match. Amounts are exact decimals with a decimal comma and at most two decimals;
dates must exist. ``:86:`` is split by :mod:`worker.bank.zbp` (subfields) and
:mod:`worker.bank.mbank` (labelled parts); several ``:86:`` of one ``:61:`` are joined in
order.

Identity (section 2): the statement is the account + ``:28C:`` number and page (leading
zeros dropped) + the date of ``:62F:``/``:62M:`` — ``statement_ref`` ``107/1/2017-01-19``;
a movement's ``tx_ref`` is the bank's unique reference named in ``unique_ref`` (mBank's
``TNR``, the ``:61:`` bank reference), else ``<statement_ref>#<n>`` with n the position of
its ``:61:`` in the page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from mt940.tags import Tags

from worker.bank import mbank, zbp
from worker.bank.codepage import decode_strict
from worker.bank.model import CREDIT, DEBIT, MT940, Movement, Statement, StatementRefused, check_balance, check_unique_refs
from worker.bank.options import BankFormat, normalise_account

_TAG_LINE = re.compile(r":([0-9]{2}[A-Z]?|NS):")
_ENVELOPE = re.compile(r"^(\{[0-9]:[^{}]*\})*\{4:\s*")
_AMOUNT = re.compile(r"([0-9]{1,13}),([0-9]{0,2})")
_STATEMENT_NUMBER = Tags.STATEMENT_NUMBER.value.re
_BALANCE = Tags.FINAL_OPENING_BALANCE.value.re  # the same grammar for :60F: :60M: :62F: :62M:
_STATEMENT_LINE = Tags.STATEMENT.value.re
CURRENCY = "PLN"


@dataclass
class _Tag:
    name: str
    line: int
    lines: list[str] = field(default_factory=list)

    @property
    def value(self) -> str:
        """The lines joined with line breaks (what the tag grammars expect)."""
        return "\n".join(self.lines)

    @property
    def joined(self) -> str:
        """The lines joined as given, without separators (for ``:86:``)."""
        return "".join(self.lines)


def _tags(text: str) -> list[list[_Tag]]:
    """The file's tags, cut into ``:20:`` blocks."""
    blocks: list[list[_Tag]] = []
    current: _Tag | None = None
    for number, raw_line in enumerate(text.split("\n"), 1):
        line = raw_line.rstrip("\r").replace("\x01", "").replace("\x03", "")
        if number == 1 or current is None:
            line = _ENVELOPE.sub("", line)
        if line.strip() in ("-", "-}", "}"):
            current = None  # the block's end
            continue
        m = _TAG_LINE.match(line)
        if m is None:
            if current is not None:
                current.lines.append(line)
            elif line.strip():
                raise StatementRefused("structure_invalid", line=number)
            continue
        tag = _Tag(m.group(1), number, [line[m.end() :]])
        if tag.name == "20":
            blocks.append([])
        elif not blocks:
            raise StatementRefused("structure_invalid", line=number)
        blocks[-1].append(tag)
        current = tag
    if not blocks:
        raise StatementRefused("structure_invalid", line=1)
    return blocks


def _amount(text: str, line: int) -> Decimal:
    m = _AMOUNT.fullmatch(text.strip())
    if m is None:
        raise StatementRefused("structure_invalid", line=line)
    return Decimal(f"{m.group(1)}.{m.group(2) or '0'}").quantize(Decimal("0.01"))


def _date(yy: str, mm: str, dd: str, line: int) -> date:
    try:
        return date(2000 + int(yy), int(mm), int(dd))
    except ValueError:
        raise StatementRefused("structure_invalid", line=line) from None


def _entry_date(value_on: date, mm: str, dd: str, line: int) -> date:
    """The booking date ``MMDD`` of a ``:61:``, in the year that puts it nearest the value date."""
    candidates = []
    for year in (value_on.year - 1, value_on.year, value_on.year + 1):
        try:
            candidates.append(date(year, int(mm), int(dd)))
        except ValueError:
            continue
    if not candidates:
        raise StatementRefused("structure_invalid", line=line)
    return min(candidates, key=lambda d: abs((d - value_on).days))


def _balance(tag: _Tag) -> tuple[Decimal, date]:
    value = tag.value.strip()
    m = _BALANCE.match(value)
    if m is None or m.end() != len(value):
        raise StatementRefused("structure_invalid", line=tag.line)
    if m.group("currency") != CURRENCY:
        raise StatementRefused("currency_unsupported", line=tag.line)
    amount = _amount(m.group("amount"), tag.line)
    on = _date(m.group("year"), m.group("month"), m.group("day"), tag.line)
    return (amount if m.group("status") == "C" else -amount), on


def _one(block: list[_Tag], *names: str) -> _Tag:
    found = [t for t in block if t.name in names]
    if len(found) != 1:
        raise StatementRefused("structure_invalid", line=(found[1] if found else block[0]).line)
    return found[0]


def _details(tags: list[_Tag], fmt: BankFormat) -> tuple[zbp.Details | None, dict[str, str]]:
    text = "".join(t.joined for t in tags)
    subfields = zbp.split_subfields(text, fmt.subfield_mark) if zbp.has_subfields(text, fmt.subfield_mark) else None
    extra = (fmt.va_argument,) if fmt.va_source == "mt940-86-label" and fmt.va_argument else ()
    labels = mbank.parse_labels(text, extra) if mbank.has_labels(text) or extra else {}
    return subfields, labels


def _page(block: list[_Tag], index: int, fmt: BankFormat) -> Statement:
    account_tag = _one(block, "25")
    account = normalise_account(account_tag.value)
    if not account:
        raise StatementRefused("structure_invalid", line=account_tag.line, page=index)
    if account != fmt.account:
        raise StatementRefused("account_unknown", line=account_tag.line, page=index)
    number_tag = _one(block, "28C", "28")
    m = _STATEMENT_NUMBER.match(number_tag.value.strip())
    if m is None:
        raise StatementRefused("structure_invalid", line=number_tag.line, page=index)
    number = int(m.group("statement_number"))
    sequence = int(m.group("sequence_number")) if m.group("sequence_number") else None
    opening_tag = _one(block, "60F", "60M")
    closing_tag = _one(block, "62F", "62M")
    opening, _ = _balance(opening_tag)
    closing, closing_date = _balance(closing_tag)
    statement_ref = f"{number}/{sequence}/{closing_date.isoformat()}" if sequence is not None else f"{number}/{closing_date.isoformat()}"

    movements: list[Movement] = []
    lines = [t for t in block if t.name == "61"]
    for n, line_tag in enumerate(lines, 1):
        start = block.index(line_tag)
        following: list[_Tag] = []
        for t in block[start + 1 :]:
            if t.name in ("61", "62F", "62M"):
                break
            if t.name == "86":
                following.append(t)
        movements.append(_movement(line_tag, following, n, statement_ref, index, fmt))

    check_balance(opening, movements, closing, line=closing_tag.line, page=index)
    return Statement(
        format=MT940,
        account=account,
        statement_ref=statement_ref,
        number=number,
        sequence=sequence,
        final=closing_tag.name == "62F",
        opening=opening,
        closing=closing,
        closing_date=closing_date,
        currency=CURRENCY,
        duplicate=False,
        movements=tuple(movements),
    )


def _movement(tag: _Tag, details: list[_Tag], n: int, statement_ref: str, page: int, fmt: BankFormat) -> Movement:
    value = tag.value.strip()
    m = _STATEMENT_LINE.match(value)
    if m is None:
        raise StatementRefused("structure_invalid", line=tag.line, page=page, entry=n)
    mark = m.group("status").upper()
    amount = _amount(m.group("amount"), tag.line)
    if amount <= 0:
        raise StatementRefused("structure_invalid", line=tag.line, page=page, entry=n)
    value_on = _date(m.group("year"), m.group("month"), m.group("day"), tag.line)
    entry_mm, entry_dd = (m.group("entry_month") or "").strip(), (m.group("entry_day") or "").strip()
    booked_on = _entry_date(value_on, entry_mm, entry_dd, tag.line) if entry_mm and entry_dd else value_on
    # the bank reference runs to the end of the first line (the library caps it at 23
    # characters, past SWIFT's 16; a bank writing a 26-digit virtual account there needs all)
    first_line = tag.lines[0]
    bank_ref = first_line.split("//", 1)[1].strip() or None if "//" in first_line else None
    subfields, labels = _details(details, fmt)

    source, argument = fmt.va_source, fmt.va_argument
    va: str | None = None
    if source == "mt940-61-bank-ref":
        va = bank_ref
    elif source == "mt940-86-subfield" and subfields is not None and argument is not None:
        va = subfields.fields.get(argument)
    elif source == "mt940-86-label" and argument is not None:
        va = labels.get(argument)
    va = re.sub(r"\s+", "", va) if va else None

    unique: str | None = None
    if fmt.unique_ref == "mbank-tnr":
        unique = labels.get("TNR") or None
    elif fmt.unique_ref == "61-bank-ref":
        unique = bank_ref
    title = (subfields.title if subfields is not None else None) or mbank.title(labels)
    name = (subfields.name if subfields is not None else None) or mbank.payer_name(labels)
    return Movement(
        position=n,
        tx_ref=unique or f"{statement_ref}#{n}",
        direction=CREDIT if mark in ("C", "RD") else DEBIT,
        reversal=mark.startswith("R"),
        amount=amount,
        booked_on=booked_on,
        value_on=value_on,
        virtual_account=va or None,
        title=title,
        counterparty_name=name,
        bank_ref=bank_ref,
    )


def parse_mt940(raw: bytes, fmt: BankFormat) -> tuple[Statement, ...]:
    """Every page of an MT940 file, checked; :class:`StatementRefused` for the whole file
    at the first problem (a file is taken whole or not at all)."""
    text = decode_strict(raw, fmt.encoding)
    statements = tuple(_page(block, i, fmt) for i, block in enumerate(_tags(text), 1))
    check_unique_refs(statements)
    return statements


__all__ = ["parse_mt940"]
