"""The form registry: namespaces → forms, packaged schemas compiled once, new versions as data."""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from lxml import etree

import schemas
from worker.forms import FORM_STAGES_AFTER_SIGNATURE, FORM_STAGES_BEFORE_SIGNATURE, form_stages
from worker.forms.do1 import map_do1
from worker.forms.registry import DEFAULT_REGISTRY, DO1_2023, DO1_2025, FORMS, FormRegistry, FormSpec, schema_path
from worker.pipeline import Context, run_stages

DATA = Path(__file__).parent / "data" / "forms"
SAMPLE = DATA / "valid-do1-2025-jednorodzinna.xml"


def test_known_forms_and_windows():
    assert [s.form for s in FORMS] == ["DO-1/2023", "DO-1/2025"]
    assert DO1_2023.filed_from == date(2023, 1, 1) and DO1_2023.filed_until == date(2024, 12, 31)
    assert DO1_2025.filed_from == date(2025, 1, 1) and DO1_2025.filed_until is None
    assert DO1_2023.in_force_on(date(2024, 12, 31)) and not DO1_2023.in_force_on(date(2025, 1, 1))
    assert DO1_2025.in_force_on(date(2031, 5, 1)) and not DO1_2025.in_force_on(date(2024, 12, 31))


def test_lookup_by_namespace_form_and_code():
    assert DEFAULT_REGISTRY.by_namespace(DO1_2025.namespace) is DO1_2025
    assert DEFAULT_REGISTRY.by_form("DO-1/2023") is DO1_2023
    assert DEFAULT_REGISTRY.get("DO-1", "2025") is DO1_2025
    assert DEFAULT_REGISTRY.by_namespace("urn:other") is None
    assert DEFAULT_REGISTRY.by_form("DO-1/2019") is None
    assert len(DEFAULT_REGISTRY) == 2


def test_identify_by_root_namespace():
    root = etree.fromstring(SAMPLE.read_bytes())
    assert DEFAULT_REGISTRY.identify(root) is DO1_2025
    assert DEFAULT_REGISTRY.identify(etree.fromstring(b"<Pismo/>")) is None
    assert DEFAULT_REGISTRY.identify(etree.fromstring(b'<x:Dokument xmlns:x="urn:x"/>')) is None


def test_identify_looks_through_an_enveloping_signature():
    ds = "http://www.w3.org/2000/09/xmldsig#"
    sig = etree.Element(f"{{{ds}}}Signature")
    etree.SubElement(sig, f"{{{ds}}}SignedInfo")
    obj = etree.SubElement(sig, f"{{{ds}}}Object")
    obj.append(etree.fromstring(SAMPLE.read_bytes()))
    assert DEFAULT_REGISTRY.identify(sig) is DO1_2025
    obj.clear()
    etree.SubElement(obj, "{urn:x}Dokument")
    assert DEFAULT_REGISTRY.identify(sig) is None


def test_duplicates_refused():
    reg = FormRegistry([DO1_2025])
    with pytest.raises(ValueError):
        reg.register(DO1_2025)


def test_schemas_come_from_the_installed_package_and_match_the_union(shared_dir):
    package_dir = Path(schemas.__file__).resolve().parent
    for rel in ["forms/do1/DO1_2023.xsd", "forms/do1/DO1_2025.xsd"] + [
        f"forms/crd/{n}.xsd" for n in ("adres", "instytucja", "meta", "osoba", "struktura")
    ]:
        path = schema_path(rel)
        assert package_dir in path.parents
        assert path.read_bytes() == (shared_dir / "spec" / rel).read_bytes(), rel
    for spec in FORMS:
        assert spec.xsd_path().is_file()


def test_schema_compiled_once():
    assert DO1_2025.lxml_schema() is DO1_2025.lxml_schema()
    assert DO1_2023.xmlschema_schema() is DO1_2023.xmlschema_schema()
    assert DO1_2023.lxml_schema() is not DO1_2025.lxml_schema()


def test_lxml_validator_is_per_thread():
    import threading

    seen = []
    t = threading.Thread(target=lambda: seen.append((DO1_2025.lxml_schema(), DO1_2025.lxml_schema())))
    t.start()
    t.join()
    (first, second), = seen
    assert first is second
    assert first is not DO1_2025.lxml_schema()


def test_missing_schema_is_a_clear_error():
    with pytest.raises(FileNotFoundError):
        schema_path("forms/do1/DO1_1999.xsd")


def test_exported_stage_order():
    assert [s.name for s in FORM_STAGES_BEFORE_SIGNATURE] == ["parse", "identify"]
    assert [s.name for s in FORM_STAGES_AFTER_SIGNATURE] == ["validate", "map_declaration", "declaration_checks"]
    before, after = form_stages()
    assert before == FORM_STAGES_BEFORE_SIGNATURE and after == FORM_STAGES_AFTER_SIGNATURE


def test_a_new_form_version_is_data_and_a_mapper(tmp_path):
    """A hypothetical DO-1 2027 — its XSD, one FormSpec — runs through unchanged stages."""
    ns25 = DO1_2025.namespace
    ns27 = ns25.replace("DO1_2025", "DO1_2027")
    (tmp_path / "forms" / "do1").mkdir(parents=True)
    shutil.copytree(schema_path("forms/crd/adres.xsd").parent, tmp_path / "forms" / "crd")
    xsd27 = tmp_path / "forms" / "do1" / "DO1_2027.xsd"
    xsd27.write_bytes(DO1_2025.xsd_path().read_bytes().replace(ns25.encode(), ns27.encode()))
    do1_2027 = FormSpec(
        code="DO-1",
        version="2027",
        namespace=ns27,
        xsd=str(xsd27),
        mapper=map_do1,
        filed_from=date(2027, 1, 1),
    )
    registry = FormRegistry([*FORMS, do1_2027])
    raw = SAMPLE.read_bytes().replace(ns25.encode(), ns27.encode())
    filed = datetime(2027, 2, 1, 10, tzinfo=UTC)

    before, after = form_stages(registry)
    ctx = run_stages(Context(raw=raw, channel="EPUAP", filed_at=filed), before + after)
    assert ctx.findings == []
    assert ctx.form is do1_2027
    assert ctx.declaration.form == "DO-1/2027"
    assert ctx.declaration.monthly_fee == DO1_2025.map(etree.fromstring(SAMPLE.read_bytes())).monthly_fee

    # the default registry does not know it: correspondence, not a declaration
    ctx = run_stages(Context(raw=raw, channel="EPUAP", filed_at=filed), FORM_STAGES_BEFORE_SIGNATURE)
    assert [f.code for f in ctx.findings] == ["FORM_UNKNOWN"]
