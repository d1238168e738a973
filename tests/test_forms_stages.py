"""The form stages end to end over the test documents in tests/data/forms (see build.py there)."""

from __future__ import annotations

import copy
import dataclasses
import json
from datetime import datetime
from pathlib import Path

import pytest
from lxml import etree

from worker.domain import model as m
from worker.forms import FORM_STAGES_AFTER_SIGNATURE, FORM_STAGES_BEFORE_SIGNATURE
from worker.forms.stages import declaration_checks, map_declaration, validate
from worker.pipeline import CORRESPONDENCE, DECLARATION, Context, run_stages

DATA = Path(__file__).parent / "data" / "forms"
EXPECTED = json.loads((DATA / "expected.json").read_text(encoding="utf-8"))
ALL = FORM_STAGES_BEFORE_SIGNATURE + FORM_STAGES_AFTER_SIGNATURE
SAMPLE = (DATA / "valid-do1-2025-jednorodzinna.xml").read_bytes()
FILED = datetime.fromisoformat("2025-02-03T10:00:00+01:00")


def run(raw: bytes, channel: str = "EPUAP", filed_at: datetime | None = FILED) -> Context:
    return run_stages(Context(raw=raw, channel=channel, filed_at=filed_at), ALL)


@pytest.mark.parametrize(
    "case", EXPECTED, ids=[f"{e['file']}-{e['channel']}-{e['filed_at'][:10]}" for e in EXPECTED]
)
def test_document(case):
    ctx = run((DATA / case["file"]).read_bytes(), case["channel"], datetime.fromisoformat(case["filed_at"]))
    assert sorted(f.code for f in ctx.findings) == sorted(case["codes"])
    assert ctx.outcome == case["status"]
    assert ctx.kind == case.get("kind", DECLARATION)
    if "fields" in case:
        assert sorted(f.field for f in ctx.findings) == sorted(case["fields"])
    if "severities" in case:
        assert [f.severity for f in ctx.findings] == case["severities"]
    for f in ctx.findings:
        assert f.message and f.message[0].isupper() and f.message.endswith(".")
    if case["status"] == "ACCEPTED" or "FORM_VERSION_EXPIRED" in case["codes"]:
        assert ctx.declaration is not None and not ctx.halted


def test_every_finding_code_of_these_stages_has_a_document():
    codes = {c for e in EXPECTED for c in e["codes"]}
    assert codes >= {
        "XML_MALFORMED", "FORM_UNKNOWN", "SCHEMA_INVALID", "FORM_VERSION_EXPIRED", "PESEL_INVALID",
        "NIP_INVALID", "REGON_INVALID", "PART_MISSING", "NO_RESIDENTS", "COMPOSTING_NOT_ALLOWED",
    }
    assert {e["file"] for e in EXPECTED} == {p.name for p in DATA.glob("*.xml")}


