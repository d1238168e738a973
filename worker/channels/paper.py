"""PAPER (a scan export from the scan inbox): parse → the export (XSD, header) → identify
the form → low OCR confidence → handwritten signature → map the fields to the declaration
model → declaration checks → fee rules (``worker.scans.stages``). ``check`` recognises a
scan export by its root element and checks the PDF beside it."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from worker.channels import Channel
from worker.domain.model import PAPER
from worker.pipeline import Stage
from worker.scans.export import ScanExportError, is_scan_export, read_header
from worker.scans.stages import PAPER_STAGES

DEFAULT_MAX_IMAGE_BYTES = 50 * 1024 * 1024  # scans.max_image_bytes


def stages() -> list[Stage]:
    return list(PAPER_STAGES)


def scan_image(path: Path, root: Any, settings: Any = None) -> dict[str, Any]:
    """The scan export's PDF beside it: there, not larger than ``scans.max_image_bytes``
    (never read then), and with the SHA-256 the export gives (hashed in chunks)?"""
    try:
        header = read_header(root)
    except ScanExportError as exc:
        return {"file": None, "ok": False, "problem": exc.message}
    pdf = path.parent / header.image_file
    if not pdf.is_file():
        return {"file": header.image_file, "ok": False, "problem": f"Brak pliku obrazu „{header.image_file}” obok eksportu skanu."}
    limit = getattr(settings, "max_image_bytes", DEFAULT_MAX_IMAGE_BYTES)
    if pdf.stat().st_size > limit:
        return {
            "file": header.image_file, "ok": False, "reason": "image_too_large",
            "problem": f"Plik obrazu „{header.image_file}” jest większy niż dopuszczalne {limit} bajtów (scans.max_image_bytes).",
        }
    with pdf.open("rb") as fh:
        digest = hashlib.file_digest(fh, "sha256").hexdigest()
    if digest != header.image_sha256:
        return {
            "file": header.image_file, "ok": False,
            "problem": f"Plik obrazu „{header.image_file}” ma inny skrót SHA-256 niż podany w eksporcie skanu.",
        }
    return {"file": header.image_file, "ok": True, "problem": None}


CHANNEL: Channel = Channel(name=PAPER, stages=stages, recognises=is_scan_export, filed_now=False, offline_check=scan_image)
