"""ePUAP: parse → identify the form → verify the signature → (from here on only the signed
content is read) validate against the form's XSD → map to the declaration model →
declaration checks → signer against declarant → fee rules."""

from __future__ import annotations

from rules.checks import fee_rules
from worker.channels import Channel
from worker.domain.model import EPUAP
from worker.forms import FORM_STAGES_AFTER_SIGNATURE, FORM_STAGES_BEFORE_SIGNATURE
from worker.pipeline import Stage
from worker.signatures import stages as signatures


def stages() -> list[Stage]:
    return [
        *FORM_STAGES_BEFORE_SIGNATURE,  # parse, identify
        signatures.verify_signature,
        *FORM_STAGES_AFTER_SIGNATURE,  # validate, map_declaration, declaration_checks
        signatures.check_signer,
        fee_rules,
    ]


CHANNEL: Channel = Channel(name=EPUAP, stages=stages, unsigned_signature="NONE", unsigned_status="INVALID")
