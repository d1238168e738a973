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

from worker.domain.budget import BudgetExceeded
from worker.domain.findings import Finding, finding, outcome_of
from worker.domain.model import Declaration

# what a document turned out to be
DECLARATION = "DECLARATION"
CORRESPONDENCE = "CORRESPONDENCE"  # readable XML, but no declaration form: kept for the office
UNREADABLE = "UNREADABLE"  # not even well-formed: rejected with XML_MALFORMED


@dataclass(frozen=True)
class ProcessingSettings:
    """What the stages need from the configuration (built once at start-up)."""

    max_document_bytes: int = 16 * 1024 * 1024  # processing.max_document_bytes
    ruleset: Any = None  # rules.RuleSet
    trust: Any = None  # worker.signatures.TrustConfig
    min_confidence: Decimal = Decimal("0.90")
    max_attachment_bytes: int = 20 * 1024 * 1024  # one decoded attachment (correspondence.max_attachment_bytes)
    limits: Any = None  # worker.forms.structure.StructureLimits; None: its defaults
    max_document_seconds: float = 5.0  # CPU budget of one document's analysis (processing.max_document_seconds)
    max_image_bytes: int = 50 * 1024 * 1024  # a scan's image (scans.max_image_bytes), for check's look at it


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
    budget: Any = None  # worker.domain.budget.CpuBudget of this analysis (None: unbounded)

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


def too_complex(ctx: Context, exc: BudgetExceeded) -> None:
    """The document used up its CPU budget: nothing of it is trusted or loaded, it is
    REJECTED with ``DOCUMENT_TOO_COMPLEX`` (decided, not a technical failure to retry)."""
    ctx.kind = UNREADABLE
    ctx.signed_root = ctx.declaration = ctx.computed_fee = None
    ctx.attachments = []
    ctx.fee_explanation = []
    ctx.halt(
        finding(
            "DOCUMENT_TOO_COMPLEX",
            None,
            f"Sprawdzenie dokumentu przekroczyło dopuszczalny czas pracy procesora ({exc.limit_s:g} s): "
            "dokument jest zbyt złożony, by go bezpiecznie sprawdzić. Dokumentu nie przetworzono.",
        )
    )


def run_stages(ctx: Context, stages: list[Stage], on_stage: Callable[[str, float], None] | None = None) -> Context:
    """Run ``stages`` in order until one halts. Each stage's duration is recorded in
    ``ctx.timings`` and reported to ``on_stage`` (the service layer logs it). With a CPU
    budget (``ctx.budget``) it is checked before every stage (and by the costly stages
    within); used up, the document is :func:`too_complex`."""
    for st in stages:
        if ctx.halted:
            break
        t0 = time.perf_counter()
        try:
            if ctx.budget is not None:
                ctx.budget.check(st.name)
            st(ctx)
        except BudgetExceeded as exc:
            too_complex(ctx, exc)
        dt = time.perf_counter() - t0
        ctx.timings[st.name] = dt
        if on_stage is not None:
            on_stage(st.name, dt)
    return ctx
