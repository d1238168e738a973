"""The CPU budget of checking one document (``processing.max_document_seconds``).

Anyone can upload a document, so checking one must cost bounded time whatever its shape
(``spec/signatures.md``, "Bounded work for every document"). The structural limits
(:mod:`worker.forms.structure`) bound every single step — no canonicalisation, schema check
or mapping of a document within them can run long —; the budget bounds their sum: the CPU
time the analysing thread has spent on the document is compared with the budget between
the steps (before each stage, before each signature's cryptographic check, while schema
errors are explained). Past it, :class:`BudgetExceeded` is raised; the pipeline turns it
into ``DOCUMENT_TOO_COMPLEX`` (REJECTED, decided once, never a technical failure).

It is the CPU time of the thread that analyses (``time.thread_time``), not the wall clock:
a busy machine or a paused analysis thread does not make an honest document "too complex".

>>> budget = CpuBudget(60.0)
>>> budget.check("parse")  # well within it
>>> budget.spent() < 60.0
True
>>> try:
...     CpuBudget(0.0, started=-1.0).check("verify_signature")
... except BudgetExceeded as exc:
...     print(exc.step, exc.limit_s)
verify_signature 0.0
"""

from __future__ import annotations

import time


class BudgetExceeded(Exception):
    """The document used up its CPU budget at ``step`` (spent ``spent_s`` of ``limit_s``)."""

    def __init__(self, step: str, spent_s: float, limit_s: float) -> None:
        super().__init__(f"CPU budget of {limit_s:g} s exhausted at {step} ({spent_s:.2f} s)")
        self.step = step
        self.spent_s = spent_s
        self.limit_s = limit_s


class CpuBudget:
    """``seconds`` of CPU for one document, counted from ``started`` (the analysing thread's
    CPU clock when the budget was made)."""

    __slots__ = ("seconds", "started")

    def __init__(self, seconds: float, *, started: float | None = None) -> None:
        self.seconds = seconds
        self.started = time.thread_time() if started is None else started

    def spent(self) -> float:
        return time.thread_time() - self.started

    def check(self, step: str) -> None:
        """Raise :class:`BudgetExceeded` when the budget is used up."""
        spent = time.thread_time() - self.started
        if spent > self.seconds:
            raise BudgetExceeded(step, spent, self.seconds)


__all__ = ["BudgetExceeded", "CpuBudget"]
