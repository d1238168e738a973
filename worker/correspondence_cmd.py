"""``correspondence list / show / export`` and ``review export-attachments``: the office
finds and reads what is not a declaration, and the attachments of declarations, from the
command line. Human output in Polish with Polish local dates; ``--json`` has English keys.
IDs of correspondence are document ids (correspondence has no declaration id)."""

from __future__ import annotations

import json
import unicodedata
from datetime import date
from pathlib import Path
from typing import Any

from lxml import etree

from adapters.db import documents
from adapters.outbox import write_folder
from adapters.storage import DocumentStore
from worker import fmt, states
from worker.correspondence import (
    ATTACHMENTS_DIR,
    POLISH,
    attachment_data,
    build_item,
    handed_over_kinds,
    local,
    unpack_zip_attachments,
)
from worker.domain.attachments import DANE
from worker.domain.xmlvalue import string_value
from worker.errors import UsageError
from worker.forms.validation import local_name
from worker.output import EXIT_OK, print_json

DS_NS = "http://www.w3.org/2000/09/xmldsig#"
XADES_NS = ("http://uri.etsi.org/01903/v1.3.2#", "http://uri.etsi.org/01903/v1.4.1#")
MAX_TEXT_CHARS = 6000


def clean(value: Any, limit: int = 300) -> str:
    """Text from a document made safe for a terminal: control characters (escape sequences
    too) replaced, whitespace collapsed, bounded."""
    text = " ".join(str(value).split())
    text = "".join("?" if unicodedata.category(ch).startswith("C") else ch for ch in text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _rows(app: Any) -> list[Any]:
    with app.engine.connect() as conn:
        return list(documents.correspondence_rows(conn, handed_over_kinds(app)))


def sender_of(doc: Any) -> str:
    meta = doc["meta"] or {}
    if doc["channel"] == "PAPER":
        scan = meta.get("scan") or {}
        return f"pismo papierowe (skan {clean(scan.get('id') or '?', 100)})"
    p = meta.get("danePodmiotu")
    if not isinstance(p, dict):
        p = {}
    name = " ".join(str(x) for x in (p.get("imieSkrot"), p.get("nazwiskoNazwa")) if x)
    return clean(name or p.get("identyfikator") or meta.get("adresOdpowiedzi") or "nieznany nadawca", 200)


def _attachment_count(doc: Any) -> int:
    n = len((doc["evidence"] or {}).get("attachments") or [])
    return n + (1 if isinstance((doc["meta"] or {}).get("pdf"), dict) else 0)


def _handover_text(r: Any) -> str:
    if r["handed_over_at"] is not None:
        return f"przekazano {local(r['handed_over_at'])} ({r['folder']})"
    if r["handover_error"]:
        return "NIE przekazano: błąd skrzynki biura, ponowienie"
    return "czeka na przekazanie"


def _day(t: Any) -> date:
    return t.astimezone(POLISH).date()


def list_items(app: Any, *, since: date | None = None, until: date | None = None, filed_since: date | None = None,
               filed_until: date | None = None, as_json: bool = False) -> int:
    """Every item, or those received (``since``/``until``) or filed (``filed_since``/
    ``filed_until``) on the given Polish days — the same meaning as in ``reprocess``."""
    rows = _rows(app)
    if since is not None:
        rows = [r for r in rows if _day(r["received_at"]) >= since]
    if until is not None:
        rows = [r for r in rows if _day(r["received_at"]) <= until]
    if filed_since is not None:
        rows = [r for r in rows if _day(r["filed_at"] or r["received_at"]) >= filed_since]
    if filed_until is not None:
        rows = [r for r in rows if _day(r["filed_at"] or r["received_at"]) <= filed_until]
    narrowed = any(x is not None for x in (since, until, filed_since, filed_until))
    if as_json:
        print_json([
            {
                "document_id": r["id"], "kind": r["kind"], "channel": r["channel"], "mailbox": r["source"],
                "filed_at": r["filed_at"].isoformat() if r["filed_at"] else None, "received_at": r["received_at"].isoformat(),
                "sender": sender_of(r), "attachments": _attachment_count(r),
                "handed_over_at": r["handed_over_at"].isoformat() if r["handed_over_at"] else None,
                "folder": r["folder"] if r["handed_over_at"] else None, "handover_error": r["handover_error"],
            }
            for r in rows
        ])
        return EXIT_OK
    if not rows:
        print("Brak korespondencji spełniającej podane warunki." if narrowed else "Brak korespondencji.")
        return EXIT_OK
    print(f"Korespondencja (pisma inne niż deklaracje): {len(rows)}")
    for r in rows:
        where = r["source"] if r["channel"] == "EPUAP" else "skrzynka skanów"
        print(f"  #{r['id']}  złożone {local(r['filed_at'] or r['received_at'])}  {r['channel']} {where}  od: {sender_of(r)}"
              f"  załączniki: {_attachment_count(r)}  [{_handover_text(r)}]")
    return EXIT_OK


def _document(app: Any, doc_id: int) -> Any:
    with app.engine.connect() as conn:
        r = documents.document_with_handover(conn, doc_id)
    if r is None:
        raise UsageError(f"nie ma dokumentu o id {doc_id} (podaj id dokumentu z „correspondence list”)")
    if r["state"] != states.DONE:
        raise UsageError(f"dokument {doc_id} nie jest jeszcze przetworzony (stan: {fmt.status(r['state'])}); spróbuj później")
    if r["kind"] not in handed_over_kinds(app):
        raise UsageError(f"dokument {doc_id} nie jest korespondencją, tylko {_WHAT.get(r['kind'] or '', 'innym dokumentem')}"
                         + (" (jego deklarację pokazuje review show, id deklaracji z „review list”)" if r["kind"] == "DECLARATION" else ""))
    return r


_WHAT = {"DECLARATION": "deklaracją", "TEST": "dokumentem testowym ePUAP", "UNREADABLE": "dokumentem, którego nie dało się odczytać"}


def write_new_folder(to: Path, name: str, files: dict[str, bytes]) -> Path:
    """An export's folder ``to/name`` with ``files``, written atomically; one that exists
    is a usage error — nothing is overwritten (an unwritable ``to`` is a runtime failure)."""
    written = write_folder(to, name, files)
    if not written.created:
        raise UsageError(f"--to: folder {written.path} już istnieje; niczego nie nadpisano (wskaż inny folder albo usuń ten)")
    return written.path


def _text_lines(root: Any) -> list[str]:
    """The readable text of a letter: element name and text, without signatures and
    attachment data."""
    lines: list[str] = []
    skip = set()
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue
        ns = el.tag[1:].split("}", 1)[0] if el.tag.startswith("{") else ""
        if ns == DS_NS or ns in XADES_NS or el.tag == DANE or any(a in skip for a in el.iterancestors()):
            skip.add(el)
            continue
        # a value (no child elements) is its whole string value; a container shows its own text
        leaf = next(el.iterchildren(tag=etree.Element), None) is None
        text = ((string_value(el) if leaf else el.text) or "").strip()
        if text:
            lines.append(f"{clean(local_name(el.tag), 100)}: {clean(text, MAX_TEXT_CHARS)}")
    return lines


def show(app: Any, doc_id: int) -> int:
    r = _document(app, doc_id)
    item = build_item(app, r)
    m = item.metadata
    print(f"Pismo #{r['id']} ({'ePUAP' if r['channel'] == 'EPUAP' else 'papier'}), złożone {local(r['filed_at'] or r['received_at'])}, przyjęte {local(r['received_at'])}")
    print(f"  od: {sender_of(r)}")
    if r["channel"] == "EPUAP":
        print(f"  skrytka: {r['source']}; adres do odpowiedzi: {clean(m['adresOdpowiedzi'] or '—')}")
        print(f"  plik: {clean(m['nazwaPliku'] or '—')} ({clean(m['typPliku'] or '?')}), {m['size']} B, SHA-256 {m['sha256']}")
        sig = m["signature"] or {}
        if sig.get("status") in ("VALID", "INDETERMINATE"):
            print(f"  podpis: {sig.get('kind')} ({sig.get('status')}), podpisał: {clean(sig.get('signer') or '—')}")
        elif sig.get("kind") == "NONE" or not sig:
            print("  podpis: brak podpisu elektronicznego — treść niepotwierdzona")
        else:
            print(f"  podpis: {sig.get('kind')}, nieważny ({sig.get('status')}) — treść niepotwierdzona")
    print(f"  przekazanie do biura: {_handover_text(r)}")
    ctx = item.ctx
    root = ctx.content_root if ctx is not None else None
    if r["channel"] == "PAPER":
        scan = m.get("scan") or {}
        print(f"  skan {clean(scan.get('id') or '?')} (partia {clean(scan.get('batch') or '?')}), wpływ {scan.get('received_on') or '?'}, "
              f"formularz rozpoznany przez stanowisko: {clean(scan.get('form') or '—')}")
        print("  Treść: w obrazie skanu (załącznik PDF).")
    elif root is not None:
        print("  Treść:" if ctx is not None and ctx.signed_root is not None else "  Treść (niepodpisana, bez potwierdzenia autentyczności):")
        text = "\n".join(_text_lines(root))
        for line in text[:MAX_TEXT_CHARS].splitlines():
            print(f"    {line}")
        if len(text) > MAX_TEXT_CHARS:
            print("    … (dalsza treść w pliku dokumentu: correspondence export)")
    _print_attachments(m["attachments"])
    for f in m["findings"]:
        if f["code"] not in ("FORM_UNKNOWN",):
            print(f"  [{f['code']}] {clean(f['message'], 1000)}")
    return EXIT_OK


def _print_attachments(attachments: list[dict[str, Any]]) -> None:
    if not attachments:
        print("  Załączniki: brak")
        return
    print(f"  Załączniki: {len(attachments)}")
    for a in attachments:
        name = (a.get("file") or "").removeprefix(f"{ATTACHMENTS_DIR}/") or "(nie zapisano)"
        typ = clean(a.get("detected_type") or a.get("declared_type") or "typ nieznany", 100)
        line = f"    {a.get('index')}. {name} — {typ}, {fmt.size(a.get('size'))}"
        if a.get("description"):
            line += f" — {clean(a['description'], 200)}"
        print(line)
        if a.get("by_reference"):
            origin = "nie pobrano" if a.get("unavailable") else "pobrany"
            print(f"       przekazany przez odniesienie (repozytorium plików ePUAP, {origin}; fileId {clean(a.get('file_id') or '—', 200)}): "
                  "plik nie jest objęty podpisem dokumentu, podpis obejmuje tylko odnośnik")
        if a.get("problem"):
            print(f"       uwaga: {clean(a['problem'], 500)}")
        for u in a.get("unpacked") or []:
            where = (u.get("file") or "").removeprefix(f"{ATTACHMENTS_DIR}/") or "(nie rozpakowano)"
            print(f"       w archiwum: {clean(u.get('name') or '—', 200)} → {clean(where, 300)}"
                  + (f" — pominięto: {clean(u['problem'], 300)}" if u.get("problem") else ""))


def export(app: Any, doc_id: int, to: Path) -> int:
    r = _document(app, doc_id)
    item = build_item(app, r)
    folder = write_new_folder(to, str(doc_id), item.files)  # an OutboxError is a runtime failure (exit 1)
    print(f"Zapisano pismo #{doc_id} w {folder} (pliki: {len(item.files)}).")
    return EXIT_OK


# --- attachments of a declaration (review) ------------------------------------------------


def print_declaration_attachments(evidence: dict[str, Any] | None, channel: str | None = None) -> None:
    """For ``review show``: the attachments recorded when the declaration was processed
    (a paper declaration's image is shown by ``review`` itself)."""
    if channel == "PAPER":
        return
    if evidence is None or "attachments" not in evidence:
        print("  Załączniki: brak odczytanych (treść bez ważnego podpisu albo dokument przetworzony przed odczytywaniem "
              "załączników — sprawdzi je review export-attachments)")
        return
    _print_attachments(list(evidence["attachments"]))


def export_declaration_attachments(app: Any, decl_id: int, to: Path, *, paper_image: Any = None) -> int:
    """``review export-attachments``: the attachments of the verified content into
    ``DIR/deklaracja-ID/zalaczniki/``; for a paper declaration its scanned image
    (``paper_image(app, decl_id)`` gives it), which is what the office compares with."""
    with app.engine.connect() as conn:
        doc = documents.document_of_declaration(conn, decl_id)
    if doc is None:
        raise UsageError(f"nie ma deklaracji o id {decl_id} (podaj id deklaracji z „review list”, nie id dokumentu)")
    doc_id = doc["id"]
    if doc["channel"] == "PAPER" and paper_image is not None:
        images = paper_image(app, decl_id)
        files = {f"{ATTACHMENTS_DIR}/{name}": data for name, data in images.items()}
        folder = write_new_folder(to, f"deklaracja-{decl_id}", files)
        print(f"Deklaracja #{decl_id} jest papierowa: jej załącznikiem jest obraz skanu formularza, zapisany w {folder / ATTACHMENTS_DIR}:")
        for name, data in images.items():
            print(f"  {name} — obraz skanu (PDF), {fmt.size(len(data))}")
        return EXIT_OK
    raw = app.store.get(doc["storage_key"])
    if DocumentStore.digest(raw) != doc["sha256"]:
        raise RuntimeError(f"zapisane bajty dokumentu {doc_id} nie zgadzają się z ich skrótem SHA-256 (uszkodzony magazyn dokumentów: storage.path)")
    ctx = app.processor.reanalyse(doc, raw)
    files = {f"{ATTACHMENTS_DIR}/{a.name}": data for a in ctx.attachments if (data := attachment_data(app.store, a)) is not None}
    summaries = [a.summary() for a in ctx.attachments]
    unpack_zip_attachments(ctx.attachments, summaries, files, {a.name.casefold() for a in ctx.attachments if a.present},
                           app.settings.max_attachment_bytes)
    if not files:
        why = " (podpis elektroniczny nieważny albo go brak: treść niepotwierdzona, załączników z niej się nie odczytuje)." if ctx.signed_root is None else "."
        print(f"Deklaracja #{decl_id} nie ma załączników, które można zapisać{why}")
        _print_attachments([a.summary() for a in ctx.attachments])
        return EXIT_OK
    files["zalaczniki.json"] = (json.dumps(summaries, ensure_ascii=False, indent=1) + "\n").encode("utf-8")
    folder = write_new_folder(to, f"deklaracja-{decl_id}", files)
    print(f"Zapisano załączniki deklaracji #{decl_id} w {folder / ATTACHMENTS_DIR}:")
    _print_attachments(summaries)
    return EXIT_OK
