"""Issue #20, "what is loaded is what was signed": a processing instruction (kept by
canonicalisation, so signed) or a comment inside a value must not change what is read.
Every value of the e-form (DO-1/2023 and 2025), of the scan export and of both Profil
Zaufany identity formats is split by one, and what is loaded must equal what the unsplit
document loads — the element's whole string value, as the schema check sees it.
Through the mappers, the whole pipeline (signed by xmlsec1), ``check`` and ``run --once``."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from lxml import etree

from rules.ruleset import load_ruleset
from tests.clitools import run_cli
from tests.conftest import epuap_env, epuap_section
from tests.filings import declarations_by_file, file_document
from tests.sigtools import xmlsig
from tests.sigtools.fixtures import FILED_AT, SIGNED_AT
from tests.sigtools.pki import ALICJA, TestPKI
from worker.domain.model import EPUAP, PAPER
from worker.forms.registry import DEFAULT_REGISTRY
from worker.forms.validation import validate_document
from worker.pipeline import ProcessingSettings
from worker.processing import analyse
from worker.scans.export import read_export
from worker.scans.mapper import map_scan

DATA = Path(__file__).parent / "data"
FORMS = DATA / "forms"
SCAN = DATA / "scans" / "skan-2025-02-03-0001-0007.xml"
FORM_FILES = [
    "valid-do1-2023-jednorodzinna.xml",
    "valid-do1-2025-jednorodzinna.xml",
    "valid-do1-2025-instytucja-wielolokalowa.xml",
    "valid-do1-2025-z-zalacznikiem.xml",
    "composting-mieszana.xml",
]
MARKERS = {"pi": lambda: etree.ProcessingInstruction("x", "y"), "comment": lambda: etree.Comment(" c ")}


def split_values(root, marker: str, *, within=None) -> int:
    """Put a processing instruction (or a comment) into the middle of every value (every
    element with text and no child element) under ``within`` (default: the whole tree),
    before its first character for one-character values. Returns how many were split."""
    count = 0
    for el in list((within if within is not None else root).iter(etree.Element)):
        if len(el) or not (el.text or "").strip():
            continue
        text = el.text
        core = text.strip()
        at = text.index(core) + len(core) // 2
        el.text = text[:at]
        node = MARKERS[marker]()
        node.tail = text[at:]
        el.insert(0, node)
        count += 1
    return count


def parse(raw: bytes):
    return etree.fromstring(raw, etree.XMLParser(resolve_entities=False, no_network=True))


def dump(root) -> bytes:
    return etree.tostring(root.getroottree(), xml_declaration=True, encoding="UTF-8")


def declaration_of(raw: bytes):
    root = parse(raw)
    spec = DEFAULT_REGISTRY.identify(root)
    assert spec is not None
    assert validate_document(root, spec) == []
    return spec.map(root)


@pytest.mark.parametrize("marker", sorted(MARKERS))
@pytest.mark.parametrize("name", FORM_FILES)
def test_every_e_form_value_split_maps_as_the_whole(name, marker):
    raw = (FORMS / name).read_bytes()
    root = parse(raw)
    assert split_values(root, marker) > 20
    split = dump(root)
    assert b"<?x y?>" in split or b"<!-- c -->" in split
    # libxml2's schema check sees each whole value (the split one is valid as it stands)
    assert declaration_of(split) == declaration_of(raw)


@pytest.mark.parametrize("marker", sorted(MARKERS))
def test_every_scan_value_split_maps_as_the_whole(marker):
    raw = SCAN.read_bytes()
    root = parse(raw)
    assert split_values(root, marker) > 20  # every Pole and the header's values
    split_root = parse(dump(root))
    whole, halves = read_export(parse(raw)), read_export(split_root)
    assert halves == whole
    assert map_scan(halves.fields, halves.header.form) == map_scan(whole.fields, whole.header.form)
    settings = ProcessingSettings(ruleset=load_ruleset())
    a, b = (analyse(r, channel=PAPER, filed_at=None, settings=settings) for r in (raw, dump(root)))
    assert (b.declaration, b.outcome, [f.code for f in b.findings], b.computed_fee) == (
        a.declaration, a.outcome, [f.code for f in a.findings], a.computed_fee,
    )


def signed(pki: TestPKI, document: bytes, identity: str) -> bytes:
    return xmlsig.sign(document, xmlsig.pz_signature(pki.seal, SIGNED_AT, identity), pki.seal)


def split_identity(identity: str, marker: str) -> str:
    root = etree.fromstring(identity)
    assert split_values(root, marker) >= 3
    return etree.tostring(root, encoding="unicode")


@pytest.mark.parametrize("marker", sorted(MARKERS))
@pytest.mark.parametrize("identity", ["EPSignature", "PodpisZP"])
def test_signed_split_declaration_and_identity_load_as_the_whole(pki, trust, identity, marker):
    make = xmlsig.ep_signature if identity == "EPSignature" else xmlsig.podpis_zp
    honest = xmlsig.declaration(ALICJA).encode()
    root = parse(honest)
    content = root.find("{*}TrescDokumentu")
    assert split_values(root, marker, within=content) > 20
    whole = analyse(signed(pki, honest, make(ALICJA)), channel=EPUAP, filed_at=FILED_AT,
                    settings=ProcessingSettings(ruleset=load_ruleset(), trust=trust))
    halves = analyse(signed(pki, dump(root), split_identity(make(ALICJA), marker)), channel=EPUAP, filed_at=FILED_AT,
                     settings=ProcessingSettings(ruleset=load_ruleset(), trust=trust))
    assert whole.outcome == "ACCEPTED" and whole.signature.status == "VALID"
    assert halves.declaration == whole.declaration
    assert (halves.outcome, [f.code for f in halves.findings], halves.computed_fee) == (whole.outcome, [], whole.computed_fee)
    assert (halves.signature.kind, halves.signature.status) == ("TRUSTED_PROFILE", "VALID")
    assert (halves.signature.signer_name, halves.signature.signer_pesel) == ("Alicja Wróblewska", ALICJA.pesel)


# --- through check and run --once -----------------------------------------------------------

MAILBOX = "/czystyregion/deklaracje"
FILED = datetime(2025, 3, 10, 9, 5, tzinfo=UTC)


def issue_documents(pki: TestPKI) -> dict[str, bytes]:
    """The issue's two cases and a declaration with every value split, each signed."""
    honest = xmlsig.declaration(ALICJA)  # 2 residents, 76.00
    residents = honest.replace("<wnio:LiczbaMieszkancow>2</wnio:LiczbaMieszkancow>", "<wnio:LiczbaMieszkancow>2<?x y?>0</wnio:LiczbaMieszkancow>")
    fee = honest.replace("<wnio:OplataMiesieczna>76.00</wnio:OplataMiesieczna>", "<wnio:OplataMiesieczna>7<?x y?>6.00</wnio:OplataMiesieczna>")
    assert residents != honest and fee != honest
    root = parse(honest.encode())
    split_values(root, "pi", within=root.find("{*}TrescDokumentu"))
    return {
        "honest": signed(pki, honest.encode(), xmlsig.ep_signature(ALICJA)),
        "split-residents": signed(pki, residents.encode(), xmlsig.ep_signature(ALICJA)),
        "split-fee": signed(pki, fee.encode(), xmlsig.ep_signature(ALICJA)),
        "split-everything": signed(pki, dump(root), split_identity(xmlsig.podpis_zp(ALICJA), "comment")),
    }


