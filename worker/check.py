"""``check FILE... [--json]``: validate documents offline and print the findings.

Runs the same stages as processing (schema, signature, rules) with the configuration's
rules and trust anchors; writes nothing. The checks that need the database (earlier
declarations of the property) are left out. ``--filed-at`` is the filing time
(default: now).

A ``.xml`` whose root is the capture station's ``Skan`` is a paper declaration: it runs
the PAPER stages (channel ``PAPER``), its filing time is its receipt date ``DataWplywu``
unless ``--filed-at`` is given, and its PDF must lie beside it (``Obraz/@plik``) with the
SHA-256 the export gives — as the scan inbox would require. The result carries
``"image": {"file", "ok", "problem"}``; a missing PDF or a different hash makes ``check``
exit 1 (the findings are still printed: the pair would not be taken in as it is).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from worker import channels, fmt
from worker.app import App
from worker.domain.findings import REJECTED, finding
from worker.domain.model import EPUAP
from worker.forms.safe_xml import XmlRefused
from worker.forms.structure import DEFAULT_LIMITS, parse_bounded
from worker.output import EXIT_FAILURE, EXIT_OK, print_json
from worker.pipeline import CORRESPONDENCE, Context
from worker.processing import analyse


def check_file(app: App, path: Path, filed_at: datetime | None) -> dict[str, Any]:
    """One file's result; ``filed_at`` None: now (ePUAP) or the receipt date (paper)."""
    settings = app.settings
    image: dict[str, Any] | None = None
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
            when = (filed_at or datetime.now(UTC)) if channel.filed_now else filed_at
            ctx = analyse(raw, channel=channel.name, filed_at=when, settings=settings)
            if channel.offline_check is not None:
                image = channel.offline_check(path, root, settings)
    except OSError as exc:
        return {"file": str(path), "error": f"nie można odczytać pliku: {exc.strerror or exc}"}
    result = result_of(str(path), ctx)
    if image is not None:
        result["image"] = image
    return result


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
    status = REJECTED if ctx.kind == CORRESPONDENCE else ctx.outcome
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
    if as_json:
        print_json(results)
    else:
        for r in results:
            if "error" in r:
                print(f"{r['file']}: {r['error']}")
                continue
            print(f"{r['file']}: {fmt.status(r['status'])}, formularz {r['form'] or 'nieznany'}, kanał {fmt.label('channel', r['channel'])}")
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
