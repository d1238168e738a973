"""``review``: the office's queue of NEEDS_REVIEW declarations, and its decisions.

A decision sets the declaration ACCEPTED or REJECTED, records who decided, when and why
(the audit trail and the document), and is kept when the document is reprocessed and still
needs review. It is an input of the property's reconciliation, which then decides the
other declarations again (audited as the worker's, naming the decision) and recomputes the
fee periods. IDs are eBOK declaration ids.
"""

from __future__ import annotations

import logging

from adapters.db import ebok
from adapters.db import review as queue
from worker import fmt
from worker.app import App
from worker.correspondence_cmd import print_declaration_attachments
from worker.domain.clock import utcnow
from worker.domain.findings import ACCEPTED, NEEDS_REVIEW
from worker.errors import UsageError
from worker.output import EXIT_OK

log = logging.getLogger("worker.review")


def list_queue(app: App) -> int:
    with app.engine.connect() as conn:
        rows = queue.review_queue(conn)
    if not rows:
        print("Brak deklaracji do weryfikacji.")
        return EXIT_OK
    print(f"Deklaracje do weryfikacji: {len(rows)} (id deklaracji; daty w czasie polskim)")
    for r in rows:
        codes = ", ".join(sorted({f["code"] for f in r.findings or []})) or fmt.DASH
        where = " ".join(x for x in (r.town, r.street, r.building) if x) or fmt.DASH
        print(f"  #{r.id}  złożona {fmt.date_local(r.filed_at)}  {fmt.text(r.form)} {fmt.label('purpose', r.purpose)}  {where}  [{codes}]")
    return EXIT_OK


def show(app: App, decl_id: int) -> int:
    with app.engine.connect() as conn:
        r = queue.declaration_details(conn, decl_id)
    if r is None:
        raise UsageError(_no_declaration(decl_id))
    print(f"Deklaracja #{r['id']} ({fmt.text(r['form'])}, {fmt.label('purpose', r['purpose'])}), status: {fmt.status(r['status'])}")
    print(f"  kanał: {fmt.label('channel', r['channel'])}, złożona: {fmt.datetime_local(r['filed_at'])} (czas polski), obowiązuje od: {fmt.date_local(r['applies_from'])}")
    print(f"  składający: {fmt.text(r['payer_name'])}; podpis: {fmt.label('signature', r['signature'])} ({fmt.label('signature_status', r['signature_status'])}), podpisał: {fmt.text(r['signer'])}")
    addr = " ".join(x for x in (r["street"], r["building"]) if x)
    place = " ".join(x for x in (r["town"], addr + ("/" + r["flat"] if r["flat"] else "")) if x) or fmt.DASH
    print(f"  nieruchomość: gmina {fmt.text(r['gmina'])}, {place}")
    print(f"  opłata miesięczna zadeklarowana: {fmt.money(r['declared_fee'])}, wyliczona: {fmt.money(r['computed_fee'])}")
    for line in (r["evidence"] or {}).get("fee_explanation", []):
        print(f"    {line}")
    print("  Ustalenia:" if r["findings"] else "  Ustalenia: brak")
    for f in r["findings"] or []:
        print(f"    [{f['code']}] {fmt.field(f.get('field'))}: {f['message']}")
    print_declaration_attachments(r["evidence"], r["channel"])
    if r["review_note"]:
        print(f"  Decyzja biura ({fmt.text(r['reviewed_by'])}, {fmt.datetime_local(r['reviewed_at'])}): {r['review_note']}")
    return EXIT_OK


def _no_declaration(decl_id: int) -> str:
    return f"nie ma deklaracji o id {decl_id} (podaj id deklaracji z „review list”, nie id dokumentu)"


def decide(app: App, decl_id: int, decision: str, *, note: str, user: str) -> int:
    if not note.strip():
        raise UsageError("--note: decyzja wymaga uzasadnienia")
    now = utcnow()
    with app.engine.begin() as conn:
        # the property first, as processing does, then the declaration
        row = queue.lock_for_decision(conn, decl_id)
        if row is None:
            raise UsageError(_no_declaration(decl_id))
        if row.status != NEEDS_REVIEW:
            raise UsageError(f"deklaracja #{decl_id} ma status {fmt.status(row.status)}; decyzję podejmuje się tylko dla deklaracji do weryfikacji (NEEDS_REVIEW)")
        if decision == ACCEPTED and (row.payer_id is None or row.property_id is None):
            raise UsageError(
                f"deklaracji #{decl_id} nie można przyjąć: nie ma płatnika albo nieruchomości (wartości nie dało się odczytać); "
                "można ją tylko odrzucić, a deklarację trzeba zeskanować lub złożyć ponownie"
            )
        queue.record_decision(conn, row, decision, user=user, note=note, now=now)
        if row.property_id is not None:
            # the decision is an input of the property's reconciliation: the other
            # declarations are decided again (a waiting correction finds its base…)
            reason = f"po decyzji biura w sprawie deklaracji nr {decl_id}"
            ebok.reconcile_property(conn, row.property_id, app.settings.ruleset, now, "worker", loaded=None, reason=reason)
    log.info("review decided", extra={"event": "review.decided", "declaration_id": decl_id, "outcome": decision})
    print(f"Deklaracja #{decl_id}: {'przyjęta' if decision == ACCEPTED else 'odrzucona'} ({user}, {fmt.datetime_local(now)}); okresy opłat nieruchomości przeliczone.")
    return EXIT_OK
