"""Pipeline stages for e-form documents: parse → identify → [signature] → validate → map → checks.

The signature stage (``worker.signatures``) sits between :data:`identify` and
:data:`validate` for ePUAP documents and sets ``ctx.signed_root`` to exactly what the
signature covers; :data:`validate` and :data:`map_declaration` read
``ctx.content_root``, so the declaration comes only from verified content when there is a
signature, and from the parsed document otherwise (paper, ``check`` of an unsigned file).

Outcomes of the early stages:

* ``parse``: a document over ``settings.max_document_bytes`` → ``DOCUMENT_TOO_LARGE``
  (its own code: the office sees at once that size, not content, is the problem); one
  beyond the structural limits (``settings.limits``, :mod:`worker.forms.structure`) →
  ``DOCUMENT_TOO_COMPLEX``; empty, not UTF-8, with a DTD/entities, or not well-formed →
  ``XML_MALFORMED``. All halt and mark the document ``UNREADABLE``.
* ``identify``: readable XML whose root is no known form → ``FORM_UNKNOWN``, halt, and the
  document is ``CORRESPONDENCE`` (kept for the office, never loaded as a declaration).
* ``validate``: every XSD error → one ``SCHEMA_INVALID``; halts if any.
* ``map_declaration``: a value the model cannot hold → ``SCHEMA_INVALID``, halt.
* ``declaration_checks``: adds every content finding; never halts (the fee rules follow).
"""

from __future__ import annotations

import dataclasses
import logging

from worker.domain.checks import check_declaration, check_form_version, filing_day
from worker.domain.findings import finding
from worker.forms.do1 import MappingError
from worker.forms.registry import DEFAULT_REGISTRY, FormRegistry
from worker.forms.safe_xml import DocumentTooComplex, DocumentTooLarge, XmlRefused
from worker.forms.structure import DEFAULT_LIMITS, parse_bounded
from worker.forms.validation import local_name, validate_document
from worker.pipeline import CORRESPONDENCE, DECLARATION, UNREADABLE, Context, FunctionStage, stage

log = logging.getLogger(__name__)


@stage("parse")
def parse(ctx: Context) -> None:
    """``ctx.raw`` → ``ctx.root`` (safely), or halt as unreadable."""
    if ctx.metadata.get("zawartosc_problem") == "not_base64" and len(ctx.raw) <= ctx.settings.max_document_bytes:
        # stored as the text that arrived: even if that text happens to be XML, it is not the document
        log.info("document refused", extra={"event": "document.refused", "document_id": ctx.document_id, "reason": "not_base64"})
        ctx.kind = UNREADABLE
        ctx.halt(finding("XML_MALFORMED", None, "Zawartość dokumentu z ePUAP nie jest poprawnym zapisem base64; "
                                                 "zachowano ją w postaci, w jakiej nadeszła."))
        return
    try:
        ctx.root = parse_bounded(ctx.raw, max_bytes=ctx.settings.max_document_bytes, limits=ctx.settings.limits or DEFAULT_LIMITS)
    except DocumentTooLarge as exc:
        log.info("document refused", extra={"event": "document.refused", "document_id": ctx.document_id, "reason": exc.reason, "size": exc.size})
        ctx.kind = UNREADABLE
        ctx.halt(finding("DOCUMENT_TOO_LARGE", None, exc.message))
    except DocumentTooComplex as exc:
        log.info("document refused", extra={"event": "document.refused", "document_id": ctx.document_id, "reason": exc.reason, "limit": exc.limit})
        ctx.kind = UNREADABLE
        ctx.halt(finding("DOCUMENT_TOO_COMPLEX", None, exc.message))
    except XmlRefused as exc:
        log.info("document refused", extra={"event": "document.refused", "document_id": ctx.document_id, "reason": exc.reason})
        ctx.kind = UNREADABLE
        ctx.halt(finding("XML_MALFORMED", None, exc.message))


