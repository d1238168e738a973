"""``check FILE... [--json]``: validate documents offline and print the findings.

Runs the same stages as processing (schema, signature, rules) with the configuration's
rules and trust anchors; writes nothing. The checks that need the database (earlier
declarations of the property) are left out. ``--filed-at`` is the filing time; without it
an ePUAP document is taken as filed at the ``dataNadania`` of the ``FILE.meta.json`` beside
it (ePUAP's metadata, as the samples carry it; its other values, e.g. ``czyTestowe``, count
too), else now — the output says which. A letter (no declaration form) is shown as
correspondence (``status`` ``CORRESPONDENCE``), never as a rejected declaration.

A ``.xml`` whose root is the capture station's ``Skan`` is a paper declaration: it runs
the PAPER stages (channel ``PAPER``), its filing time is its receipt date ``DataWplywu``
unless ``--filed-at`` is given, and its PDF must lie beside it (``Obraz/@plik``) with the
SHA-256 the export gives — as the scan inbox would require. The result carries
``"image": {"file", "ok", "problem"}``; a missing PDF or a different hash makes ``check``
exit 1 (the findings are still printed: the pair would not be taken in as it is).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from worker import channels, fmt
from worker.app import App
from worker.domain.findings import finding
from worker.domain.model import EPUAP
from worker.errors import file_error_text
from worker.forms.safe_xml import XmlRefused
from worker.forms.structure import DEFAULT_LIMITS, parse_bounded
from worker.output import EXIT_FAILURE, EXIT_OK, print_json
from worker.pipeline import CORRESPONDENCE, Context
from worker.processing import analyse

SIDECAR = ".meta.json"  # ePUAP's metadata beside a document (the samples' and the double's format)
MAX_SIDECAR_BYTES = 1024 * 1024


def check_file(app: App, path: Path, filed_at: datetime | None) -> dict[str, Any]:
    """One file's result; ``filed_at`` None: for an ePUAP document ``dataNadania`` of the
    ``FILE.meta.json`` beside it, else now; for a scan, its receipt date."""
    settings = app.settings
    image: dict[str, Any] | None = None
    when: datetime | None = filed_at
    source = "option" if filed_at is not None else None
    try:
        size = path.stat().st_size
        if size > settings.max_document_bytes:
            raw = b""
            ctx = Context(raw=raw, channel=EPUAP, filed_at=filed_at, settings=settings)
            ctx.add(finding("DOCUMENT_TOO_LARGE", None, f"Dokument ma {size} bajtów, więcej niż dopuszczalne {settings.max_document_bytes}."))
        else:
            raw = path.read_bytes()
            root = _root_or_none(raw, settings)
            channel = channels.recognise(root, default=EPUAP)
            metadata: dict[str, Any] = {}
            if channel.filed_now:
                metadata, sidecar_time, problem = read_sidecar(path)
                if when is None and sidecar_time is not None:
                    when, source = sidecar_time, "meta.json"
                elif when is None:
                    when, source = datetime.now(UTC), ("now" if problem is None else f"now:{problem}")
            ctx = analyse(raw, channel=channel.name, filed_at=when, metadata=metadata, settings=settings)
            if source is None:
                source = "document"  # the document's own date (a scan's receipt date)
            if channel.offline_check is not None:
                image = channel.offline_check(path, root, settings)
    except OSError as exc:
        return {"file": str(path), "error": f"nie można odczytać pliku: {file_error_text(exc)}"}
    result = result_of(str(path), ctx)
    result["_filed_at"] = (ctx.filed_at, source or "now")
    if image is not None:
        result["image"] = image
    return result


def read_sidecar(path: Path) -> tuple[dict[str, Any], datetime | None, str | None]:
    """The ePUAP metadata of ``FILE.meta.json`` beside ``path``: (metadata, its
    ``dataNadania``, a problem with the file in Polish); nothing when there is none."""
    sidecar = path.with_name(path.name + SIDECAR)
    if not sidecar.is_file():
        return {}, None, None
    try:
        if sidecar.stat().st_size > MAX_SIDECAR_BYTES:
            raise ValueError("za duży")
        data = json.loads(sidecar.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError("to nie jest obiekt JSON")
        when = data.get("dataNadania")
        filed = datetime.fromisoformat(when) if isinstance(when, str) else None
        if filed is not None and filed.tzinfo is None:
            filed = filed.replace(tzinfo=UTC)
    except (OSError, ValueError) as exc:
        return {}, None, f"plik {sidecar.name} jest nieczytelny ({exc})"
    return data, filed, None if filed is not None else f"plik {sidecar.name} nie podaje dataNadania"


def _root_or_none(raw: bytes, settings: Any) -> Any:
    """The file's root element, to recognise its channel (within the structural limits: a
    flood is not built into a tree here either)."""
    try:
        return parse_bounded(raw, max_bytes=settings.max_document_bytes, limits=settings.limits or DEFAULT_LIMITS)
    except XmlRefused:
        return None  # the stages report it


def result_of(name: str, ctx: Context) -> dict[str, Any]:
    """The values the worker would write to ``ebok_declaration`` for this document."""
    decl = ctx.declaration
    sig = ctx.signature
    channel = channels.get(ctx.channel)
    status = CORRESPONDENCE if ctx.kind == CORRESPONDENCE else ctx.outcome  # a letter is no rejected declaration
    return {
        "file": name,
        "form": decl.form if decl else getattr(ctx.form, "form", None),
        "channel": ctx.channel,
        "status": status,
        "findings": [f.to_dict() for f in ctx.findings],
        "declared_fee": _money(decl.monthly_fee) if decl else None,
        "computed_fee": _money(ctx.computed_fee),
        "signature": getattr(sig, "kind", None) or channel.unsigned_signature,
        "signature_status": getattr(sig, "status", None) or channel.unsigned_status,
        "signer": getattr(sig, "signer_name", None),
    }


def _money(value) -> str | None:
    return None if value is None else f"{value:.2f}"


def run_check(app: App, files: list[Path], *, as_json: bool, filed_at: datetime | None) -> int:
    results = [check_file(app, f, filed_at) for f in files]
    filing = [r.pop("_filed_at", None) for r in results]
    if as_json:
        print_json(results)
    else:
        for r, when in zip(results, filing, strict=True):
            if "error" in r:
                print(f"{r['file']}: {r['error']}")
                continue
            if r["status"] == CORRESPONDENCE:
                print(f"{r['file']}: {fmt.status(r['status'])} — to nie jest deklaracja, lecz pismo dla biura "
                      f"(kanał {fmt.label('channel', r['channel'])})")
            else:
                print(f"{r['file']}: {fmt.status(r['status'])}, formularz {r['form'] or 'nieznany'}, kanał {fmt.label('channel', r['channel'])}")
            if when is not None:
                print(f"  złożona: {_filed_text(*when)}")
            print(f"  opłata miesięczna zadeklarowana: {fmt.money(r['declared_fee'])}, wyliczona: {fmt.money(r['computed_fee'])}")
            print(f"  podpis: {fmt.label('signature', r['signature'])} ({fmt.label('signature_status', r['signature_status'])})")
            print("  ustalenia:" if r["findings"] else "  ustalenia: brak")
            for f in r["findings"]:
                print(f"    [{f['code']}] {fmt.field(f['field'])}: {f['message']}")
            if r.get("image") is not None:
                img = r["image"]
                print(f"  obraz skanu: {'zgodny z eksportem' if img['ok'] else img['problem']}")
    bad_image = any(r.get("image") is not None and not r["image"]["ok"] for r in results)
    return EXIT_FAILURE if bad_image or any("error" in r for r in results) else EXIT_OK


def _filed_text(when: datetime | None, source: str) -> str:
    """When the document was taken as filed, and where that came from."""
    at = f"{fmt.datetime_local(when)} (czas polski)"
    if source == "option":
        return f"{at}, podano w --filed-at"
    if source == "meta.json":
        return f"{at}, dataNadania z pliku {SIDECAR[1:]} obok dokumentu"
    if source == "document":
        return f"{at}, data wpływu podana w dokumencie"
    why = source.partition(":")[2] or f"brak --filed-at i pliku PLIK{SIDECAR} obok"
    return f"{at} — sprawdzono jak złożoną teraz ({why}); terminy (LATE_FILING) liczone od tej chwili"
