"""Matching movements to payers, by virtual account only (``spec/payments.md`` section 3).

:func:`match` takes every stored movement of the collection account, the payers' virtual
accounts, the union's range and the office's decisions, and gives each movement its status,
reason and payer. It is a function of those sets alone — the movements are put in one fixed
order first (booking date, statement, position) — so statements and payers arriving in any
order give the same result, and it is simply run again over everything whenever a
statement, a payer or a decision arrives.

| movement | result |
|---|---|
| a decision of the office (``payments assign`` / ``not-fee``) | ``MATCHED``/``NOT_FEE``, ``OFFICE``: it wins, and the movement takes no part in pairing |
| withdrawn by ``bank replace`` | ``WITHDRAWN`` |
| reversal of a credit (``RC``; ``DBIT`` with ``RvslInd``) | pairs with the credit whose reference the bank gives, else with the latest earlier unreversed credit with the same virtual account and amount: that credit ``REVERSED``, this ``REVERSAL`` (``reverses``); none: ``UNMATCHED`` ``REVERSAL_UNPAIRED`` |
| reversal of a debit (``RD``; ``CRDT`` with ``RvslInd``) | the same against the latest earlier debit |
| credit to a virtual account that passes the checks and is a payer's | ``MATCHED`` ``AUTO`` |
| credit to a valid account of the union's range that no payer has | ``UNMATCHED`` ``VA_UNKNOWN`` |
| credit to an account that fails the checks (26 digits, IBAN check digits, branch, prefix) | ``UNMATCHED`` ``VA_INVALID`` |
| credit with no virtual account, or to the collection account itself | ``UNMATCHED`` ``NO_VA`` |
| other debit with a payer's virtual account (a return) | ``MATCHED``: lowers what the payer paid |
| other debit (bank fees, transfers to the union's budget) | ``NOT_FEE`` |

Never by name or title. An X-masked identifier (mBank's ``ID IPH``, e.g. ``XX000000000012``)
gives the last positions of the 16-digit account number, right-aligned; the masked and the
missing positions are the union's range (prefix, then zeros) and the check digits are
computed (:func:`resolve_virtual_account`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from rules.ledger import Flow
from worker.bank.model import CREDIT, DEBIT, Movement
from worker.bank.options import normalise_account
from worker.domain.accounts import in_union_range, with_check_digits

MATCHED = "MATCHED"
UNMATCHED = "UNMATCHED"
NOT_FEE = "NOT_FEE"
REVERSED = "REVERSED"
REVERSAL = "REVERSAL"
WITHDRAWN = "WITHDRAWN"
STATUSES = (MATCHED, UNMATCHED, NOT_FEE, REVERSED, REVERSAL, WITHDRAWN)

NO_VA = "NO_VA"
VA_UNKNOWN = "VA_UNKNOWN"
VA_INVALID = "VA_INVALID"
REVERSAL_UNPAIRED = "REVERSAL_UNPAIRED"
REASONS = (NO_VA, VA_UNKNOWN, VA_INVALID, REVERSAL_UNPAIRED)

AUTO = "AUTO"
OFFICE = "OFFICE"
ASSIGN = "ASSIGN"

Key = tuple[str, str]  # (account, tx_ref): the movement's key in ebok_payment


@dataclass(frozen=True)
class UnionRange:
    """The union's virtual accounts: ``[payments] bank_branch`` + ``account_prefix``, and
    the collection account itself (a transfer to it names no payer)."""

    branch: str
    prefix: str
    collection_account: str


@dataclass(frozen=True)
class StoredMovement:
    """A movement as stored, with its statement (what :func:`match` orders by)."""

    account: str
    statement_ref: str
    movement: Movement
    withdrawn: bool = False

    @property
    def key(self) -> Key:
        return (self.account, self.movement.tx_ref)

    @property
    def order(self) -> tuple[str, str, int, str]:
        m = self.movement
        return (m.booked_on.isoformat(), self.statement_ref, m.position, m.tx_ref)


@dataclass(frozen=True)
class OfficeDecision:
    """The office's binding instruction for one movement (``payments assign``/``not-fee``)."""

    kind: str  # ASSIGN or NOT_FEE
    payer_id: int | None = None

    def __post_init__(self) -> None:
        if self.kind == ASSIGN and self.payer_id is None:
            raise ValueError("an assignment names the payer")
        if self.kind not in (ASSIGN, NOT_FEE):
            raise ValueError(f"unknown decision {self.kind!r}")


@dataclass(frozen=True)
class Match:
    """The result for one movement: the ``ebok_payment`` columns matching decides."""

    status: str
    reason: str | None = None
    payer_id: int | None = None
    reverses: Key | None = None  # for REVERSAL: the movement it reverses
    matched_by: str | None = None  # AUTO / OFFICE; None while UNMATCHED
    virtual_account: str | None = None  # the 26-digit NRB paid to, when one could be read


