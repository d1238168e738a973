"""Pipeline stages of a paper declaration (channel ``PAPER``), pure like every stage.

Order (:data:`PAPER_STAGES`)::

    parse → scan_export → identify → low_confidence → handwritten_signature
          → map_declaration → declaration_checks → fee_rules

* ``parse``: the e-forms' safe parser (``XML_MALFORMED`` / ``DOCUMENT_TOO_LARGE``, halt).
* ``scan_export``: the export against its XSD (``SCHEMA_INVALID`` per error, halt), then
  its header. Sets ``ctx.signature`` (:class:`PaperSignature`: ``HANDWRITTEN`` when the
  operator saw a signature, else ``NONE``; status ``NOT_APPLICABLE``) and, when the caller
  gave no filing time, ``ctx.filed_at`` = the receipt date ``DataWplywu`` at midnight in
  Poland (the inbox stores exactly that as the document's filing time).
* ``identify``: ``Formularz kod/wersja`` in the forms registry. A code the registry does
  not know at all (the station recognised something that is not a DO-1) → ``FORM_UNKNOWN``
  and the document is correspondence, like an ePUAP letter: kept, counted, never shown as
  a declaration. A known code in an unknown version is read and then judged by the
  declaration checks (``FORM_VERSION_EXPIRED``).
* ``low_confidence``: one ``LOW_CONFIDENCE`` per field needed for the outcome (see
  :data:`worker.scans.mapper.NOT_NEEDED_FOR_OUTCOME` for the ones that are not) read with a
  confidence below ``settings.min_confidence`` and not verified by the operator.
* ``handwritten_signature``: ``NO_HANDWRITTEN_SIGNATURE`` when ``PodpisWlasnoreczny`` is false.
* ``map_declaration``: fields → the declaration model; every unreadable value is one
  ``SCHEMA_INVALID`` naming the scan field — except a field already ``LOW_CONFIDENCE``:
  the station could not read it for sure, so the office reads the paper (review), only a
  confidently read unreadable value rejects; halts if any value cannot be read.
* ``declaration_checks`` and ``fee_rules``: the same checks as an e-form. The content
  checks name e-form elements; for paper their findings are renamed to the scan fields
  (``skladajacy.pesel``), like the fee rules already do. An identifier or postal code that
  is not valid (``PESEL_INVALID``, ``NIP_INVALID``, ``REGON_INVALID``,
  ``POSTAL_CODE_INVALID``) in a ``LOW_CONFIDENCE`` field is a warning (review), not an
  error.

The two paper checks run *before* the mapping so that they are reported even when a value
cannot be read (all findings are collected).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from rules.checks import fee_rules
from worker.domain import checks as content_checks
from worker.domain.findings import ERROR, WARNING, Finding, finding
from worker.forms import stages as forms
from worker.forms.registry import DEFAULT_REGISTRY, FormRegistry
from worker.pipeline import CORRESPONDENCE, Context, FunctionStage, stage
from worker.scans.export import ScanExport, ScanExportError, read_export, validate_export
from worker.scans.mapper import ScanMappingError, map_scan, needed_for_outcome

log = logging.getLogger(__name__)

HANDWRITTEN = "HANDWRITTEN"
NONE = "NONE"
NOT_APPLICABLE = "NOT_APPLICABLE"


@dataclass(frozen=True)
class PaperSignature:
    """What the loader and ``check`` write to the contract's signature columns for paper."""

    kind: str  # HANDWRITTEN / NONE
    status: str = NOT_APPLICABLE
    signer_name: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)


def scan_of(ctx: Context) -> ScanExport | None:
    """The scan export read by the ``scan_export`` stage (``None`` before, or unreadable)."""
    return ctx.scan_export


