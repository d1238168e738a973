"""Loading a processed document into the eBOK tables (inside the caller's transaction).

What is written, and the decisions behind it (see also ``docs/decisions.md``):

- ``ebok_declaration`` gets one row per document (unique on channel + source_ref):
  reprocessing updates it. A document that could not be read as a declaration at all
  (``XML_MALFORMED``, ``SCHEMA_INVALID``…) still gets its REJECTED row, with null links.
- ``ebok_payer`` is found by PESEL (person) or NIP (institution) and created on first
  sight, when that identifier passed its checks; its contact data are refreshed only from
  declarations that were not rejected. The bank account is assigned once.
- ``ebok_property`` is found by its normalised address; it is created only for a member
  gmina known to the rules (``ctx.gmina``).
- Then the property is decided as a whole (:func:`rules.reconcile.reconcile`, pure): from
  all its declarations — facts, filing times, document-level findings and the office's
  decisions — it gives every declaration's status, the database findings
  (``CORRECTION_WITHOUT_BASE``, ``RETROACTIVE_DECREASE``), the corrected-declaration links,
  SUPERSEDED, and the fee periods; the same whatever order the declarations arrived in.
  This module writes the differences, and audits every other declaration whose outcome
  changed (``RECONCILED``, naming the declaration that changed it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, bindparam, delete, insert, select, update

from adapters.db.tables import ebok_declaration, ebok_fee_period, ebok_payer, ebok_property, worker_audit, worker_document
from rules import periods, reconcile
from worker import channels
from worker.config import PaymentsConfig
from worker.domain import model
from worker.domain.accounts import payer_account
from worker.domain.findings import ACCEPTED, REJECTED, SUPERSEDED, Finding, outcome_of
from worker.domain.serialize import declaration_from_dict, declaration_to_dict
from worker.domain.text import fold

_IDENTIFIER_CODES = {"PESEL_INVALID", "NIP_INVALID"}


@dataclass
class Loaded:
    declaration_id: int | None
    status: str


def property_key(gmina: str, address: model.Address) -> str:
    """The normalised address a property is identified by.

    >>> property_key("Kędzierzyn-Koźle", model.Address("47-200", "Kędzierzyn-Koźle", "12 A", street="Piastowska"))
    'kedzierzyn-kozle|kedzierzyn-kozle|piastowska|12a|'
    """
    building = fold(address.building).replace(" ", "")
    flat = fold(address.flat).replace(" ", "")
    return "|".join([fold(gmina), fold(address.town), fold(address.street), building, flat])


def payer_key(declarant: model.Declarant) -> tuple[str, str] | None:
    """The identifier a payer is found by: a person's PESEL, else the NIP, else the PESEL
    (None without either).

    >>> who = model.Declarant(model.PERSON, "WLASCICIEL", model.Address("47-200", "Kędzierzyn-Koźle", "1"), pesel="44051401359")
    >>> payer_key(who)
    ('pesel', '44051401359')
    """
    if declarant.kind == model.PERSON and declarant.pesel:
        return ("pesel", declarant.pesel)
    if declarant.nip:
        return ("nip", declarant.nip)
    if declarant.pesel:
        return ("pesel", declarant.pesel)
    return None


def load(conn: Connection, doc: Any, ctx: Any, *, payments: PaymentsConfig, ruleset: Any, now: datetime, actor: str) -> Loaded:
    """Load one document (see :func:`load_batch`)."""
    return load_batch(conn, [(doc, ctx)], payments=payments, ruleset=ruleset, now=now, actor=actor)[0]


def load_batch(
    conn: Connection, loads: Sequence[tuple[Any, Any]], *, payments: PaymentsConfig, ruleset: Any, now: datetime, actor: str
) -> list[Loaded]:
    """Load the documents ``(doc, ctx)`` of a batch, in their order, with a few statements
    for all of them: payers, properties and declarations found with one query each and
    written with one statement each; then every property they touch decided once
    (:func:`reconcile_properties`). The result is the one loading them one by one in this
    order would leave, except that a declaration of the batch is decided once, with all of
    the batch in view (its ``PROCESSED`` audit row gives its outcome; ``RECONCILED`` rows
    are for declarations loaded before the batch). The database findings the
    reconciliation adds are appended to each ``ctx.findings``."""
    out: list[Loaded] = []
    for group in _groups(loads):
        out += _load_group(conn, group, payments=payments, ruleset=ruleset, now=now, actor=actor)
    return out


@dataclass
class _Item:
    doc: Any
    ctx: Any
    decl: model.Declaration | None
    findings: list[Finding]
    status: str  # provisional: without the database findings
    refresh: bool  # a declaration that is not rejected refreshes the payer's and property's data
    payer_key: tuple[str, str] | None = None
    property_key: str | None = None
    payer_id: int | None = None
    property_id: int | None = None
    declaration_id: int | None = None
    old_property: int | None = None


def _groups(loads: Sequence[tuple[Any, Any]]) -> list[list[tuple[Any, Any]]]:
    """The loads cut where a declaration (channel, source_ref) comes again: within a group
    each declaration row is written once."""
    groups: list[list[tuple[Any, Any]]] = []
    seen: set[tuple[str, str]] = set()
    for doc, ctx in loads:
        key = (doc["channel"], doc["source_ref"])
        if not groups or key in seen:
            groups.append([])
            seen = set()
        seen.add(key)
        groups[-1].append((doc, ctx))
    return groups


def _load_group(conn: Connection, loads: list[tuple[Any, Any]], *, payments: PaymentsConfig, ruleset: Any, now: datetime,
                actor: str) -> list[Loaded]:
    items: list[_Item] = []
    for doc, ctx in loads:
        decl: model.Declaration | None = ctx.declaration
        findings = list(reconcile.document_findings(ctx.findings))
        own = outcome_of(findings)
        item = _Item(doc, ctx, decl, findings, reconcile.with_decision(own, doc["review_decision"]), refresh=own != REJECTED)
        if decl is not None:
            if not {f.code for f in findings} & _IDENTIFIER_CODES:
                item.payer_key = payer_key(decl.declarant)
            if ctx.gmina:
                item.property_key = property_key(ctx.gmina, decl.property.address)
        items.append(item)

    _upsert_payers(conn, items, payments, now)
    _upsert_properties(conn, items)
    _write_declarations(conn, items, now)

    reasons: dict[int, list[_Item]] = {}
    for item in items:
        for pid in {p for p in (item.property_id, item.old_property) if p is not None}:
            reasons.setdefault(pid, []).append(item)
    loaded = {i.declaration_id for i in items if i.declaration_id is not None}
    known = {i.declaration_id: i.decl for i in items if i.declaration_id is not None and i.decl is not None}
    states = reconcile_properties(conn, {pid: _reason(batch) for pid, batch in reasons.items()}, ruleset, now, actor, loaded=loaded,
                                  known=known)

    out = []
    for item in items:
        status = item.status
        state = states.get(item.property_id) if item.property_id is not None else None
        if state is not None and item.declaration_id in state.declarations:
            decided = state.declarations[item.declaration_id]
            item.findings.extend(decided.findings)
            status = decided.status
        # the findings the property's reconciliation added belong to the document too
        item.ctx.findings[:] = item.findings
        out.append(Loaded(item.declaration_id, status))
    return out


def _reason(items: list[_Item]) -> str:
    decls = ", ".join(str(i.declaration_id) for i in items)
    docs = ", ".join(str(i.doc["id"]) for i in items)
    if len(items) == 1:
        return f"po wczytaniu deklaracji nr {decls} (dokument nr {docs})"
    return f"po wczytaniu deklaracji nr {decls} (dokumenty nr {docs})"


# --- payer, property, declaration rows ---------------------------------------------------


def _payer_values(item: _Item, now: datetime) -> dict[str, Any]:
    decl = item.decl
    assert decl is not None
    who = decl.declarant
    return dict(
        kind=who.kind,
        regon=who.regon,
        name=who.name,
        first_name=who.first_name if who.kind == model.PERSON else None,
        last_name=who.last_name if who.kind == model.PERSON else None,
        postal_code=who.address.postal_code,
        town=who.address.town,
        street=who.address.street,
        building=who.address.building,
        flat=who.address.flat,
        email=who.emails[0] if who.emails else None,
        phone=who.phones[0] if who.phones else None,
        e_correspondence=bool(decl.e_correspondence),
        updated_at=now,
    )


def _final_values(items: list[_Item], created: _Item | None) -> _Item | None:
    """Whose data a row keeps when the items are loaded in order: the last that refreshes
    it, or the one that created it (None: the row is left as it is)."""
    last = created
    for item in items:
        if item.refresh and item is not created:
            last = item
    return None if last is created else last


def _grouped(items: list[_Item], key_of: Callable[[_Item], Any]) -> dict[Any, list[_Item]]:
    """The items by their key (those without one left out), in order."""
    groups: dict[Any, list[_Item]] = {}
    for item in items:
        key = key_of(item)
        if key is not None:
            groups.setdefault(key, []).append(item)
    return groups


def _upsert_payers(conn: Connection, items: list[_Item], payments: PaymentsConfig, now: datetime) -> None:
    p = ebok_payer.c
    by_key = _grouped(items, lambda item: item.payer_key)
    if not by_key:
        return

    def find(keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], tuple[int, str | None]]:
        out = {}
        for column in ("pesel", "nip"):
            values = sorted({v for c, v in keys if c == column})
            if values:
                for r in conn.execute(select(p.id, p[column], p.bank_account).where(p[column].in_(values))):
                    out[(column, r[1])] = (r.id, r.bank_account)
        return out

    found = find(by_key)
    new = {key: None for key in by_key if key not in found}  # in order
    if new:
        conn.execute(insert(ebok_payer), [
            dict(created_at=now, pesel=value if column == "pesel" else None, nip=value if column == "nip" else None,
                 **_payer_values(by_key[(column, value)][0], now))
            for column, value in new
        ])
        found.update(find(new))
    refreshes, banks = [], []
    for key, group in by_key.items():
        payer_id, bank = found[key]
        for item in group:
            item.payer_id = payer_id
        last = _final_values(group, group[0] if key in new else None)
        if last is not None:
            refreshes.append({"b_id": payer_id, **_payer_values(last, now)})
        if bank is None and payments.bank_branch:
            banks.append({"b_id": payer_id, "bank_account": payer_account(payments.bank_branch, payments.account_prefix, payer_id)})
    for params in (refreshes, banks):
        if params:
            conn.execute(update(ebok_payer).where(p.id == bindparam("b_id")), params)


def _property_values(item: _Item) -> dict[str, Any]:
    assert item.decl is not None
    prop, gmina = item.decl.property, item.ctx.gmina
    return dict(
        gmina=gmina,
        postal_code=prop.address.postal_code,
        town=prop.address.town,
        street=prop.address.street,
        building=prop.address.building,
        flat=prop.address.flat,
        parcel=prop.parcel,
        kind=prop.kind,
        building_type=prop.building_type,
    )


def _upsert_properties(conn: Connection, items: list[_Item]) -> None:
    pr = ebok_property.c
    by_key = _grouped(items, lambda item: item.property_key)
    if not by_key:
        return

    def find(keys: Iterable[str]) -> dict[str, int]:
        return {r.match_key: r.id for r in conn.execute(select(pr.match_key, pr.id).where(pr.match_key.in_(sorted(keys))))}

    found = find(by_key)
    new = {key: None for key in by_key if key not in found}  # in order
    if new:
        conn.execute(insert(ebok_property), [dict(match_key=key, **_property_values(by_key[key][0])) for key in new])
        found.update(find(new))
    refreshes = []
    for key, group in by_key.items():
        for item in group:
            item.property_id = found[key]
        last = _final_values(group, group[0] if key in new else None)
        if last is not None:
            refreshes.append({"b_id": found[key], **_property_values(last)})
    if refreshes:
        conn.execute(update(ebok_property).where(pr.id == bindparam("b_id")), refreshes)


def _declaration_row(item: _Item, now: datetime) -> dict[str, Any]:
    doc, ctx, decl = item.doc, item.ctx, item.decl
    sig = ctx.signature
    channel = channels.get(doc["channel"])
    return dict(
        payer_id=item.payer_id,
        property_id=item.property_id,
        channel=doc["channel"],
        source_ref=doc["source_ref"],
        document_sha256=doc["sha256"],
        form=decl.form if decl else (getattr(ctx.form, "form", None) if ctx.form is not None else None),
        purpose=decl.purpose if decl else None,
        applies_from=decl.applies_from if decl else None,
        filed_at=doc["filed_at"],
        received_at=doc["received_at"],
        status=item.status,
        residents=decl.residents if decl else None,
        composting=decl.composting if decl else None,
        declared_fee=decl.monthly_fee if decl else None,
        computed_fee=ctx.computed_fee,
        signature=getattr(sig, "kind", None) or channel.unsigned_signature,
        signature_status=getattr(sig, "status", None) or channel.unsigned_status,
        signer=getattr(sig, "signer_name", None),
        findings=[f.to_dict() for f in item.findings],
        processed_at=now,
        document_id=doc["id"],
        corrects_id=None,
    )


def _write_declarations(conn: Connection, items: list[_Item], now: datetime) -> None:
    d = ebok_declaration.c
    refs = sorted({i.doc["source_ref"] for i in items})
    existing = {(r.channel, r.source_ref): r for r in conn.execute(
        select(d.id, d.property_id, d.channel, d.source_ref).where(d.source_ref.in_(refs))
    )}
    new: list[tuple[_Item, dict[str, Any]]] = []
    updates = []
    for item in items:
        row = _declaration_row(item, now)
        found = existing.get((row["channel"], row["source_ref"]))
        if found is None:
            new.append((item, row))
        else:
            item.declaration_id, item.old_property = found.id, found.property_id
            updates.append({"b_id": found.id, **row})
    if new:
        conn.execute(insert(ebok_declaration), [row for _, row in new])
        ids = {r.document_id: r.id for r in conn.execute(
            select(d.id, d.document_id).where(d.document_id.in_([item.doc["id"] for item, _ in new]))
        )}
        for item, _ in new:
            item.declaration_id = ids[item.doc["id"]]
    if updates:
        conn.execute(update(ebok_declaration).where(d.id == bindparam("b_id")), updates)
    conn.execute(
        update(worker_document).where(worker_document.c.id == bindparam("b_id")),
        [{"b_id": i.doc["id"], "declaration": declaration_to_dict(i.decl) if i.decl else None} for i in items],
    )


# --- the property as a whole: statuses, database findings, supersession, fee periods -------


@dataclass(frozen=True)
class StoredDeclaration:
    """A declaration of the property, as the rules need it."""

    declaration_id: int
    payer_id: int | None
    status: str
    purpose: str
    applies_from: Any
    filed_at: datetime | None
    corrects_id: int | None
    declaration: model.Declaration


def property_declarations(conn: Connection, property_id: int, statuses: tuple[str, ...]) -> list[StoredDeclaration]:
    d = ebok_declaration.c
    w = worker_document.c
    rows = conn.execute(
        select(d.id, d.payer_id, d.status, d.purpose, d.applies_from, d.filed_at, d.corrects_id, w.declaration)
        .join(worker_document, w.id == d.document_id)
        .where(d.property_id == property_id, d.status.in_(statuses), w.declaration.is_not(None))
        .order_by(d.id)
    ).all()
    return [
        StoredDeclaration(r.id, r.payer_id, r.status, r.purpose, r.applies_from, r.filed_at, r.corrects_id, declaration_from_dict(r.declaration))
        for r in rows
    ]


def reconcile_property(
    conn: Connection, property_id: int, ruleset: Any, now: datetime, actor: str, *, loaded: int | None, reason: str
) -> reconcile.PropertyState:
    """:func:`reconcile_properties` for one property."""
    return reconcile_properties(conn, {property_id: reason}, ruleset, now, actor, loaded={loaded} if loaded is not None else set())[property_id]


_SET_DECLARATION = update(ebok_declaration).where(ebok_declaration.c.id == bindparam("b_id"))
_SET_DOCUMENT = update(worker_document).where(worker_document.c.id == bindparam("b_id"))


def reconcile_properties(
    conn: Connection, reasons: dict[int, str], ruleset: Any, now: datetime, actor: str, *, loaded: set[int],
    known: dict[int, model.Declaration] | None = None,
) -> dict[int, reconcile.PropertyState]:
    """Decide each property of ``reasons`` from all its declarations
    (:func:`rules.reconcile.reconcile`) and write the differences: status, database
    findings and corrected-declaration link of every declaration, then the fee periods.
    A few statements for all the properties.

    Every declaration whose outcome changes is audited (actor ``actor``, ``RECONCILED``,
    with the property's reason naming what changed it, in Polish) and its document's
    outcome follows; except those of ``loaded``, the declarations being loaded, whose
    caller audits their outcome. ``known``: declarations the caller holds (those it has
    just written), not decoded again.

    The properties' rows are locked first (PostgreSQL, in id order), so two processes
    loading declarations of one property decide it one after the other, each from all that
    is committed.
    """
    pids = sorted(reasons)
    if not pids:
        return {}
    d = ebok_declaration.c
    w = worker_document.c
    pr = ebok_property.c
    conn.execute(select(pr.id).where(pr.id.in_(pids)).order_by(pr.id).with_for_update())
    rows = conn.execute(
        select(d.id, d.property_id, d.payer_id, d.status, d.findings, d.corrects_id, d.document_id, w.declaration, w.review_decision)
        .join(worker_document, w.id == d.document_id)
        .where(d.property_id.in_(pids), w.declaration.is_not(None))
        .order_by(d.property_id, d.id)
    ).all()
    by_property: dict[int, list[Any]] = {pid: [] for pid in pids}
    for r in rows:
        by_property[r.property_id].append(r)

    states: dict[int, reconcile.PropertyState] = {}
    declarations, documents, audits, fee_periods = [], [], [], []
    for pid in pids:
        own_findings: dict[int, tuple[Finding, ...]] = {}
        members = []
        for r in by_property[pid]:
            own_findings[r.id] = reconcile.document_findings([Finding.from_dict(f) for f in r.findings or []])
            decl = known.get(r.id) if known else None
            members.append(reconcile.Filed(r.id, r.payer_id, decl or declaration_from_dict(r.declaration), own_findings[r.id], r.review_decision))
        state = states[pid] = reconcile.reconcile(members, ruleset)
        for r in by_property[pid]:
            new = state.declarations[r.id]
            new_findings = [f.to_dict() for f in (*own_findings[r.id], *new.findings)]
            if (r.status, r.findings or [], r.corrects_id) == (new.status, new_findings, new.corrects_id):
                continue
            declarations.append(
                {"b_id": r.id, "status": new.status, "findings": new_findings, "corrects_id": new.corrects_id, "processed_at": now}
            )
            documents.append({"b_id": r.document_id, "outcome": new.status, "findings": new_findings})
            if r.id in loaded:
                continue  # the caller audits the outcome of what it loads
            audits.append(dict(
                at=now, document_id=r.document_id, declaration_id=r.id, actor=actor, action="RECONCILED",
                old_status=r.status, new_status=new.status, note=f"Deklaracja rozstrzygnięta ponownie {reasons[pid]}.",
            ))
        fee_periods += [
            dict(property_id=pid, payer_id=p.payer_id, declaration_id=p.declaration_id, valid_from=p.valid_from,
                 valid_to=p.valid_to, monthly_fee=Decimal(p.monthly_fee))
            for p in state.periods
        ]
    if declarations:
        conn.execute(_SET_DECLARATION, declarations)
        conn.execute(_SET_DOCUMENT, documents)
    if audits:
        conn.execute(insert(worker_audit), audits)
    conn.execute(delete(ebok_fee_period).where(ebok_fee_period.c.property_id.in_(pids)))
    if fee_periods:
        conn.execute(insert(ebok_fee_period), fee_periods)
    return states


def properties_with_fee_periods(conn: Connection) -> list[int]:
    """The properties that have ACCEPTED or SUPERSEDED declarations (those with fee periods), in id order."""
    d = ebok_declaration.c
    return list(
        conn.execute(select(d.property_id).where(d.status.in_((ACCEPTED, SUPERSEDED)), d.property_id.is_not(None)).distinct().order_by(d.property_id)).scalars()
    )


def recompute_fee_periods(conn: Connection, property_id: int, ruleset: Any) -> None:
    """Only the fee periods, from the property's ACCEPTED and SUPERSEDED declarations as
    stored (for a change of the rate tables: the statuses stay as decided)."""
    decls = property_declarations(conn, property_id, (ACCEPTED, SUPERSEDED))
    inputs = [
        periods.PeriodInput(s.declaration_id, s.payer_id, s.declaration.purpose, s.declaration.applies_from, s.declaration.filed_at, s.corrects_id, s.declaration)
        for s in decls
    ]
    _write_fee_periods(conn, property_id, periods.compute_fee_periods(inputs, ruleset) if inputs else [])


def _write_fee_periods(conn: Connection, property_id: int, computed: list[Any]) -> None:
    conn.execute(delete(ebok_fee_period).where(ebok_fee_period.c.property_id == property_id))
    if computed:
        conn.execute(insert(ebok_fee_period), [
            dict(property_id=property_id, payer_id=p.payer_id, declaration_id=p.declaration_id, valid_from=p.valid_from,
                 valid_to=p.valid_to, monthly_fee=Decimal(p.monthly_fee))
            for p in computed
        ])
