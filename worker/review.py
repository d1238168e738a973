"""``review``: the office's queue of NEEDS_REVIEW declarations, and its decisions.

A decision sets the declaration ACCEPTED or REJECTED, records who decided, when and why
(the audit trail and the document), and is kept when the document is reprocessed and still
needs review. It is an input of the property's reconciliation, which then decides the
other declarations again (audited as the worker's, naming the decision) and recomputes the
fee periods. IDs are eBOK declaration ids.

A paper declaration is shown with what the capture station read for each finding's field
(the value, its OCR confidence, whether the operator checked it), the scan's header and
where its image lies in the scan archive; ``review export-scan`` writes the image (and the
station's export) from the document storage to a folder (``spec/operations.md``, "What a
clerk sees").
"""

from __future__ import annotations

import logging
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from adapters.db import ebok
from adapters.db import review as queue
from adapters.scans import archived_copy
from adapters.storage import DocumentStore
from worker import fmt
from worker.app import App
from worker.correspondence_cmd import clean, print_declaration_attachments, write_new_folder
from worker.domain.attachments import safe_name
from worker.domain.clock import utcnow
from worker.domain.findings import ACCEPTED, NEEDS_REVIEW
from worker.domain.model import PAPER
from worker.errors import UsageError
from worker.forms.safe_xml import parse_untrusted
from worker.output import EXIT_OK
from worker.processing import StorageCorrupted
from worker.scans.export import ScanField, read_fields

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
    paper = r["channel"] == PAPER
    fields = scan_fields(app, r) if paper else {}
    print("  Ustalenia:" if r["findings"] else "  Ustalenia: brak")
    for f in r["findings"] or []:
        print(f"    [{f['code']}] {fmt.field(f.get('field'))}: {f['message']}")
        for line in read_values(fields, f.get("field")):
            print(f"       {line}")
    if paper:
        print_scan(app, r)
    else:
        print_declaration_attachments(r["evidence"], r["channel"])
    if r["review_note"]:
        print(f"  Decyzja biura ({fmt.text(r['reviewed_by'])}, {fmt.datetime_local(r['reviewed_at'])}): {r['review_note']}")
    return EXIT_OK


# --- a paper declaration: what the capture station read, and where the image is -----------


def _meta(r: Any) -> dict[str, Any]:
    meta = r["meta"] if isinstance(r["meta"], dict) else {}
    return meta


def scan_fields(app: App, r: Any) -> dict[str, list[ScanField]]:
    """The fields of the stored scan export by name (the same name may come more than
    once); empty when the export cannot be read back."""
    try:
        raw = app.store.get(r["storage_key"])
        root = parse_untrusted(raw, max_bytes=max(len(raw), 1))
        found = read_fields(root)
    except Exception:  # noqa: BLE001 - unreadable now: the findings are still shown
        return {}
    out: dict[str, list[ScanField]] = {}
    for f in found:
        out.setdefault(f.name, []).append(f)
    return out


def read_values(fields: dict[str, list[ScanField]], name: str | None, *, limit: int = 8) -> list[str]:
    """For a finding's field: each value the station read (the field itself, or the fields
    of that part: ``lokale`` → ``lokale.1.liczba_mieszkancow``…), its confidence and whether
    the operator checked it.

    >>> from decimal import Decimal
    >>> read_values({"skladajacy.pesel": [ScanField("skladajacy.pesel", "44051401359", Decimal("0.83"), False)]}, "skladajacy.pesel")
    ['odczytano: „44051401359”, pewność odczytu 0,83, operator stanowiska nie sprawdził']
    >>> read_values({}, "skladajacy.pesel"), read_values({"a": []}, None)
    ([], [])
    """
    if not name:
        return []
    chosen = list(fields.get(name, []))
    if not chosen:
        chosen = [f for key, fs in fields.items() if key.startswith(name + ".") for f in fs]
    lines = []
    for f in chosen[:limit]:
        value = f"„{clean(f.value, 200)}”" if f.value else "puste pole"
        checked = "sprawdzone przez operatora stanowiska" if f.verified else "operator stanowiska nie sprawdził"
        label = "odczytano" if f.name == name else f"{f.name}: odczytano"
        lines.append(f"{label}: {value}, pewność odczytu {_confidence(f.confidence)}, {checked}")
    if len(chosen) > limit:
        lines.append(f"… i {len(chosen) - limit} dalszych pól")
    return lines


