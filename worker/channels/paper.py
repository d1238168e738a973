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


def stages() -> list[Stage]:
    return list(PAPER_STAGES)


def scan_image(path: Path, root: Any) -> dict[str, Any]:
    """The scan export's PDF beside it: there, and with the SHA-256 the export gives?"""
    try:
        header = read_header(root)
    except ScanExportError as exc:
        return {"file": None, "ok": False, "problem": exc.message}
    pdf = path.parent / header.image_file
    if not pdf.is_file():
        return {"file": header.image_file, "ok": False, "problem": f"Brak pliku obrazu „{header.image_file}” obok eksportu skanu."}
    if hashlib.sha256(pdf.read_bytes()).hexdigest() != header.image_sha256:
        return {
            "file": header.image_file, "ok": False,
            "problem": f"Plik obrazu „{header.image_file}” ma inny skrót SHA-256 niż podany w eksporcie skanu.",
        }
    return {"file": header.image_file, "ok": True, "problem": None}


CHANNEL: Channel = Channel(name=PAPER, stages=stages, recognises=is_scan_export, filed_now=False, offline_check=scan_image)
