"""A tiny stand-in pipeline for testing the processing machinery itself (claims, retries,
crashes, loading), independent of the real form, signature and rule stages.

A test document is ``b"<t building='7' residents='3'/>"``; ``BOOM`` in it makes the stage
raise (a technical failure); ``REJECT`` adds a rejecting finding.
"""

from __future__ import annotations

from datetime import date

from lxml import etree

from tests import factories
from worker.domain.findings import finding
from worker.pipeline import Context, ProcessingSettings, stage


@stage("test_parse")
def parse_test(ctx: Context) -> None:
    if b"BOOM" in ctx.raw:
        raise RuntimeError("simulated technical failure")
    root = etree.fromstring(ctx.raw, etree.XMLParser(resolve_entities=False, no_network=True))
    ctx.root = root
    residents = int(root.get("residents", "2"))
    ctx.declaration = factories.declaration(
        residents,
        building=root.get("building", "1"),
        applies_from=date.fromisoformat(root.get("from", "2025-03-01")),
        filed_at=ctx.filed_at or factories.declaration().filed_at,
    )
    ctx.gmina = "Kędzierzyn-Koźle"
    ctx.computed_fee = ctx.declaration.monthly_fee
    if b"REJECT" in ctx.raw:
        ctx.add(finding("PESEL_INVALID", "Skladajacy/Osoba/IdOsoby/PESEL", "Numer PESEL jest nieprawidłowy."))


def stages_for(channel, metadata):
    return [parse_test]


def settings() -> ProcessingSettings:
    from rules.ruleset import load_ruleset

    return ProcessingSettings(ruleset=load_ruleset())


def make_processor(engine, storage_path, **kw):
    from adapters.storage import DocumentStore
    from worker.processing import Processor

    return Processor(engine, DocumentStore(storage_path), settings(), stages_for=stages_for, **kw)