@stage("scan_export")
def scan_export(ctx: Context) -> None:
    ctx.signature = PaperSignature(NONE, evidence={"kind": "paper", "handwritten_signature_seen": None})
    errors = validate_export(ctx.root, ctx.budget)
    if errors:
        log.info("scan export invalid", extra={"event": "scan.export_invalid", "document_id": ctx.document_id, "errors": len(errors)})
        ctx.halt(*errors)
        return
    try:
        export = read_export(ctx.root)
    except ScanExportError as exc:
        ctx.halt(finding("SCHEMA_INVALID", None, exc.message))
        return
    ctx.scan_export = export
    h = export.header
    seen = h.handwritten_signature is True
    ctx.signature = PaperSignature(
        HANDWRITTEN if seen else NONE,
        evidence={
            "kind": "paper",
            "handwritten_signature_seen": seen,
            "scan_id": h.scan_id,
            "batch": h.batch,
            "scanned_at": h.scanned_at,
            "operator": h.operator,
            "image_sha256": h.image_sha256,
        },
    )
    if ctx.filed_at is None:
        ctx.filed_at = h.filed_at


def make_identify(registry: FormRegistry) -> FunctionStage:
    @stage("identify")
    def identify(ctx: Context) -> None:
        export = scan_of(ctx)
        if export is None:
            return
        h = export.header
        ctx.form = registry.by_form(h.form)
        if ctx.form is None and not any(s.code == h.form_code for s in registry):
            ctx.kind = CORRESPONDENCE
            ctx.halt(
                finding(
                    "FORM_UNKNOWN",
                    "Formularz",
                    f"Stanowisko skanowania rozpoznało formularz „{h.form[:100]}”, który nie jest deklaracją "
                    "o wysokości opłaty (DO-1) przyjmowaną przez Związek. Zachowano go jako korespondencję "
                    "do rozpatrzenia przez biuro.",
                )
            )

    return identify


def _number(d: Decimal) -> str:
    return f"{d:.2f}".replace(".", ",")


@stage("low_confidence")
def low_confidence(ctx: Context) -> None:
    export = scan_of(ctx)
    if export is None:
        return
    threshold = Decimal(ctx.settings.min_confidence)
    reported: set[str] = set()
    for f in export.fields:
        if f.verified or f.confidence >= threshold or f.name in reported or not needed_for_outcome(f.name):
            continue
        reported.add(f.name)
        ctx.add(
            finding(
                "LOW_CONFIDENCE",
                f.name,
                f"Pole „{f.name}” odczytano automatycznie z pewnością {_number(f.confidence)} (wymagane co najmniej "
                f"{_number(threshold)}), a operator stanowiska skanowania go nie sprawdził. Wartość należy porównać "
                "z formularzem papierowym.",
            )
        )


@stage("handwritten_signature")
def handwritten_signature(ctx: Context) -> None:
    export = scan_of(ctx)
    if export is None or export.header.handwritten_signature is True:
        return
    ctx.add(
        finding(
            "NO_HANDWRITTEN_SIGNATURE",
            "PodpisWlasnoreczny",
            "Operator stanowiska skanowania nie stwierdził na formularzu własnoręcznego podpisu składającego. "
            "Deklaracja papierowa bez podpisu nie jest skutecznie złożona.",
        )
    )


def make_map_declaration(registry: FormRegistry) -> FunctionStage:
    @stage("map_declaration")
    def map_declaration(ctx: Context) -> None:
        export = scan_of(ctx)
        if export is None:
            return
        try:
            decl = map_scan(export.fields, export.header.form, registry=registry)
        except ScanMappingError as exc:
            # a value the station read with low confidence and could not make sense of is
            # already LOW_CONFIDENCE: the office reads the paper; only a confident one rejects
            doubtful = doubtful_fields(ctx)
            ctx.halt(*(f for f in exc.findings if not (f.code == "SCHEMA_INVALID" and f.field in doubtful)))
            return
        except LookupError:  # identify halts first; kept as a guard
            ctx.kind = CORRESPONDENCE
            ctx.halt(finding("FORM_UNKNOWN", "Formularz", "Nie rozpoznano formularza dokumentu."))
            return
        ctx.declaration = dataclasses.replace(decl, filed_at=ctx.filed_at, channel=ctx.channel)

    return map_declaration


