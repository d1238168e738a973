"""Findings: what a check says about a document, and the outcome they add up to.

The codes, their outcomes and severities are the eBOK contract
(``spec/ebok-contract.md``): stable, never renamed.

>>> f = finding("PESEL_INVALID", "Skladajacy/Osoba/IdOsoby/PESEL", "Numer PESEL jest nieprawidłowy.")
>>> f.severity
'error'
>>> outcome_of([f, finding("LATE_FILING", None, "Deklaracja złożona po terminie.")])
'REJECTED'
>>> outcome_of([])
'ACCEPTED'
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

ERROR = "error"
WARNING = "warning"
INFO = "info"

ACCEPTED = "ACCEPTED"
NEEDS_REVIEW = "NEEDS_REVIEW"
REJECTED = "REJECTED"
SUPERSEDED = "SUPERSEDED"

#: code -> outcome it implies. ``None``: informational, does not change the outcome.
CODES: dict[str, str | None] = {
    "XML_MALFORMED": REJECTED,
    "DOCUMENT_TOO_LARGE": REJECTED,
    "DOCUMENT_TOO_COMPLEX": REJECTED,  # beyond the structural limits or the CPU budget of the check
    "FORM_UNKNOWN": REJECTED,
    "SCHEMA_INVALID": REJECTED,
    "FORM_VERSION_EXPIRED": REJECTED,  # NEEDS_REVIEW for paper within 30 days: see severity override
    "SIGNATURE_MISSING": REJECTED,
    "SIGNATURE_INVALID": REJECTED,
    "SIGNATURE_UNTRUSTED": REJECTED,
    "SIGNATURE_CERT_EXPIRED": REJECTED,
    "SIGNATURE_INDETERMINATE": NEEDS_REVIEW,
    "DUPLICATE_SIGNATURE": REJECTED,
    "SIGNER_NOT_DECLARANT": NEEDS_REVIEW,
    "PESEL_INVALID": REJECTED,
    "NIP_INVALID": REJECTED,
    "REGON_INVALID": REJECTED,
    "POSTAL_CODE_INVALID": REJECTED,
    "GMINA_NOT_MEMBER": REJECTED,
    "COMPOSTING_NOT_ALLOWED": REJECTED,
    "NO_RESIDENTS": REJECTED,
    "PART_MISSING": REJECTED,
    "CONTAINER_UNKNOWN": REJECTED,
    "RATE_MISMATCH": NEEDS_REVIEW,
    "FEE_MISMATCH": NEEDS_REVIEW,
    "LATE_FILING": NEEDS_REVIEW,
    "RETROACTIVE_DECREASE": NEEDS_REVIEW,
    "CORRECTION_WITHOUT_BASE": NEEDS_REVIEW,
    "LOW_CONFIDENCE": NEEDS_REVIEW,
    "NO_HANDWRITTEN_SIGNATURE": REJECTED,
    "TEST_DOCUMENT": None,
    # an attachment sent by reference that could not be fetched from ePUAP's file repository;
    # informational for correspondence (severity overridden there)
    "ATTACHMENT_UNAVAILABLE": NEEDS_REVIEW,
    "ATTACHMENT_UNREADABLE": None,  # an attachment that cannot be decoded or is not what it claims (informational)
    "CONTACT_INVALID": None,  # an e-mail or phone that is not one: not stored, the declaration stands (informational)
}

_SEVERITY_OF_OUTCOME = {REJECTED: ERROR, NEEDS_REVIEW: WARNING, None: INFO}
_RANK = {ACCEPTED: 0, NEEDS_REVIEW: 1, REJECTED: 2}


@dataclass(frozen=True)
class Finding:
    """One thing a check found. ``message`` is Polish, for the payer and the office;
    ``field`` is the e-form element path (``Nieruchomosc/Gmina``) or the scan field name,
    or ``None`` when the finding is about the whole document."""

    code: str
    severity: str
    field: str | None
    message: str

    def to_dict(self) -> dict[str, str | None]:
        return {"code": self.code, "severity": self.severity, "field": self.field, "message": self.message}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Finding:
        return cls(data["code"], data["severity"], data.get("field"), data["message"])

    @property
    def outcome(self) -> str | None:
        if self.severity == ERROR:
            return REJECTED
        if self.severity == WARNING:
            return NEEDS_REVIEW
        return None


def finding(code: str, field: str | None, message: str, *, severity: str | None = None) -> Finding:
    """Make a finding with the severity the contract gives its code.

    ``severity`` overrides it where the contract says the outcome depends on the case
    (``FORM_VERSION_EXPIRED`` on paper within the grace period is a warning).
    Unknown codes are a programming error.
    """
    if code not in CODES:
        raise ValueError(f"unknown finding code {code!r}")
    return Finding(code, severity or _SEVERITY_OF_OUTCOME[CODES[code]], field, message)


def outcome_of(findings: Iterable[Finding]) -> str:
    """The worst outcome of all findings; ACCEPTED when none counts."""
    worst = ACCEPTED
    for f in findings:
        o = f.outcome
        if o is not None and _RANK[o] > _RANK[worst]:
            worst = o
    return worst
