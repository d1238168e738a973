"""What a bank statement says, as the worker keeps it, and why a file is refused.

A statement file is read into one or more :class:`Statement` (an MT940 page, a camt.053
``Stmt``), each with its balances checked and its :class:`Movement` list; or it is refused
with a :class:`StatementRefused`: a reason code of ``spec/payments.md`` section 2 and a
position (line, page, entry), never the file's content, so the reason can go to a log and
into the quarantine's ``NAME.reason.txt``.

>>> e = StatementRefused("balance_mismatch", page=2, line=31)
>>> e.reason_text()
'balance_mismatch (strona 2, wiersz 31): saldo początkowe + uznania − obciążenia ≠ saldo końcowe (co do grosza).'
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from rules.ledger import CREDIT, DEBIT

MT940 = "mt940"
CAMT053 = "camt053"

#: the quarantine reasons a file alone can decide, with the office's Polish text
REASONS: dict[str, str] = {
    "file_too_large": "plik jest większy niż dopuszczalny rozmiar (bank.max_file_bytes).",
    "format_unknown": "plik nie jest wyciągiem MT940 ani camt.053.",
    "format_not_configured": "plik jest wyciągiem w innym formacie niż skonfigurowany dla rachunku (bank.format).",
    "not_a_statement": "plik nie jest wyciągiem dziennym (raport śróddzienny MT942, camt.052 lub powiadomienie camt.054).",
    "encoding_error": "plik nie jest zapisany w skonfigurowanej stronie kodowej (bank.encoding) albo zawiera niedozwolone znaki sterujące.",
    "xml_forbidden": "plik XML zawiera deklarację DTD, encje lub XInclude, niedozwolone ze względów bezpieczeństwa.",
    "xml_malformed": "plik nie jest poprawnym dokumentem XML.",
    "schema_invalid": "plik nie jest zgodny ze schematem XSD swojej wersji camt.053.",
    "structure_invalid": "w wyciągu brakuje wymaganego pola albo data, kwota lub suma pozycji zbiorczej jest błędna.",
    "account_unknown": "wyciąg dotyczy innego rachunku niż rachunek do płatności masowych Związku (bank.account).",
    "currency_unsupported": "wyciąg lub operacja nie jest w złotych (PLN).",
    "balance_mismatch": "saldo początkowe + uznania − obciążenia ≠ saldo końcowe (co do grosza).",
    "statement_conflict": "wyciąg o tym samym numerze został już przyjęty z innymi operacjami.",
}


class StatementRefused(Exception):
    """The file is not taken: ``reason`` (a key of :data:`REASONS`) and where.

    ``str()`` and :meth:`reason_text` name the reason and the position only, never what the
    file says, so they may be logged.
    """

    def __init__(self, reason: str, *, line: int | None = None, page: int | None = None, entry: int | None = None) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown quarantine reason {reason!r}")
        self.reason = reason
        self.line = line
        self.page = page
        self.entry = entry
        super().__init__(self.reason_text())

    @property
    def where(self) -> str:
        """The position in Polish: ``strona 2, pozycja 3, wiersz 31`` (empty when none)."""
        parts = []
        if self.page is not None:
            parts.append(f"strona {self.page}")
        if self.entry is not None:
            parts.append(f"pozycja {self.entry}")
        if self.line is not None:
            parts.append(f"wiersz {self.line}")
        return ", ".join(parts)

    def reason_text(self) -> str:
        """One line for ``NAME.reason.txt``: code, position, what it means."""
        where = f" ({self.where})" if self.where else ""
        return f"{self.reason}{where}: {REASONS[self.reason]}"


@dataclass(frozen=True)
class Movement:
    """One movement of the collection account (a future ``ebok_payment`` row).

    ``direction`` is what the movement does to the account: a reversal of a credit (MT940
    ``RC``, camt ``DBIT`` with ``RvslInd``) is a ``DEBIT`` with ``reversal`` set, a reversal
    of a debit (``RD``; ``CRDT`` with ``RvslInd``) a ``CREDIT`` with ``reversal`` set.
    """

    position: int  # n: the movement's place in its statement, from 1
    tx_ref: str  # unique with the account (spec section 2)
    direction: str  # CREDIT / DEBIT
    reversal: bool
    amount: Decimal  # > 0, whole grosze
    booked_on: date
    value_on: date
    virtual_account: str | None  # as read from the configured place, blanks removed; None: none
    title: str | None = None
    counterparty_name: str | None = None
    bank_ref: str | None = None  # the bank's own reference (:61: after //, Ntry/AcctSvcrRef)
    reverses_ref: str | None = None  # the reference of the movement it reverses, when the bank gives one

    @property
    def identity(self) -> tuple[str, str, Decimal, date, date]:
        """What makes two readings of a statement "the same movements" (spec section 2)."""
        return (self.tx_ref, self.direction, self.amount, self.booked_on, self.value_on)


@dataclass(frozen=True)
class Statement:
    """One statement (an MT940 page, a camt.053 ``Stmt``) with its balances checked."""

    format: str  # mt940 / camt053
    account: str  # the collection account, NRB (26 digits)
    statement_ref: str  # the identity with the account (spec section 2)
    number: int | None  # the bank's statement number (:28C:, ElctrncSeqNb) for gap reports
    sequence: int | None  # MT940: the page within the number (:28C: after /)
    final: bool  # MT940: the last page (:62F:), camt: always
    opening: Decimal  # signed: credit balance positive
    closing: Decimal
    closing_date: date
    currency: str
    duplicate: bool  # camt CpyDplctInd COPY/DUPL/CODU: the bank says it is a copy
    movements: tuple[Movement, ...]

    @property
    def movement_set(self) -> frozenset[tuple[str, str, Decimal, date, date]]:
        return frozenset(m.identity for m in self.movements)


def compare_resent(stored: Statement, new: Statement) -> str:
    """A statement read again under the identity of one already stored: ``"duplicate"``
    (the same movements: nothing changes) or ``"conflict"`` (other movements:
    ``statement_conflict``).

    >>> from datetime import date
    >>> m = Movement(1, "T1", CREDIT, False, Decimal("1.00"), date(2025, 1, 2), date(2025, 1, 2), None)
    >>> s = Statement(MT940, "0" * 26, "1/1/2025-01-02", 1, 1, True, Decimal(0), Decimal(1), date(2025, 1, 2), "PLN", False, (m,))
    >>> compare_resent(s, s), compare_resent(s, Statement(**{**s.__dict__, "movements": ()}))
    ('duplicate', 'conflict')
    """
    if (stored.account, stored.statement_ref) != (new.account, new.statement_ref):
        raise ValueError("not the same statement identity")
    return "duplicate" if stored.movement_set == new.movement_set else "conflict"


def check_balance(opening: Decimal, movements: Iterable[Movement], closing: Decimal, *, line: int | None, page: int) -> None:
    """Opening + credits − debits must be the closing balance to the grosz (per page):
    ``balance_mismatch`` otherwise."""
    net = sum((m.amount if m.direction == CREDIT else -m.amount for m in movements), Decimal("0.00"))
    if opening + net != closing:
        raise StatementRefused("balance_mismatch", line=line, page=page)


def check_unique_refs(statements: Iterable[Statement]) -> None:
    """Every movement of a file has its own ``tx_ref`` (the table's key with the account):
    ``structure_invalid`` at the first one given twice."""
    seen: set[str] = set()
    for page, s in enumerate(statements, 1):
        for mv in s.movements:
            if mv.tx_ref in seen:
                raise StatementRefused("structure_invalid", page=page, entry=mv.position)
            seen.add(mv.tx_ref)


def statement_gaps(seen: Iterable[tuple[int, int | None, bool]]) -> list[tuple[int, int | None]]:
    """Missing statements among the ``(number, page, final)`` of one account's statements:
    each number between the lowest and the highest that never came, and the next page of a
    number whose last page so far is not final. Numbers restarting (a new year) are the
    caller's business: pass one run of numbers.

    >>> statement_gaps([(1, 1, True), (3, 1, False), (4, None, True)])
    [(2, None), (3, 2)]
    """
    pages: dict[int, list[tuple[int | None, bool]]] = {}
    for number, page, final in seen:
        pages.setdefault(number, []).append((page, final))
    if not pages:
        return []
    out: list[tuple[int, int | None]] = []
    for number in range(min(pages), max(pages) + 1):
        got = pages.get(number)
        if got is None:
            out.append((number, None))
            continue
        if not any(final for _, final in got):
            last = max((p or 0) for p, _ in got)
            out.append((number, last + 1))
    return out


__all__ = [
    "CAMT053",
    "CREDIT",
    "DEBIT",
    "MT940",
    "REASONS",
    "Movement",
    "Statement",
    "StatementRefused",
    "check_balance",
    "check_unique_refs",
    "compare_resent",
    "statement_gaps",
]
