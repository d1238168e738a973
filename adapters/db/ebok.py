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

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

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


def load(conn: Connection, doc: Any, ctx: Any, *, payments: PaymentsConfig, ruleset: Any, now: datetime, actor: str) -> Loaded:
    decl: model.Declaration | None = ctx.declaration
    findings: list[Finding] = list(reconcile.document_findings(ctx.findings))
    codes = {f.code for f in findings}
    payer_id = property_id = None
    status_before_db = outcome_of(findings)

    if decl is not None:
        if not codes & _IDENTIFIER_CODES and (decl.declarant.pesel or decl.declarant.nip):
            payer_id = _upsert_payer(conn, decl, payments, now, refresh=status_before_db != REJECTED)
        if ctx.gmina:
            property_id = _upsert_property(conn, decl, ctx.gmina, refresh=status_before_db != REJECTED)
    # provisional: without the database findings; the property's reconciliation decides
    status = reconcile.with_decision(status_before_db, doc["review_decision"])

    sig = ctx.signature
    channel = channels.get(doc["channel"])
    row = dict(
        payer_id=payer_id,
        property_id=property_id,
        channel=doc["channel"],
        source_ref=doc["source_ref"],
        document_sha256=doc["sha256"],
        form=decl.form if decl else (getattr(ctx.form, "form", None) if ctx.form is not None else None),
        purpose=decl.purpose if decl else None,
        applies_from=decl.applies_from if decl else None,
        filed_at=doc["filed_at"],
        received_at=doc["received_at"],
        status=status,
        residents=decl.residents if decl else None,
        composting=decl.composting if decl else None,
        declared_fee=decl.monthly_fee if decl else None,
        computed_fee=ctx.computed_fee,
        signature=getattr(sig, "kind", None) or channel.unsigned_signature,
        signature_status=getattr(sig, "status", None) or channel.unsigned_status,
        signer=getattr(sig, "signer_name", None),
        findings=[f.to_dict() for f in findings],
        processed_at=now,
        document_id=doc["id"],
        corrects_id=None,
    )
    d = ebok_declaration.c
    existing = conn.execute(select(d.id, d.property_id).where(d.channel == row["channel"], d.source_ref == row["source_ref"])).first()
    if existing is None:
        decl_id = conn.execute(insert(ebok_declaration).values(**row).returning(d.id)).scalar_one()
        old_property = None
    else:
        decl_id, old_property = existing.id, existing.property_id
        conn.execute(update(ebok_declaration).where(d.id == decl_id).values(**row))
    conn.execute(update(worker_document).where(worker_document.c.id == doc["id"]).values(declaration=declaration_to_dict(decl) if decl else None))

    reason = f"po wczytaniu deklaracji nr {decl_id} (dokument nr {doc['id']})"
    for pid in sorted({p for p in (property_id, old_property) if p is not None}):
        state = reconcile_property(conn, pid, ruleset, now, actor, loaded=decl_id, reason=reason)
        if pid == property_id and decl_id in state.declarations:
            findings.extend(state.declarations[decl_id].findings)
    # the findings the property's reconciliation added belong to the document too
    ctx.findings[:] = findings
    final = conn.execute(select(d.status).where(d.id == decl_id)).scalar_one()
    return Loaded(decl_id, final)


# --- payer and property -----------------------------------------------------------------


def _upsert_payer(conn: Connection, decl: model.Declaration, payments: PaymentsConfig, now: datetime, *, refresh: bool) -> int:
    p = ebok_payer.c
    who = decl.declarant
    ident = {"pesel": who.pesel} if who.kind == model.PERSON and who.pesel else {"nip": who.nip}
    ((column, value),) = ident.items()
    key = p[column] == value
    values = dict(
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
    found = conn.execute(select(p.id, p.bank_account).where(key)).first()
    if found is None:
        payer_id = conn.execute(insert(ebok_payer).values(created_at=now, **ident, **values).returning(p.id)).scalar_one()
        bank = None
    else:
        payer_id, bank = found.id, found.bank_account
        if refresh:
            conn.execute(update(ebok_payer).where(p.id == payer_id).values(**values))
    if bank is None and payments.bank_branch:
        conn.execute(
            update(ebok_payer).where(p.id == payer_id).values(bank_account=payer_account(payments.bank_branch, payments.account_prefix, payer_id))
        )
    return payer_id


def _upsert_property(conn: Connection, decl: model.Declaration, gmina: str, *, refresh: bool) -> int:
    pr = ebok_property.c
    prop = decl.property
    key = property_key(gmina, prop.address)
    values = dict(
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
    found = conn.execute(select(pr.id).where(pr.match_key == key)).scalar()
    if found is None:
        return conn.execute(insert(ebok_property).values(match_key=key, **values).returning(pr.id)).scalar_one()
    if refresh:
        conn.execute(update(ebok_property).where(pr.id == found).values(**values))
    return found


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
    """Decide the property from all its declarations (:func:`rules.reconcile.reconcile`)
    and write the differences: status, database findings and corrected-declaration link of
    every declaration, then the fee periods.

    Every declaration whose outcome changes is audited (actor ``actor``, ``RECONCILED``,
    with ``reason`` naming what changed it, in Polish) and its document's outcome follows;
    except ``loaded``, the declaration being loaded, whose caller audits its outcome.

    The property's row is locked first (PostgreSQL), so two processes loading declarations
    of one property decide it one after the other, each from all that is committed.
    """
    d = ebok_declaration.c
    w = worker_document.c
    conn.execute(select(ebok_property.c.id).where(ebok_property.c.id == property_id).with_for_update())
    rows = conn.execute(
        select(d.id, d.payer_id, d.status, d.findings, d.corrects_id, d.document_id, w.declaration, w.review_decision)
        .join(worker_document, w.id == d.document_id)
        .where(d.property_id == property_id, w.declaration.is_not(None))
        .order_by(d.id)
    ).all()
    members = []
    own_findings: dict[int, tuple[Finding, ...]] = {}
    for r in rows:
        own_findings[r.id] = reconcile.document_findings([Finding.from_dict(f) for f in r.findings or []])
        members.append(reconcile.Filed(r.id, r.payer_id, declaration_from_dict(r.declaration), own_findings[r.id], r.review_decision))
    state = reconcile.reconcile(members, ruleset)

    for r in rows:
        new = state.declarations[r.id]
        new_findings = [f.to_dict() for f in (*own_findings[r.id], *new.findings)]
        if (r.status, r.findings or [], r.corrects_id) == (new.status, new_findings, new.corrects_id):
            continue
        conn.execute(
            update(ebok_declaration).where(d.id == r.id).values(status=new.status, findings=new_findings, corrects_id=new.corrects_id, processed_at=now)
        )
        conn.execute(update(worker_document).where(w.id == r.document_id).values(outcome=new.status, findings=new_findings))
        if r.id == loaded:
            continue  # the caller audits the outcome of what it loads
        conn.execute(
            insert(worker_audit).values(
                at=now, document_id=r.document_id, declaration_id=r.id, actor=actor, action="RECONCILED",
                old_status=r.status, new_status=new.status,
                note=f"Deklaracja rozstrzygnięta ponownie {reason}.",
            )
        )
    _write_fee_periods(conn, property_id, state.periods)
    return state


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