#: the content checks' e-form elements → the scan fields that are the same box on paper
PAPER_FIELDS: dict[str, str] = {
    content_checks.F_PESEL: "skladajacy.pesel",
    content_checks.F_PERSON_NIP: "skladajacy.nip",
    content_checks.F_PERSON_REGON: "skladajacy.regon",
    content_checks.F_NIP: "skladajacy.nip",
    content_checks.F_REGON: "skladajacy.regon",
    content_checks.F_INSTITUTION_PESEL: "skladajacy.pesel",
    content_checks.F_DECLARANT_POSTAL: "skladajacy.adres.kod_pocztowy",
    content_checks.F_PROPERTY_POSTAL: "nieruchomosc.adres.kod_pocztowy",
    content_checks.F_KIND: "nieruchomosc.rodzaj",
    content_checks.F_BUILDING: "nieruchomosc.zabudowa",
    content_checks.F_RESIDENTIAL: "lokale",
    content_checks.F_NON_RESIDENTIAL: "pojemniki",
    content_checks.F_RESIDENTS: "lokale",
    content_checks.F_COMPOSTING: "kompostownik",
    content_checks.F_COMPOSTING_DISCOUNT: "zwolnienie_kompostownik",
}


#: findings that only say a value is not a valid identifier or code
UNREADABLE_IDENTIFIER_CODES = frozenset({"PESEL_INVALID", "NIP_INVALID", "REGON_INVALID", "POSTAL_CODE_INVALID"})


def doubtful_fields(ctx: Context) -> set[str]:
    """The scan fields reported ``LOW_CONFIDENCE`` (read with low confidence, not verified)."""
    return {f.field for f in ctx.findings if f.code == "LOW_CONFIDENCE" and f.field}


def _paper_field(f: Finding, doubtful: set[str]) -> Finding:
    new = PAPER_FIELDS.get(f.field or "")
    if new:
        f = dataclasses.replace(f, field=new)
    if f.code in UNREADABLE_IDENTIFIER_CODES and f.field in doubtful and f.severity == ERROR:
        # maybe misread: for the office to compare with the paper (the code stays, so no
        # payer is created from it), not a rejection
        f = dataclasses.replace(f, severity=WARNING)
    return f


def make_declaration_checks(registry: FormRegistry) -> FunctionStage:
    inner = forms.declaration_checks if registry is DEFAULT_REGISTRY else forms.make_declaration_checks(registry)

    @stage("declaration_checks")
    def declaration_checks(ctx: Context) -> None:
        before = len(ctx.findings)
        inner(ctx)
        doubtful = doubtful_fields(ctx)
        ctx.findings[before:] = [_paper_field(f, doubtful) for f in ctx.findings[before:]]

    return declaration_checks


def paper_stages(registry: FormRegistry = DEFAULT_REGISTRY) -> list[FunctionStage]:
    """The PAPER pipeline over ``registry``.

    >>> [s.name for s in paper_stages()]  # doctest: +NORMALIZE_WHITESPACE
    ['parse', 'scan_export', 'identify', 'low_confidence', 'handwritten_signature',
     'map_declaration', 'declaration_checks', 'fee_rules']
    """
    if registry is DEFAULT_REGISTRY:
        return list(PAPER_STAGES)
    return [
        forms.parse, scan_export, make_identify(registry), low_confidence, handwritten_signature,
        make_map_declaration(registry), make_declaration_checks(registry), fee_rules,
    ]


identify = make_identify(DEFAULT_REGISTRY)
map_declaration = make_map_declaration(DEFAULT_REGISTRY)
declaration_checks = make_declaration_checks(DEFAULT_REGISTRY)


def _default_stages() -> tuple[FunctionStage, ...]:
    return (forms.parse, scan_export, identify, low_confidence, handwritten_signature, map_declaration, declaration_checks, fee_rules)


PAPER_STAGES: tuple[FunctionStage, ...] = _default_stages()

__all__ = [
    "PAPER_FIELDS",
    "PAPER_STAGES",
    "PaperSignature",
    "UNREADABLE_IDENTIFIER_CODES",
    "declaration_checks",
    "doubtful_fields",
    "handwritten_signature",
    "identify",
    "low_confidence",
    "make_declaration_checks",
    "make_identify",
    "make_map_declaration",
    "map_declaration",
    "paper_stages",
    "scan_export",
    "scan_of",
]
