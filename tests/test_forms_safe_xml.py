"""Safe parsing: hostile bytes are refused with XML_MALFORMED, never expanded, never a traceback."""

from __future__ import annotations

import http.server
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from worker.forms.safe_xml import DocumentTooLarge, XmlRefused, parse_untrusted, safe_parser
from worker.forms.stages import parse
from worker.pipeline import DECLARATION, UNREADABLE, Context, ProcessingSettings

DATA = Path(__file__).parent / "data" / "forms"
SAMPLE = (DATA / "valid-do1-2025-jednorodzinna.xml").read_bytes()
FILED = datetime(2025, 2, 3, 10, tzinfo=UTC)


def run_parse(raw: bytes, max_bytes: int = 10 * 1024 * 1024) -> Context:
    ctx = Context(raw=raw, channel="EPUAP", filed_at=FILED, settings=ProcessingSettings(max_document_bytes=max_bytes))
    parse(ctx)
    return ctx


def test_sample_parses_with_and_without_bom():
    for raw in (SAMPLE, b"\xef\xbb\xbf" + SAMPLE):
        ctx = run_parse(raw)
        assert not ctx.halted and ctx.findings == []
        assert ctx.kind == DECLARATION
        assert etree.QName(ctx.root).localname == "Dokument"


ATTACKS = ["cyclic.xml", "dtd.xml", "external.xml", "external_file.xml", "xmlbomb.xml", "xmlbomb2.xml"]


@pytest.mark.parametrize("name", ATTACKS)
def test_reference_attack_files_are_refused(shared_dir, name):
    raw = (shared_dir / "reference" / "xml-attacks" / name).read_bytes()
    ctx = run_parse(raw)
    assert ctx.halted
    assert ctx.kind == UNREADABLE
    assert [f.code for f in ctx.findings] == ["XML_MALFORMED"]
    assert ctx.root is None
    assert "DTD" in ctx.findings[0].message


def test_all_reference_attack_files_are_covered(shared_dir):
    assert sorted(p.name for p in (shared_dir / "reference" / "xml-attacks").iterdir()) == sorted(ATTACKS)


def test_external_file_entity_is_never_read(tmp_path):
    secret = tmp_path / "secret.xml"
    secret.write_text("<s>TOP-SECRET-MARKER</s>")
    raw = f'<!DOCTYPE r [<!ENTITY ee SYSTEM "{secret.as_uri()}">]><r>&ee;</r>'.encode()
    with pytest.raises(XmlRefused) as exc:
        parse_untrusted(raw, max_bytes=10_000)
    assert exc.value.reason == "dtd"
    assert "TOP-SECRET-MARKER" not in exc.value.message
    # the parser itself (second line of defence) does not expand it either
    tree = etree.fromstring(raw, safe_parser())
    assert b"TOP-SECRET-MARKER" not in etree.tostring(tree)


class _Recorder(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self):  # noqa: N802 (http.server's naming)
        _Recorder.hits.append(self.path)
        body = b'<!ENTITY x "y">'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def loopback_server():
    _Recorder.hits = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_no_network_for_external_entities_or_dtds(loopback_server):
    docs = [
        f'<!DOCTYPE r [<!ENTITY ee SYSTEM "{loopback_server}/entity.xml">]><r>&ee;</r>',
        f'<!DOCTYPE r SYSTEM "{loopback_server}/external.dtd"><r/>',
        f'<!DOCTYPE r [<!ENTITY % p SYSTEM "{loopback_server}/param.dtd"> %p;]><r/>',
    ]
    for doc in docs:
        ctx = run_parse(doc.encode())
        assert [f.code for f in ctx.findings] == ["XML_MALFORMED"]
        # the lower layer alone must not fetch anything either
        try:
            etree.fromstring(doc.encode(), safe_parser())
        except etree.XMLSyntaxError:
            pass
    assert _Recorder.hits == []


@pytest.mark.parametrize(
    "raw, reason",
    [
        (b"", "empty"),
        (b"   \n\t ", "empty"),
        (b"\xef\xbb\xbf", "empty"),
        (b"<a>\xc5</a>", "encoding"),
        (b"\xff\xfe<\x00a\x00/\x00>\x00", "encoding"),
        (b'<?xml version="1.0" encoding="ISO-8859-2"?><a/>', "encoding"),
        (b"<a><b></a>", "not_well_formed"),
        (b"<a>&nbsp;</a>", "not_well_formed"),
        (b"just text", "not_well_formed"),
        (b"<a/><b/>", "not_well_formed"),
        (b"<a>\x00</a>", "not_well_formed"),
        (b"<!-- c --><!DOCTYPE a><a/>", "dtd"),
        (b"<?xml version='1.0'?>\n<!doctype a><a/>", "dtd"),
        (b"<" + b"a>" * 300 + b"</a>" * 300, "not_well_formed"),  # deeper than libxml2's limit
    ],
)
def test_bad_bytes_are_refused(raw, reason):
    with pytest.raises(XmlRefused) as exc:
        parse_untrusted(raw, max_bytes=100_000)
    assert exc.value.reason == reason
    ctx = run_parse(raw)
    assert ctx.halted and ctx.kind == UNREADABLE
    assert [f.code for f in ctx.findings] == ["XML_MALFORMED"]
    assert ctx.findings[0].severity == "error"
    assert ctx.findings[0].message == exc.value.message


def test_harmless_constructs_are_kept():
    root = parse_untrusted(
        b'<?xml version="1.0" encoding="utf-8"?><?xml-stylesheet href="x.xsl"?>'
        b"<a><![CDATA[<!DOCTYPE x>]]>&amp;&#65;<!-- c --></a>",
        max_bytes=1000,
    )
    assert root.text == "<!DOCTYPE x>&A"
    assert root.getprevious() is not None  # the processing instruction stays (signatures cover it)


def test_size_limit_from_settings():
    limit = len(SAMPLE)
    assert run_parse(SAMPLE, max_bytes=limit).findings == []
    ctx = run_parse(SAMPLE, max_bytes=limit - 1)
    assert ctx.halted and ctx.kind == UNREADABLE
    assert [f.code for f in ctx.findings] == ["DOCUMENT_TOO_LARGE"]
    assert str(limit - 1) in ctx.findings[0].message
    with pytest.raises(DocumentTooLarge):
        parse_untrusted(SAMPLE, max_bytes=10)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_random_bytes_never_raise(raw):
    ctx = run_parse(raw)
    if ctx.halted:
        assert [f.code for f in ctx.findings] == ["XML_MALFORMED"]
    else:
        assert ctx.root is not None


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=len(SAMPLE) - 1), st.binary(min_size=1, max_size=4))
def test_mutated_sample_never_raises(pos, junk):
    raw = SAMPLE[:pos] + junk + SAMPLE[pos + len(junk) :]
    ctx = run_parse(raw)
    assert ctx.halted == (ctx.root is None)
    assert all(f.code == "XML_MALFORMED" for f in ctx.findings)