def test_built_documents_are_what_build_py_makes(tmp_path, monkeypatch):
    """The committed documents are exactly what the generator produces (no hand edits)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("forms_build", DATA / "build.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    for name, produce in build.DOCS.items():
        assert produce() == (DATA / name).read_bytes(), name


def test_signed_samples_pass_the_form_stages(shared_dir):
    signed = shared_dir / "spec" / "samples" / "signed"
    for path in sorted(signed.glob("*.xml")):
        meta = json.loads((signed / f"{path.name}.meta.json").read_text(encoding="utf-8"))
        ctx = run(path.read_bytes(), "EPUAP", datetime.fromisoformat(meta["dataNadania"]))
        assert ctx.findings == [], path.name
        assert ctx.declaration.filed_at == datetime.fromisoformat(meta["dataNadania"])
        assert ctx.declaration.channel == m.EPUAP


def test_declaration_is_read_only_from_the_signed_content():
    """Signature wrapping: the original tree says one thing, the verified content another."""
    before = run_stages(Context(raw=SAMPLE, channel="EPUAP", filed_at=FILED), FORM_STAGES_BEFORE_SIGNATURE)
    signed = copy.deepcopy(before.root)
    w = before.form.namespace
    # the attacker's unsigned edit lives in the original tree only
    before.root.find(f".//{{{w}}}OplataMiesieczna").text = "1.00"
    before.signed_root = signed
    run_stages(before, FORM_STAGES_AFTER_SIGNATURE)
    assert before.findings == []
    assert str(before.declaration.monthly_fee) == "174.50"

    # and an invalid signed content is rejected even if the original tree is valid
    ctx = run_stages(Context(raw=SAMPLE, channel="EPUAP", filed_at=FILED), FORM_STAGES_BEFORE_SIGNATURE)
    bad = copy.deepcopy(ctx.root)
    bad.find(f".//{{{w}}}OplataMiesieczna").text = "dużo"
    ctx.signed_root = bad
    run_stages(ctx, FORM_STAGES_AFTER_SIGNATURE)
    assert [f.code for f in ctx.findings] == ["SCHEMA_INVALID"]
    assert ctx.halted and ctx.declaration is None


def test_correspondence_is_kept_not_loaded():
    ctx = run((DATA / "form-unknown-pismo-ogolne.xml").read_bytes())
    assert ctx.kind == CORRESPONDENCE and ctx.halted
    assert ctx.root is not None and ctx.form is None and ctx.declaration is None
    assert ctx.timings.keys() == {"parse", "identify"}


def test_without_filing_time_no_version_finding():
    ctx = run((DATA / "form-version-expired-do1-2023.xml").read_bytes(), filed_at=None)
    assert ctx.findings == []
    assert ctx.declaration.form == "DO-1/2023"


def test_checks_alone_for_a_paper_declaration():
    """The scan path builds the model itself and runs only the checks."""
    ctx = run(SAMPLE)
    paper = dataclasses.replace(ctx.declaration, form="DO-1/2023", channel=m.PAPER)
    c = Context(raw=b"", channel=m.PAPER, filed_at=datetime.fromisoformat("2025-01-20T00:00:00+01:00"))
    c.declaration = paper
    declaration_checks(c)
    assert [(f.code, f.severity) for f in c.findings] == [("FORM_VERSION_EXPIRED", "warning")]
    assert c.outcome == "NEEDS_REVIEW"

    for form, code in (("DO-1/2019", "FORM_VERSION_EXPIRED"), ("ZW-2/2025", "FORM_UNKNOWN")):
        c = Context(raw=b"", channel=m.PAPER, filed_at=FILED)
        c.declaration = dataclasses.replace(paper, form=form)
        declaration_checks(c)
        assert [f.code for f in c.findings] == [code]


def test_all_findings_are_collected_across_checks():
    root = etree.fromstring(SAMPLE)
    w = root.nsmap["wnio"]
    root.find(".//{http://crd.gov.pl/xml/schematy/osoba/2009/11/16/}PESEL").text = "44051401350"
    root.find(f".//{{{w}}}RodzajNieruchomosci").text = "MIESZANA"  # composting on mixed, no containers
    ctx = run(etree.tostring(root, xml_declaration=True, encoding="UTF-8"),
              filed_at=datetime.fromisoformat("2024-12-30T10:00:00+01:00"))
    assert sorted(f.code for f in ctx.findings) == [
        "COMPOSTING_NOT_ALLOWED", "FORM_VERSION_EXPIRED", "PART_MISSING", "PESEL_INVALID",
    ]
    assert not ctx.halted


def test_stages_without_a_form_do_not_crash():
    ctx = Context(raw=b"", channel="EPUAP", filed_at=FILED)
    validate(ctx)
    assert [f.code for f in ctx.findings] == ["FORM_UNKNOWN"] and ctx.halted
    ctx = Context(raw=b"", channel="EPUAP", filed_at=FILED)
    map_declaration(ctx)
    assert [f.code for f in ctx.findings] == ["FORM_UNKNOWN"]
    ctx = Context(raw=b"", channel="EPUAP", filed_at=FILED)
    declaration_checks(ctx)
    assert ctx.findings == []