def resolve_virtual_account(raw: str | None, union: UnionRange) -> tuple[str | None, str | None]:
    """``(nrb, problem)``: the NRB a movement was paid to (None when none can be read) and
    ``NO_VA`` / ``VA_INVALID`` / None.

    >>> u = UnionRange("10901014", "4000", "31109010140000000012345678")
    >>> resolve_virtual_account("PL98109010144000000000000123", u)
    ('98109010144000000000000123', None)
    >>> resolve_virtual_account("XX000000000123", u)
    ('98109010144000000000000123', None)
    >>> resolve_virtual_account("99109010144000000000000123", u)
    ('99109010144000000000000123', 'VA_INVALID')
    >>> resolve_virtual_account(None, u), resolve_virtual_account("31109010140000000012345678", u)
    ((None, 'NO_VA'), ('31109010140000000012345678', 'NO_VA'))
    """
    if raw is None or not raw.strip():
        return None, NO_VA
    text = re.sub(r"\s+", "", raw).upper()
    masked = re.fullmatch(r"(X*)([0-9]+)", text)
    if masked is not None and len(text) < 26 and (masked.group(1) or len(text) <= 16):
        if len(text) > 16:
            return None, VA_INVALID
        template = union.prefix + "0" * (16 - len(union.prefix))
        number = template[: 16 - len(text)] + "".join(t if c == "X" else c for c, t in zip(text, template[16 - len(text) :], strict=True))
        nrb = with_check_digits(union.branch + number)
    else:
        nrb = normalise_account(text)
    if nrb == union.collection_account:
        return nrb, NO_VA
    if not in_union_range(nrb, union.branch, union.prefix):
        return (nrb if re.fullmatch(r"[0-9]{26}", nrb) else None), VA_INVALID
    return nrb, None


def match(
    movements: Iterable[StoredMovement],
    payers: Mapping[str, int],
    union: UnionRange,
    decisions: Mapping[Key, OfficeDecision] | None = None,
) -> dict[Key, Match]:
    """Every movement's result (see the module); ``payers`` maps a virtual account (NRB)
    to its payer. Order-independent: the inputs are sorted before anything is decided."""
    decisions = decisions or {}
    items = sorted(movements, key=lambda s: s.order)
    resolved = {s.key: resolve_virtual_account(s.movement.virtual_account, union) for s in items}
    out: dict[Key, Match] = {}

    def va_of(s: StoredMovement) -> str | None:
        return resolved[s.key][0]

    def payer_of(s: StoredMovement) -> int | None:
        nrb, problem = resolved[s.key]
        return payers.get(nrb) if nrb is not None and problem is None else None

    for s in items:
        decision = decisions.get(s.key)
        if s.withdrawn:
            out[s.key] = Match(WITHDRAWN, virtual_account=va_of(s))
        elif decision is not None:
            payer = decision.payer_id if decision.kind == ASSIGN else None
            out[s.key] = Match(MATCHED if decision.kind == ASSIGN else NOT_FEE, payer_id=payer, matched_by=OFFICE, virtual_account=va_of(s))

    # reversals pair with the latest earlier unreversed movement of the other direction
    reversed_by: dict[Key, Key] = {}
    for i, s in enumerate(items):
        m = s.movement
        if not m.reversal or s.key in out:
            continue
        original_direction = CREDIT if m.direction == DEBIT else DEBIT
        candidates = [
            o for o in items[:i]
            if o.key not in out and o.key not in reversed_by and not o.movement.reversal
            and o.movement.direction == original_direction and o.account == s.account
        ]
        chosen = None
        if m.reverses_ref:
            chosen = next((o for o in reversed(candidates) if m.reverses_ref in (o.movement.tx_ref, o.movement.bank_ref)), None)
        if chosen is None and va_of(s) is not None:
            chosen = next((o for o in reversed(candidates) if va_of(o) == va_of(s) and o.movement.amount == m.amount), None)
        if chosen is None:
            out[s.key] = Match(UNMATCHED, REVERSAL_UNPAIRED, virtual_account=va_of(s))
            continue
        reversed_by[chosen.key] = s.key
        payer = payer_of(chosen)
        out[chosen.key] = Match(REVERSED, payer_id=payer, matched_by=AUTO, virtual_account=va_of(chosen))
        out[s.key] = Match(REVERSAL, payer_id=payer, reverses=chosen.key, matched_by=AUTO, virtual_account=va_of(s))

    for s in items:
        if s.key in out:
            continue
        nrb, problem = resolved[s.key]
        payer = payer_of(s)
        if s.movement.direction == DEBIT:
            out[s.key] = Match(MATCHED, payer_id=payer, matched_by=AUTO, virtual_account=nrb) if payer is not None else Match(NOT_FEE, matched_by=AUTO, virtual_account=nrb)
        elif payer is not None:
            out[s.key] = Match(MATCHED, payer_id=payer, matched_by=AUTO, virtual_account=nrb)
        else:
            out[s.key] = Match(UNMATCHED, problem or VA_UNKNOWN, virtual_account=nrb)
    return out


def matched_flows(movements: Iterable[StoredMovement], results: Mapping[Key, Match]) -> list[Flow]:
    """The ``MATCHED`` movements as the account needs them (:func:`rules.ledger.net_paid`)."""
    flows = []
    for s in movements:
        r = results[s.key]
        if r.status == MATCHED and r.payer_id is not None:
            flows.append(Flow(r.payer_id, s.movement.direction, s.movement.amount))
    return flows


__all__ = [
    "ASSIGN",
    "AUTO",
    "MATCHED",
    "NOT_FEE",
    "NO_VA",
    "OFFICE",
    "REASONS",
    "REVERSAL",
    "REVERSAL_UNPAIRED",
    "REVERSED",
    "STATUSES",
    "UNMATCHED",
    "VA_INVALID",
    "VA_UNKNOWN",
    "WITHDRAWN",
    "Key",
    "Match",
    "OfficeDecision",
    "StoredMovement",
    "UnionRange",
    "match",
    "matched_flows",
    "resolve_virtual_account",
]