def _confidence(value: Decimal) -> str:
    return f"{value:.2f}".replace(".", ",")


def print_scan(app: App, r: Any) -> None:
    """The scanned form: the capture station's export, the image in the archive."""
    meta = _meta(r)
    scan: dict[str, Any] = meta["scan"] if isinstance(meta.get("scan"), dict) else {}
    pdf: dict[str, Any] = meta["pdf"] if isinstance(meta.get("pdf"), dict) else {}
    print(f"  Skan: {clean(scan.get('id') or '—', 100)} (partia {clean(scan.get('batch') or '—', 100)}, "
          f"zeskanowano {_when(scan.get('scanned_at'))}, operator {clean(scan.get('operator') or '—', 100)}); "
          f"podpis własnoręczny: {'stwierdzony' if scan.get('handwritten_signature') is True else 'nie stwierdzony'}")
    if not pdf:
        print("  Obraz skanu: brak w zapisie dokumentu")
        return
    pages = f", stron: {pdf['pages']}" if pdf.get("pages") else ""
    archived = None
    if app.config.scans.enabled or app.config.scans.archive.exists():
        archived = archived_copy(app.config.scans, str(pdf.get("name") or ""), str(pdf.get("sha256") or ""), pdf.get("size"))
    if archived is not None:
        print(f"  Obraz skanu (PDF{pages}): {archived}")
    else:
        print(f"  Obraz skanu (PDF{pages}): w archiwum skanów go nie ma (przeniesiony?); kopia jest w magazynie dokumentów")
    print(f"  Zapis obrazu do folderu: ebok-worker review export-scan {r['id']} --to FOLDER")


def _when(text: Any) -> str:
    """The station's time stamp in Polish time (as written, when it is not one)."""
    try:
        return fmt.datetime_local(datetime.fromisoformat(str(text))) if text else fmt.DASH
    except ValueError:
        return clean(text, 40)


def _paper_document(app: App, decl_id: int) -> tuple[Any, dict[str, Any], bytes]:
    """A paper declaration's row, its image's metadata and bytes (checked against the
    SHA-256 recorded when it was stored)."""
    with app.engine.connect() as conn:
        r = queue.declaration_details(conn, decl_id)
    if r is None:
        raise UsageError(_no_declaration(decl_id))
    if r["channel"] != PAPER:
        raise UsageError(f"deklaracja #{decl_id} wpłynęła przez ePUAP, nie na papierze: nie ma obrazu skanu "
                         f"(jej załączniki zapisuje review export-attachments {decl_id} --to FOLDER)")
    pdf = _meta(r).get("pdf")
    if not isinstance(pdf, dict) or not pdf.get("storage_key"):
        raise UsageError(f"deklaracja #{decl_id}: w zapisie dokumentu brak obrazu skanu")
    image = app.store.get(str(pdf["storage_key"]))
    if DocumentStore.digest(image) != pdf.get("sha256"):
        raise StorageCorrupted(f"obraz skanu deklaracji #{decl_id} w magazynie dokumentów nie zgadza się ze skrótem SHA-256 zapisanym przy przyjęciu")
    return r, pdf, image


def scan_files(app: App, decl_id: int) -> dict[str, bytes]:
    """The image of a paper declaration under its own name (for the exports)."""
    _, pdf, image = _paper_document(app, decl_id)
    return {safe_name(str(pdf.get("name") or ""), set(), fallback="skan.pdf"): image}


def export_scan(app: App, decl_id: int, to: Path) -> int:
    """``review export-scan ID --to DIR``: the image (PDF) and the capture station's export
    (XML) of a paper declaration, as stored, into ``DIR/skan-deklaracji-ID/``."""
    r, pdf, image = _paper_document(app, decl_id)
    used: set[str] = set()
    files = {safe_name(str(pdf.get("name") or ""), used, fallback="skan.pdf"): image}
    xml_name = str(_meta(r).get("xml_file") or "")
    if xml_name:  # the capture station's export, as stored (what it read, with confidences)
        files[safe_name(xml_name, used, fallback="skan.xml")] = app.store.get(r["storage_key"])
    folder = write_new_folder(to, f"skan-deklaracji-{decl_id}", files)
    print(f"Zapisano obraz skanu deklaracji #{decl_id} w {folder}:")
    for name, data in files.items():
        print(f"  {name} ({fmt.size(len(data))})")
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
