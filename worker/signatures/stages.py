"""Pipeline stages of signature verification (ePUAP channel).

* ``verify_signature`` runs after ``parse``/``identify`` and before ``validate`` /
  ``map_declaration``. It verifies ``ctx.raw`` (the bytes as received, never a tree
  changed or serialised again; the ``parse`` stage's tree of exactly those bytes,
  ``ctx.root``, is reused read-only instead of parsing them once more) with
  ``ctx.settings.trust`` and the filing time ``ctx.filed_at``, sets
  ``ctx.signature`` and, when the signed content is cryptographically verified (VALID or
  INDETERMINATE), ``ctx.signed_root``, which ``ctx.content_root`` then returns: the
  declaration is read from it only.

  When no signature is valid (SIGNATURE_MISSING / INVALID / UNTRUSTED / CERT_EXPIRED) the
  findings are recorded and the pipeline **halts**: the document is REJECTED anyway and
  nothing may be read from unverified data (``ctx.content_root`` would fall back to the
  untrusted tree). For a document that is not a declaration (correspondence) the result is
  recorded without findings and without halting.

* ``check_signer`` runs after the declaration is mapped. A PERSON declares: one of the
  usable signatures must be the declarant's (same PESEL), else ``SIGNER_NOT_DECLARANT``
  (review: e.g. a proxy, or a certificate without a PESEL); the matching signature becomes
  the one named in the ``signer`` column. An INSTITUTION declares: the signer is recorded
  as its representative (``SignatureResult.signer_role`` = ``REPRESENTATIVE``), no finding.
"""

from __future__ import annotations

from worker.config import ConfigError
from worker.domain.findings import finding
from worker.domain.model import INSTITUTION, PERSON
from worker.pipeline import DECLARATION, Context, stage
from worker.signatures.verify import INDETERMINATE, VALID, SignatureResult, verify_document

DECLARANT = "DECLARANT"
REPRESENTATIVE = "REPRESENTATIVE"
OTHER = "OTHER"

DECLARANT_PESEL_FIELD = "Skladajacy/Osoba/IdOsoby/PESEL"


class TrustNotConfigured(ConfigError, RuntimeError):
    """No ``[signatures]`` configuration, and a document whose signature must be verified."""


@stage("verify_signature")
def verify_signature(ctx: Context) -> None:
    """Verify the document's signatures; see the module docstring."""
    trust = ctx.settings.trust
    if trust is None:  # the wiring is wrong: a configuration error (config check names it), never a finding
        raise TrustNotConfigured("signatures.trust_anchors: do sprawdzenia podpisu dokumentu z ePUAP potrzebne są kotwice zaufania "
                          "([signatures] trust_anchors i trusted_profile_seals)")
    result = verify_document(ctx.raw, trust, filed_at=ctx.filed_at, parsed=ctx.root, budget=ctx.budget)
    ctx.signature = result
    if result.status in (VALID, INDETERMINATE):
        ctx.signed_root = result.signed_root
    if ctx.kind != DECLARATION:
        return
    if result.status == VALID:
        return
    if result.status == INDETERMINATE:
        ctx.add(*result.findings)
        return
    ctx.signed_root = None
    ctx.halt(*result.findings)


@stage("check_signer")
def check_signer(ctx: Context) -> None:
    """Compare the verified signer with the declarant; see the module docstring."""
    result = ctx.signature
    declaration = ctx.declaration
    if declaration is None or not isinstance(result, SignatureResult) or result.status not in (VALID, INDETERMINATE):
        return
    checks = [c for c in result.usable_checks if c.status == result.status]
    declarant = declaration.declarant
    if declarant.kind == INSTITUTION:
        ctx.signature = result.with_primary(checks[0], REPRESENTATIVE) if checks else result
        return
    if declarant.kind != PERSON:
        return
    for check in checks:
        if declarant.pesel and check.signer is not None and check.signer.pesel == declarant.pesel:
            ctx.signature = result.with_primary(check, DECLARANT)
            return
    if checks:
        ctx.signature = result.with_primary(checks[0], OTHER)
    if any(c.signer is not None and c.signer.pesel for c in checks):
        message = (
            "Deklarację podpisała inna osoba niż składający (inny numer PESEL, np. pełnomocnik) "
            "— wymaga sprawdzenia uprawnienia do złożenia deklaracji."
        )
    else:
        message = (
            "Nie można ustalić numeru PESEL osoby, która podpisała deklarację, więc nie potwierdzono, "
            "że podpisał ją składający — wymaga sprawdzenia."
        )
    ctx.add(finding("SIGNER_NOT_DECLARANT", DECLARANT_PESEL_FIELD, message))
