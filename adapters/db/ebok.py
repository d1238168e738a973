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
- The checks that need the database run here: a correction's base
  (``CORRECTION_WITHOUT_BASE``) and the no-retroactive-decrease rule
  (``RETROACTIVE_DECREASE``).
- Then the property is *reconciled*: a declaration is SUPERSEDED exactly when an accepted
  correction names it; the fee periods are recomputed from the accepted (and superseded)
  declarations — the same result whatever order they arrived in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from adapters.db.tables import ebok_declaration, ebok_fee_period, ebok_payer, ebok_property, worker_audit, worker_document
from worker.config import PaymentsConfig
from worker.domain import model
from worker.domain.accounts import payer_account
from worker.domain.findings import ACCEPTED, NEEDS_REVIEW, REJECTED, SUPERSEDED, Finding, outcome_of
from worker.domain.serialize import declaration_from_dict, declaration_to_dict
from worker.domain.text import fold

_IDENTIFIER_CODES = {"PESEL_INVALID", "NIP_INVALID"}


@dataclass
class Loaded:
    declaration_id: int | None
    status: str
    recheck_document_ids: list[int] = field(default_factory=list)


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
    findings: list[Finding] = list(ctx.findings)
    codes = {f.code for f in findings}
    payer_id = property_id = corrects_id = None
    status_before_db = outcome_of(findings)

    if decl is not None:
        if not codes & _IDENTIFIER_CODES and (decl.declarant.pesel or decl.declarant.nip):
            payer_id = _upsert_payer(conn, decl, payments, now, refresh=status_before_db != REJECTED)
        if ctx.gmina:
            property_id = _upsert_property(conn, decl, ctx.gmina, refresh=status_before_db != REJECTED)
        if payer_id is not None and property_id is not None and status_before_db != REJECTED:
            extra, corrects_id = _database_checks(conn, doc, decl, payer_id, property_id, ruleset)
            findings.extend(extra)
    # the findings the database checks added belong to the document too
    ctx.findings[:] = findings
    status = outcome_of(findings)
    if status == NEEDS_REVIEW and doc["review_decision"] in (ACCEPTED, REJECTED):
        status = doc["review_decision"]  # the office decided this one; reprocessing keeps it

    sig = ctx.signature
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
        signature=getattr(sig, "kind", None) or ("NONE" if doc["channel"] == model.EPUAP else None),
        signature_status=getattr(sig, "status", None) or ("INVALID" if doc["channel"] == model.EPUAP else "NOT_APPLICABLE"),
        signer=getattr(sig, "signer_name", None),
        findings=[f.to_dict() for f in findings],
        processed_at=now,
        document_id=doc["id"],
        corrects_id=corrects_id,
    )
    d = ebok_declaration.c
    existing = conn.execute(select(d.id, d.status, d.property_id).where(d.channel == row["channel"], d.source_ref == row["source_ref"])).first()
    if existing is None:
        decl_id = conn.execute(insert(ebok_declaration).values(**row).returning(d.id)).scalar_one()
        old_status, old_property = None, None
    else:
        decl_id, old_status, old_property = existing.id, existing.status, existing.property_id
        if old_status == SUPERSEDED and status == ACCEPTED:
            row["status"] = status = SUPERSEDED  # reconciliation below decides again
        conn.execute(update(ebok_declaration).where(d.id == decl_id).values(**row))
    conn.execute(update(worker_document).where(worker_document.c.id == doc["id"]).values(declaration=declaration_to_dict(decl) if decl else None))

    recheck: list[int] = []
    for pid in {p for p in (property_id, old_property) if p is not None}:
        reconcile_property(conn, pid, ruleset, now, actor)
        if status == ACCEPTED and pid == property_id:
            recheck = waiting_corrections(conn, pid, exclude=decl_id)
    final = conn.execute(select(d.status).where(d.id == decl_id)).scalar_one()
    return Loaded(decl_id, final, recheck)


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


# --- checks that need the database -------------------------------------------------------


@dataclass(frozen=True)
class StoredDeclaration:
    """An earlier declaration of the property, as the rules need it."""

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


