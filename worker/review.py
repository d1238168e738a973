"""``review``: the office's queue of NEEDS_REVIEW declarations, and its decisions.

A decision sets the declaration ACCEPTED or REJECTED, records who decided, when and why
(the audit trail and the document), recomputes the property's fee periods, and is kept
when the document is reprocessed and still needs review. IDs are eBOK declaration ids.
"""

from __future__ import annotations

import argparse
import logging

from sqlalchemy import insert, select, update

from adapters.db import ebok
from adapters.db.tables import ebok_declaration, ebok_payer, ebok_property, worker_audit, worker_document
from worker.app import App
from worker.cli import EXIT_OK
from worker.errors import UsageError
from worker.domain.findings import ACCEPTED, NEEDS_REVIEW, REJECTED
from worker.processing import requeue, utcnow

log = logging.getLogger("worker.review")


def command(app: App, args: argparse.Namespace) -> int:
    action = args.review_command
    if action == "list":
        return _list(app)
    if action == "show":
        return _show(app, args.id)
    if action == "export-attachments":
        from pathlib import Path

        from worker.correspondence_cmd import export_declaration_attachments

        return export_declaration_attachments(app, args.id, Path(args.to))
    return decide(app, args.id, ACCEPTED if action == "accept" else REJECTED, note=args.note, user=args.user)


def _list(app: App) -> int:
    d, pr = ebok_declaration.c, ebok_property.c
    with app.engine.connect() as conn:
        rows = conn.execute(
            select(d.id, d.filed_at, d.form, d.purpose, d.findings, pr.town, pr.street, pr.building)
            .outerjoin(ebok_property, pr.id == d.property_id)
            .where(d.status == NEEDS_REVIEW)
            .order_by(d.filed_at, d.id)
        ).all()
    if not rows:
        print("Brak deklaracji do weryfikacji.")
        return EXIT_OK
    print(f"Deklaracje do weryfikacji: {len(rows)}")
    for r in rows:
        codes = ", ".join(sorted({f["code"] for f in r.findings or []}))
        where = " ".join(x for x in (r.town, r.street, r.building) if x) or "—"
        print(f"  #{r.id}  złożona {r.filed_at:%Y-%m-%d}  {r.form or '?'} {r.purpose or ''}  {where}  [{codes}]")
    return EXIT_OK


def _show(app: App, decl_id: int) -> int:
    d, p, pr, w = ebok_declaration.c, ebok_payer.c, ebok_property.c, worker_document.c
    with app.engine.connect() as conn:
        r = conn.execute(
            select(ebok_declaration, p.name.label("payer_name"), pr.gmina, pr.town, pr.street, pr.building, pr.flat, w.evidence, w.review_note, w.reviewed_by)
            .outerjoin(ebok_payer, p.id == d.payer_id)
            .outerjoin(ebok_property, pr.id == d.property_id)
            .outerjoin(worker_document, w.id == d.document_id)
            .where(d.id == decl_id)
        ).mappings().first()
    if r is None:
        raise UsageError(f"review show: no declaration {decl_id}")
    print(f"Deklaracja #{r['id']} ({r['form'] or '?'}, {r['purpose'] or '?'}), status: {r['status']}")
    print(f"  kanał: {r['channel']}, złożona: {r['filed_at']}, obowiązuje od: {r['applies_from']}")
    print(f"  składający: {r['payer_name'] or '—'}; podpis: {r['signature']} ({r['signature_status']}), podpisał: {r['signer'] or '—'}")
    addr = " ".join(x for x in (r["street"], r["building"]) if x)
    print(f"  nieruchomość: gmina {r['gmina'] or '—'}, {r['town'] or ''} {addr}{'/' + r['flat'] if r['flat'] else ''}")
    print(f"  opłata zadeklarowana: {r['declared_fee']}, wyliczona: {r['computed_fee']}")
    for line in (r["evidence"] or {}).get("fee_explanation", []):
        print(f"    {line}")
    print("  Ustalenia:")
    for f in r["findings"] or []:
        print(f"    [{f['code']}] {f['field'] or ''}: {f['message']}")
    from worker.correspondence_cmd import print_declaration_attachments

    print_declaration_attachments(r["evidence"], r["channel"])
    if r["review_note"]:
        print(f"  Decyzja biura ({r['reviewed_by']}): {r['review_note']}")
    return EXIT_OK


def decide(app: App, decl_id: int, decision: str, *, note: str, user: str) -> int:
    if not note.strip():
        raise UsageError("--note: the decision needs a justification")
    now = utcnow()
    d = ebok_declaration.c
    with app.engine.begin() as conn:
        row = conn.execute(select(d.id, d.status, d.property_id, d.document_id).where(d.id == decl_id).with_for_update()).first()
        if row is None:
            raise UsageError(f"review: no declaration {decl_id}")
        if row.status != NEEDS_REVIEW:
            raise UsageError(f"review: declaration {decl_id} is {row.status}, not NEEDS_REVIEW")
        conn.execute(update(ebok_declaration).where(d.id == decl_id).values(status=decision, processed_at=now))
        conn.execute(
            update(worker_document).where(worker_document.c.id == row.document_id).values(
                review_decision=decision, reviewed_by=user, reviewed_at=now, review_note=note, outcome=decision
            )
        )
        action = "REVIEW_ACCEPT" if decision == ACCEPTED else "REVIEW_REJECT"
        conn.execute(insert(worker_audit).values(at=now, document_id=row.document_id, declaration_id=decl_id, actor=user, action=action, old_status=NEEDS_REVIEW, new_status=decision, note=note))
        if row.property_id is not None:
            ebok.reconcile_property(conn, row.property_id, app.settings.ruleset, now, user)
            if decision == ACCEPTED:
                requeue(conn, ebok.waiting_corrections(conn, row.property_id, exclude=decl_id), now)
    log.info("review decided", extra={"event": "review.decided", "declaration_id": decl_id, "outcome": decision})
    print(f"Deklaracja #{decl_id}: {'przyjęta' if decision == ACCEPTED else 'odrzucona'}.")
    return EXIT_OK