def make_identify(registry: FormRegistry) -> FunctionStage:
    """The ``identify`` stage over ``registry``."""

    @stage("identify")
    def identify(ctx: Context) -> None:
        spec = registry.identify(ctx.root) if ctx.root is not None else None
        if spec is None:
            tag = getattr(ctx.root, "tag", None)
            name = local_name(tag) or "brak"
            namespace = tag[1:].split("}", 1)[0] if isinstance(tag, str) and tag.startswith("{") else ""
            where = f" z przestrzeni nazw „{namespace}”" if namespace else " bez przestrzeni nazw"
            log.info("form unknown: kept as correspondence", extra={"event": "form.unknown", "document_id": ctx.document_id, "namespace": namespace[:200]})
            ctx.kind = CORRESPONDENCE
            ctx.halt(
                finding(
                    "FORM_UNKNOWN",
                    None,
                    f"Dokument nie jest deklaracją o wysokości opłaty (DO-1) przyjmowaną przez Związek "
                    f"(element główny „{name[:100]}”{where[:300]}). Zachowano go jako korespondencję "
                    "do rozpatrzenia przez biuro.",
                )
            )
            return
        ctx.form = spec
        ctx.kind = DECLARATION

    return identify


def _identified_form(ctx: Context):
    """The form ``identify`` found; without one the document is correspondence (halts)."""
    if ctx.form is None:
        ctx.kind = CORRESPONDENCE
        ctx.halt(finding("FORM_UNKNOWN", None, "Nie rozpoznano formularza dokumentu."))
    return ctx.form


@stage("validate")
def validate(ctx: Context) -> None:
    """XSD-validate the verified content against the identified form."""
    spec = _identified_form(ctx)
    if spec is None:
        return
    findings = validate_document(ctx.content_root, spec, budget=ctx.budget)
    if findings:
        log.info(
            "document fails the form's schema",
            extra={"event": "schema.invalid", "document_id": ctx.document_id, "form": spec.form, "errors": len(findings)},
        )
        ctx.halt(*findings)


@stage("map_declaration")
def map_declaration(ctx: Context) -> None:
    """Read the declaration model from the verified content."""
    spec = _identified_form(ctx)
    if spec is None:
        return
    try:
        decl = spec.map(ctx.content_root)
    except MappingError as exc:
        ctx.halt(finding("SCHEMA_INVALID", exc.field, exc.message))
        return
    ctx.declaration = dataclasses.replace(decl, filed_at=ctx.filed_at, channel=ctx.channel)


def make_declaration_checks(registry: FormRegistry) -> FunctionStage:
    """The ``declaration_checks`` stage; ``registry`` gives the forms' filing windows."""

    @stage("declaration_checks")
    def declaration_checks(ctx: Context) -> None:
        decl = ctx.declaration
        if decl is None:
            return
        filed_on = filing_day(ctx.filed_at) if ctx.filed_at is not None else None
        findings = check_declaration(decl, on=filed_on)
        spec = registry.by_form(decl.form)
        if spec is None:
            known_code = any(s.code == decl.form_code for s in registry)
            findings.append(
                finding(
                    "FORM_VERSION_EXPIRED" if known_code else "FORM_UNKNOWN",
                    None,
                    f"Formularz {decl.form} nie jest wzorem przyjmowanym przez Związek.",
                )
            )
        elif filed_on is not None:
            findings += check_form_version(
                decl.form,
                filed_on,
                ctx.channel,
                filed_from=spec.filed_from,
                filed_until=spec.filed_until,
            )
        ctx.add(*findings)

    return declaration_checks


identify = make_identify(DEFAULT_REGISTRY)
declaration_checks = make_declaration_checks(DEFAULT_REGISTRY)


def form_stages(registry: FormRegistry = DEFAULT_REGISTRY) -> tuple[list[FunctionStage], list[FunctionStage]]:
    """The stages before and after the signature stage, for ``registry``.

    >>> before, after = form_stages()
    >>> [s.name for s in before], [s.name for s in after]
    (['parse', 'identify'], ['validate', 'map_declaration', 'declaration_checks'])
    """
    if registry is DEFAULT_REGISTRY:
        return [parse, identify], [validate, map_declaration, declaration_checks]
    return [parse, make_identify(registry)], [validate, map_declaration, make_declaration_checks(registry)]


__all__ = [
    "declaration_checks",
    "form_stages",
    "identify",
    "make_declaration_checks",
    "make_identify",
    "map_declaration",
    "parse",
    "validate",
]
