"""``check FILE... [--json]``: validate documents offline and print the findings.

Runs the same stages as processing (schema, signature, rules) with the configuration's
rules and trust anchors; writes nothing. The checks that need the database (earlier
declarations of the property) are left out. ``--filed-at`` is the filing time
(default: now).
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from worker.app import App
from worker.cli import EXIT_FAILURE, EXIT_OK, print_json
from worker.domain.findings import REJECTED, finding
from worker.domain.model import EPUAP
from worker.pipeline import CORRESPONDENCE, Context
from worker.processing import analyse


def check_file(app: App, path: Path, filed_at: datetime) -> dict[str, Any]:
    settings = app.settings
    try:
        size = path.stat().st_size
        if size > settings.max_document_bytes:
            raw = b""
            ctx = Context(raw=raw, channel=EPUAP, filed_at=filed_at, settings=settings)
            ctx.add(finding("DOCUMENT_TOO_LARGE", None, f"Dokument ma {size} bajtów, więcej niż dopuszczalne {settings.max_document_bytes}."))
        else:
            ctx = analyse(path.read_bytes(), channel=EPUAP, filed_at=filed_at, settings=settings)
    except OSError as exc:
        return {"file": str(path), "error": f"nie można odczytać pliku: {exc.strerror or exc}"}
    return result_of(str(path), ctx)


def result_of(name: str, ctx: Context) -> dict[str, Any]:
    """The values the worker would write to ``ebok_declaration`` for this document."""
    decl = ctx.declaration
    sig = ctx.signature
    status = REJECTED if ctx.kind == CORRESPONDENCE else ctx.outcome
    return {
        "file": name,
        "form": decl.form if decl else getattr(ctx.form, "form", None),
        "channel": ctx.channel,
        "status": status,
        "findings": [f.to_dict() for f in ctx.findings],
        "declared_fee": _money(decl.monthly_fee) if decl else None,
        "computed_fee": _money(ctx.computed_fee),
        "signature": getattr(sig, "kind", None) or ("NONE" if ctx.channel == EPUAP else None),
        "signature_status": getattr(sig, "status", None) or ("INVALID" if ctx.channel == EPUAP else "NOT_APPLICABLE"),
        "signer": getattr(sig, "signer_name", None),
    }


def _money(value) -> str | None:
    return None if value is None else f"{value:.2f}"


def run_check(app: App, files: list[Path], *, as_json: bool, filed_at: datetime | None) -> int:
    filed_at = filed_at or datetime.now(timezone.utc)
    results = [check_file(app, f, filed_at) for f in files]
    if as_json:
        print_json(results)
    else:
        for r in results:
            if "error" in r:
                print(f"{r['file']}: {r['error']}")
                continue
            print(f"{r['file']}: {r['status']} ({r['form'] or 'formularz nieznany'}), opłata zadeklarowana {r['declared_fee']}, wyliczona {r['computed_fee']}, podpis {r['signature']} {r['signature_status']}")
            for f in r["findings"]:
                print(f"  [{f['code']}] {f['field'] or ''}: {f['message']}")
    return EXIT_FAILURE if any("error" in r for r in results) else EXIT_OK