def test_split_values_through_check_and_run_once(write_config, keys, epuap_double, trust_files, pki, db_url, tmp_path):
    anchors, seal = trust_files
    docs = issue_documents(pki)
    server = epuap_double(mailboxes=[MAILBOX])
    cfg = write_config(
        epuap=epuap_section(server, keys, "czystyregion/deklaracje"),
        signatures={"trust_anchors": anchors, "trusted_profile_seals": [seal]},
        processing={"workers": 1},
    )
    env = epuap_env(keys)
    checked = {}
    for name, raw in docs.items():
        path = tmp_path / f"{name}.xml"
        path.write_bytes(raw)
        r = run_cli(cfg, "check", str(path), "--json", "--filed-at", FILED.isoformat(), env=env)
        assert r.returncode == 0, r.stderr
        (checked[name],) = json.loads(r.stdout)
        # each document alone in its mailbox pass: the others are other payers' filings later on
    honest = checked["honest"]
    assert (honest["status"], honest["declared_fee"], honest["findings"]) == ("ACCEPTED", "76.00", [])
    # the fee split by a processing instruction is the signed 76.00, not 7.00
    assert {k: checked["split-fee"][k] for k in ("status", "declared_fee", "computed_fee", "findings", "signer")} == \
        {k: honest[k] for k in ("status", "declared_fee", "computed_fee", "findings", "signer")}
    assert {k: checked["split-everything"][k] for k in ("status", "declared_fee", "computed_fee", "findings", "signer")} == \
        {k: honest[k] for k in ("status", "declared_fee", "computed_fee", "findings", "signer")}
    # 20 residents were signed and validated: the declared 76.00 is not their fee
    assert checked["split-residents"]["status"] != "ACCEPTED"
    assert checked["split-residents"]["computed_fee"] != honest["computed_fee"]

    for name, raw in docs.items():
        file_document(server, MAILBOX, name, raw, FILED)
        r = run_cli(cfg, "run", "--once", env=env)
        assert r.returncode == 0, r.stdout[-2000:]
    rows = declarations_by_file(db_url)
    assert rows["split-residents"]["residents"] == 20
    for name in ("honest", "split-fee", "split-everything"):
        assert rows[name]["residents"] == 2, name
        assert f"{rows[name]['declared_fee']:.2f}" == "76.00", name
    assert rows["split-residents"]["status"] != "ACCEPTED"
    # the same declaration filed again (the split ones are new signatures of the same content):
    # each is judged like the honest one, none loads another value
    assert {r["computed_fee"] for n, r in rows.items() if n != "split-residents"} == {rows["honest"]["computed_fee"]}


def test_pi_outside_values_is_harmless(pki, trust):
    # processing instructions between elements (not in a value) change nothing either
    honest = xmlsig.declaration(ALICJA)
    noisy = honest.replace("<wnio:Nieruchomosc>", "<?x y?><!-- c --><wnio:Nieruchomosc><?z?>")
    settings = ProcessingSettings(ruleset=load_ruleset(), trust=trust)
    a = analyse(signed(pki, honest.encode(), xmlsig.ep_signature(ALICJA)), channel=EPUAP, filed_at=FILED_AT, settings=settings)
    b = analyse(signed(pki, noisy.encode(), xmlsig.ep_signature(ALICJA)), channel=EPUAP, filed_at=FILED_AT, settings=settings)
    assert replace(b.declaration) == a.declaration and b.outcome == a.outcome == "ACCEPTED"
