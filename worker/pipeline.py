"""The processing pipeline: pluggable stages over one document, free of I/O.

A stage is a named callable that reads and extends a :class:`Context`: it may add
findings, set the parsed tree, the verified content, the declaration, the computed fee,
and may *halt* the pipeline when nothing sensible can follow (unreadable XML, an unknown
form). Stages never write to the database or the network: the service layer
(``worker.services``) stores the outcome afterwards in one transaction.

Which stages run for a channel is decided by :func:`stages_for`; adding a check is adding
a stage to that list.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from worker.domain.findings import Finding, outcome_of
from worker.domain.model import Declaration

# what a document turned out to be
DECLARATION = "DECLARATION"
CORRESPONDENCE = "CORRESPONDENCE"  # readable XML, but no declaration form: kept for the office
UNREADABLE = "UNREADABLE"  # not even well-formed: rejected with XML_MALFORMED


@dataclass(frozen=True)
class ProcessingSettings:
    """What the stages need from the configuration (built once at start-up)."""

    max_document_bytes: int = 10 * 1024 * 1024
    ruleset: Any = None  # rules.RuleSet
    trust: Any = None  # worker.signatures.TrustConfig
    min_confidence: Decimal = Decimal("0.90")
    max_attachment_bytes: int = 20 * 1024 * 1024  # one decoded attachment (correspondence.max_attachment_bytes)


@dataclass
class Context:
    """Everything the stages know about one document while it is processed."""

    raw: bytes
    channel: str  # EPUAP / PAPER
    filed_at: datetime | None
    metadata: dict[str, Any] = field(default_factory=dict)
    settings: ProcessingSettings = field(default_factory=ProcessingSettings)
    document_id: int | None = None

    findings: list[Finding] = field(default_factory=list)
    kind: str = DECLARATION
    halted: bool = False
    root: Any = None  # lxml root of the untrusted document (for identification only)
    form: Any = None  # worker.forms.registry.FormSpec
    signed_root: Any = None  # lxml root of exactly what the signature covers
    signature: Any = None  # worker.signatures.SignatureResult or a paper equivalent
    declaration: Declaration | None = None
    computed_fee: Decimal | None = None
    fee_explanation: list[str] = field(default_factory=list)
    gmina: str | None = None  # canonical member gmina name, when known
    scan_export: Any = None  # worker.scans.export.ScanExport of a paper document
    timings: dict[str, float] = field(default_factory=dict)
    attachments: list[Any] = field(default_factory=list)  # worker.domain.attachments.Attachment, from the verified content

    def add(self, *findings: Finding) -> None:
        self.findings.extend(findings)

    def halt(self, *findings: Finding) -> None:
        self.findings.extend(findings)
        self.halted = True

    @property
    def outcome(self) -> str:
        return outcome_of(self.findings)

    @property
    def content_root(self) -> Any:
        """The tree the declaration must be read from: the verified content when a
        signature was verified, otherwise the parsed document (paper, or ``check``)."""
        return self.signed_root if self.signed_root is not None else self.root


class Stage(Protocol):
    @property
    def name(self) -> str: ...

    def __call__(self, ctx: Context) -> None: ...


@dataclass(frozen=True)
class FunctionStage:
    name: str
    func: Callable[[Context], None]

    def __call__(self, ctx: Context) -> None:
        self.func(ctx)


def stage(name: str) -> Callable[[Callable[[Context], None]], FunctionStage]:
    """Decorator: turn ``def f(ctx)`` into a named stage."""

    def wrap(func: Callable[[Context], None]) -> FunctionStage:
        return FunctionStage(name, func)

    return wrap


def run_stages(ctx: Context, stages: list[Stage], on_stage: Callable[[str, float], None] | None = None) -> Context:
    """Run ``stages`` in order until one halts. Each stage's duration is recorded in
    ``ctx.timings`` and reported to ``on_stage`` (the service layer logs it)."""
    for st in stages:
        if ctx.halted:
            break
        t0 = time.perf_counter()
        st(ctx)
        dt = time.perf_counter() - t0
        ctx.timings[st.name] = dt
        if on_stage is not None:
            on_stage(st.name, dt)
    return ctx
