"""Which stages run for which channel, in order: the one place the pipeline is assembled.

ePUAP: parse → identify the form → verify the signature → (from here on only the signed
content is read) validate against the form's XSD → map to the declaration model →
declaration checks → signer against declarant → fee rules. The database checks
(corrections, retroactive decreases) and the load follow in the service layer.

PAPER (a scan export from the scan inbox): parse → the export (XSD, header) → identify the
form → low OCR confidence → handwritten signature → map the fields to the declaration
model → declaration checks → fee rules (``worker.scans.stages``).
"""

from __future__ import annotations

from typing import Any

from rules.checks import fee_rules
from worker.domain.model import EPUAP, PAPER
from worker.forms import FORM_STAGES_AFTER_SIGNATURE, FORM_STAGES_BEFORE_SIGNATURE
from worker.pipeline import Stage
from worker.scans.stages import PAPER_STAGES
from worker.signatures import stages as signatures


def stages_for(channel: str, metadata: dict[str, Any] | None = None) -> list[Stage]:
    if channel == EPUAP:
        return [
            *FORM_STAGES_BEFORE_SIGNATURE,  # parse, identify
            signatures.verify_signature,
            *FORM_STAGES_AFTER_SIGNATURE,  # validate, map_declaration, declaration_checks
            signatures.check_signer,
            fee_rules,
        ]
    if channel == PAPER:
        return list(PAPER_STAGES)
    raise ValueError(f"no pipeline for channel {channel!r}")