def _database_checks(conn: Connection, doc: Any, decl: model.Declaration, payer_id: int, property_id: int, ruleset: Any) -> tuple[list[Finding], int | None]:
    from rules import periods

    findings: list[Finding] = []
    corrects_id = None
    this = ebok_declaration.c
    row = conn.execute(select(this.id, this.corrects_id).where(this.channel == doc["channel"], this.source_ref == doc["source_ref"])).first()
    mine, my_base = (row.id, row.corrects_id) if row else (None, None)
    others = [s for s in property_declarations(conn, property_id, (ACCEPTED, SUPERSEDED)) if s.declaration_id != mine]
    if decl.purpose == model.CORRECTION:
        # candidates: what is accepted, and what this very correction superseded before
        candidates = [s for s in others if s.status == ACCEPTED or s.declaration_id == my_base]
        corrects_id = periods.select_correction_base(_period_input(decl, mine, payer_id, None), [_period_input(s.declaration, s.declaration_id, s.payer_id, s.corrects_id) for s in candidates])
        if corrects_id is None:
            findings.append(periods.correction_without_base(decl.channel))
    elif decl.purpose == model.CHANGE and ruleset is not None:
        current = periods.compute_fee_periods([_period_input(s.declaration, s.declaration_id, s.payer_id, s.corrects_id) for s in others], ruleset)
        findings.extend(periods.check_retroactive_decrease(_period_input(decl, mine, payer_id, None), current, ruleset))
    return findings, corrects_id


def _period_input(decl: model.Declaration, decl_id: int | None, payer_id: int | None, corrects_id: int | None) -> Any:
    from rules import periods

    return periods.PeriodInput(
        declaration_id=decl_id or 0,
        payer_id=payer_id or 0,
        purpose=decl.purpose,
        applies_from=decl.applies_from,
        filed_at=decl.filed_at,
        corrects_id=corrects_id,
        declaration=decl,
    )


def waiting_corrections(conn: Connection, property_id: int, *, exclude: int) -> list[int]:
    """Documents of corrections of this property waiting in review for lack of a base."""
    d = ebok_declaration.c
    rows = conn.execute(
        select(d.document_id, d.findings).where(
            d.property_id == property_id, d.status == NEEDS_REVIEW, d.purpose == model.CORRECTION, d.id != exclude
        )
    ).all()
    return [r.document_id for r in rows if any(f.get("code") == "CORRECTION_WITHOUT_BASE" for f in (r.findings or []))]


# --- reconciliation: superseded flags and fee periods --------------------------------------


def reconcile_property(conn: Connection, property_id: int, ruleset: Any, now: datetime, actor: str) -> None:
    """Make SUPERSEDED exactly the declarations an accepted correction names, then
    recompute the property's fee periods from the accepted and superseded ones."""
    d = ebok_declaration.c
    rows = conn.execute(select(d.id, d.status, d.corrects_id).where(d.property_id == property_id)).all()
    corrected = {r.corrects_id for r in rows if r.status == ACCEPTED and r.corrects_id is not None}
    for r in rows:
        new = None
        if r.status == ACCEPTED and r.id in corrected:
            new = SUPERSEDED
        elif r.status == SUPERSEDED and r.id not in corrected:
            new = ACCEPTED
        if new:
            conn.execute(update(ebok_declaration).where(d.id == r.id).values(status=new, processed_at=now))
            conn.execute(insert(worker_audit).values(at=now, declaration_id=r.id, actor=actor, action="SUPERSESSION", old_status=r.status, new_status=new))
    recompute_fee_periods(conn, property_id, ruleset)


def recompute_fee_periods(conn: Connection, property_id: int, ruleset: Any) -> None:
    from rules import periods

    decls = property_declarations(conn, property_id, (ACCEPTED, SUPERSEDED))
    computed = periods.compute_fee_periods([_period_input(s.declaration, s.declaration_id, s.payer_id, s.corrects_id) for s in decls], ruleset) if decls else []
    conn.execute(delete(ebok_fee_period).where(ebok_fee_period.c.property_id == property_id))
    for p in computed:
        conn.execute(
            insert(ebok_fee_period).values(
                property_id=property_id,
                payer_id=p.payer_id,
                declaration_id=p.declaration_id,
                valid_from=p.valid_from,
                valid_to=p.valid_to,
                monthly_fee=Decimal(p.monthly_fee),
            )
        )
