"""WS-Security of ePUAP messages: our signing checked by independent verifiers, and the
verification's refusals (tampering, wrong or unpinned certificate, SHA-1, wrapping, expiry).
Also the double's refusal of unsigned requests over real HTTP, and its WSDL."""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
import zeep
from lxml import etree

from adapters.epuap import devkeys, double, wssec
from adapters.epuap.client import EpuapWsse
from adapters.epuap.errors import EpuapSignatureError, EpuapStatusError
from schemas.epuap import PULL_WSDL

NS = {"s": wssec.SOAP11, "wsse": wssec.WSSE, "wsu": wssec.WSU, "ds": wssec.DS}


def request_envelope(skrot: str = "qZk+NkcGgWq6PiVxeFDCbJzQ2J0=") -> etree._Element:
    client = zeep.Client(str(PULL_WSDL))
    service = client.create_service("{http://ws.epuap.gov.pl/pull/}pull", "http://127.0.0.1:9/x")
    return client.create_message(
        service, "potwierdzOdebranie", podmiot="czystyregion", nazwaSkrytki="deklaracje",
        adresSkrytki="/czystyregion/deklaracje", skrot=skrot,
    )


def signed(keys, **kw) -> bytes:
    return etree.tostring(wssec.sign_envelope(request_envelope(), keys.system_identity(), **kw))


def test_devkeys_are_idempotent_and_the_system_key_needs_its_password(keys):
    before = keys.system_certificate.read_bytes(), keys.double_key.read_bytes()
    again = devkeys.ensure(keys.directory)
    assert (again.system_certificate.read_bytes(), again.double_key.read_bytes()) == before
    with pytest.raises((TypeError, ValueError)):
        wssec.load_identity(keys.system_certificate, keys.system_key, None)
    with pytest.raises(ValueError):
        wssec.load_identity(keys.system_certificate, keys.system_key, "wrong password")
    with pytest.raises(ValueError, match="does not belong"):
        wssec.load_identity(keys.double_certificate, keys.system_key, keys.system_key_password)


def test_layout_token_before_signature_sha256_body_and_timestamp_signed(keys):
    env = etree.fromstring(signed(keys))
    security = env.find("s:Header/wsse:Security", NS)
    children = [etree.QName(c).localname for c in security]
    assert children == ["Timestamp", "BinarySecurityToken", "Signature"]
    assert security.get(f"{{{wssec.SOAP11}}}mustUnderstand") == "1"
    info = security.find("ds:Signature/ds:SignedInfo", NS)
    assert info.find("ds:CanonicalizationMethod", NS).get("Algorithm") == wssec.EXC_C14N
    assert info.find("ds:SignatureMethod", NS).get("Algorithm") == wssec.RSA_SHA256
    refs = info.findall("ds:Reference", NS)
    body_id = env.find("s:Body", NS).get(f"{{{wssec.WSU}}}Id")
    ts_id = security.find("wsu:Timestamp", NS).get(f"{{{wssec.WSU}}}Id")
    assert [r.get("URI") for r in refs] == [f"#{body_id}", f"#{ts_id}"]
    assert {r.find("ds:DigestMethod", NS).get("Algorithm") for r in refs} == {wssec.SHA256}
    assert b"sha1" not in etree.tostring(info).lower()
    token_ref = security.find("ds:Signature/ds:KeyInfo/wsse:SecurityTokenReference/wsse:Reference", NS)
    token = security.find("wsse:BinarySecurityToken", NS)
    assert token_ref.get("URI") == "#" + token.get(f"{{{wssec.WSU}}}Id")
    assert base64.b64decode(token.text) == keys.system_identity().certificate_der


def test_without_timestamp_only_the_body_is_signed(keys):
    env = etree.fromstring(signed(keys, timestamp_ttl_s=None))
    assert env.find("s:Header/wsse:Security/wsu:Timestamp", NS) is None
    result = wssec.verify_envelope(env, wssec.load_certificate(keys.system_certificate))
    assert len(result.references) == 1 and not result.timestamp_signed


@pytest.mark.skipif(shutil.which("xmlsec1") is None, reason="the xmlsec1 command-line tool is not installed")
def test_xmlsec1_verifies_our_signature_and_refuses_another_key(keys, tmp_path):
    path = tmp_path / "request.xml"
    path.write_bytes(signed(keys))
    args = ["xmlsec1", "--verify", "--id-attr:Id", "Body", "--id-attr:Id", "Timestamp"]
    ok = subprocess.run([*args, "--pubkey-cert-pem", str(keys.system_certificate), str(path)], capture_output=True)
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run([*args, "--pubkey-cert-pem", str(keys.double_certificate), str(path)], capture_output=True)
    assert bad.returncode != 0


def test_verification_refuses_tampering_and_other_certificates(keys, other_keys):
    raw = signed(keys)
    cert = wssec.load_certificate(keys.system_certificate)
    assert wssec.verify_envelope(etree.fromstring(raw), cert).timestamp_signed
    with pytest.raises(wssec.WsSecurityError, match="Digest mismatch"):
        wssec.verify_envelope(etree.fromstring(raw.replace(b"<skrot>qZk", b"<skrot>QZk")), cert)
    with pytest.raises(wssec.WsSecurityError):
        wssec.verify_envelope(etree.fromstring(raw), wssec.load_certificate(other_keys.system_certificate))


def test_verification_refuses_a_signature_that_does_not_cover_the_body(keys):
    """Wrapping: the signed Body moved into the header, a different Body in its place."""
    env = etree.fromstring(signed(keys))
    body = env.find("s:Body", NS)
    env.find("s:Header", NS).append(body)  # the signed original, now out of the way
    forged = etree.SubElement(env, f"{{{wssec.SOAP11}}}Body")
    forged.append(etree.fromstring(etree.tostring(body[0]).replace(b"qZk", b"AAA")))
    cert = wssec.load_certificate(keys.system_certificate)
    with pytest.raises(wssec.WsSecurityError, match="no wsu:Id"):
        wssec.verify_envelope(env, cert)
    forged.set(f"{{{wssec.WSU}}}Id", body.get(f"{{{wssec.WSU}}}Id"))  # same Id twice: ambiguous
    with pytest.raises(wssec.WsSecurityError, match="Ambiguous"):
        wssec.verify_envelope(env, cert)


def test_verification_refuses_sha1_digests(keys):
    env = etree.fromstring(signed(keys, timestamp_ttl_s=None))
    ref = env.find("s:Header/wsse:Security/ds:Signature/ds:SignedInfo/ds:Reference", NS)
    body = env.find("s:Body", NS)
    ref.find("ds:DigestMethod", NS).set("Algorithm", "http://www.w3.org/2000/09/xmldsig#sha1")
    c14n = etree.tostring(body, method="c14n", exclusive=True)
    ref.find("ds:DigestValue", NS).text = base64.b64encode(hashlib.sha1(c14n).digest()).decode()
    # re-sign the SignedInfo so only the SHA-1 digest is "wrong"
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    info = env.find("s:Header/wsse:Security/ds:Signature/ds:SignedInfo", NS)
    value = keys.system_identity().key.sign(etree.tostring(info, method="c14n", exclusive=True), padding.PKCS1v15(), hashes.SHA256())
    env.find("s:Header/wsse:Security/ds:Signature/ds:SignatureValue", NS).text = base64.b64encode(value).decode()
    with pytest.raises(wssec.WsSecurityError, match="SHA1"):
        wssec.verify_envelope(env, wssec.load_certificate(keys.system_certificate))


def test_expired_signed_timestamp_is_refused(keys):
    old = datetime.now(UTC) - timedelta(hours=2)
    env = etree.fromstring(signed(keys, now=old, timestamp_ttl_s=60))
    with pytest.raises(wssec.WsSecurityError, match="expired"):
        wssec.verify_envelope(env, wssec.load_certificate(keys.system_certificate))


def _response(kod: int, komunikat: str) -> etree._Element:
    return etree.fromstring(
        f'<s:Envelope xmlns:s="{wssec.SOAP11}"><s:Body><p140:OdpowiedzPullPotwierdz xmlns:p140="http://wsdl.epuap.gov.pl/obiekty/">'
        f"<status><kod>{kod}</kod><komunikat>{komunikat}</komunikat></status></p140:OdpowiedzPullPotwierdz></s:Body></s:Envelope>".encode()
    )


def test_plugin_reports_an_unsigned_error_status_as_that_status_and_an_unsigned_success_as_a_signature_error(keys):
    plugin = EpuapWsse(keys.system_identity(), wssec.load_certificate(keys.double_certificate))
    with pytest.raises(EpuapStatusError) as err:
        plugin.verify(_response(-7, "Brak uprawnień"))
    assert err.value.kod == -7 and not err.value.signed and "Brak uprawnień" in str(err.value)
    with pytest.raises(EpuapSignatureError):
        plugin.verify(_response(1, "OK"))
    fault = etree.fromstring(double.fault_envelope(12, "Awaria"))
    assert plugin.verify(fault) is fault  # a Fault passes through unverified: zeep raises it next


def test_plugin_accepts_a_response_signed_by_the_pinned_certificate_only(keys, other_keys):
    plugin = EpuapWsse(keys.system_identity(), wssec.load_certificate(keys.double_certificate))
    good = etree.fromstring(etree.tostring(wssec.sign_envelope(_response(1, "OK"), keys.double_identity())))
    assert plugin.verify(good) is good and plugin.last_verified.timestamp_signed
    # signed by a certificate carried in the message, but not the pinned one
    forged = etree.fromstring(etree.tostring(wssec.sign_envelope(_response(1, "OK"), other_keys.double_identity())))
    with pytest.raises(EpuapSignatureError):
        plugin.verify(forged)


@pytest.fixture
def server(keys):
    srv = double.serve("127.0.0.1", 0, None, keys, mailboxes=["/czystyregion/deklaracje"])
    yield srv
    srv.shutdown()


def _fault_of(response: requests.Response) -> tuple[str, str]:
    env = etree.fromstring(response.content)
    wyjatek = env.find("s:Body/s:Fault/detail/{http://wsdl.epuap.gov.pl/obiekty/}Wyjatek", NS)
    return wyjatek.findtext("kod"), wyjatek.findtext("komunikat")


def test_double_refuses_unsigned_and_unknown_certificate_requests_with_a_fault(server, keys, other_keys):
    unsigned = etree.tostring(request_envelope())
    r = requests.post(server.url, data=unsigned, headers={"Content-Type": "text/xml"}, timeout=10)
    assert r.status_code == 500
    kod, komunikat = _fault_of(r)
    assert kod == "-3" and "WS-Security" in komunikat
    foreign = etree.tostring(wssec.sign_envelope(request_envelope(), other_keys.system_identity()))
    r = requests.post(server.url, data=foreign, headers={"Content-Type": "text/xml"}, timeout=10)
    assert r.status_code == 500 and "unknown client certificate" in _fault_of(r)[1]
    good = etree.tostring(wssec.sign_envelope(request_envelope(), keys.system_identity()))
    r = requests.post(server.url, data=good, headers={"Content-Type": "text/xml"}, timeout=10)
    assert r.status_code == 200  # an empty queue: a signed status answer
    env = etree.fromstring(r.content)
    assert wssec.verify_envelope(env, wssec.load_certificate(keys.double_certificate))
    assert [rec.accepted for rec in server.requests] == [False, False, True]


def test_double_refuses_a_request_with_qualified_children(server, keys):
    env = request_envelope()
    payload = env.find("s:Body", NS)[0]
    for child in payload:
        child.tag = f"{{http://wsdl.epuap.gov.pl/obiekty/}}{child.tag}"
    raw = etree.tostring(wssec.sign_envelope(env, keys.system_identity()))
    r = requests.post(server.url, data=raw, headers={"Content-Type": "text/xml"}, timeout=10)
    assert r.status_code == 500 and "schematem" in _fault_of(r)[1]


def test_double_serves_its_wsdl_and_zeep_can_use_it(server, keys):
    r = requests.get(server.url + "?wsdl", timeout=10)
    assert r.status_code == 200 and server.url.encode() in r.content
    client = zeep.Client(server.url + "?wsdl")
    ops = set(client.service._binding._operations)
    assert ops == {"oczekujaceDokumenty", "pobierzNastepny", "potwierdzOdebranie"}


def test_fault_spec_parsing():
    assert double.Faults.parse_spec("drop:pobierzNastepny:2") == double.FaultRule("drop", "pobierzNastepny", 2)
    assert double.Faults.parse_spec("http500::*") == double.FaultRule("http500", None, -1)
    with pytest.raises(ValueError):
        double.Faults().add("nonsense")
    with pytest.raises(ValueError):
        double.Faults().add("confirm-lost", "pobierzNastepny")


def test_double_cli_refuses_bad_options_with_exit_2(tmp_path):
    assert double.main(["--keys", str(tmp_path / "k"), "--load", "/a/b=" + str(tmp_path / "missing"), "--port", "0"]) == 2
    with pytest.raises(SystemExit):
        double.main(["--latency-ms", "abc"])


def test_queue_folder_layout_and_sidecar_order(tmp_path, keys):
    box = tmp_path / "czystyregion" / "deklaracje"
    box.mkdir(parents=True)
    (box / "b.xml").write_bytes(b"<b/>")
    (box / "b.xml.meta.json").write_text('{"dataNadania": "2025-01-01T10:00:00+01:00"}')
    (box / "a.xml").write_bytes(b"<a/>")
    (box / "a.xml.meta.json").write_text('{"dataNadania": "2025-01-02T10:00:00+01:00"}')
    srv = double.serve("127.0.0.1", 0, tmp_path, keys)
    try:
        assert [d.name for d in srv.pending("/czystyregion/deklaracje")] == ["b.xml", "a.xml"]
    finally:
        srv.shutdown()


def test_pull_wsdl_matches_the_published_operations(shared_dir):
    ours = etree.parse(str(PULL_WSDL))
    ref = etree.parse(str(shared_dir / "reference/epuap/pull.wsdl"))
    w = {"w": "http://schemas.xmlsoap.org/wsdl/", "soap": "http://schemas.xmlsoap.org/wsdl/soap/"}

    def shape(doc):
        return (
            doc.getroot().get("targetNamespace"),
            sorted((m.get("name"), m.find("w:part", w).get("element")) for m in doc.findall("w:message", w)),
            sorted((o.get("name"), o.find("soap:operation", w).get("soapAction")) for o in doc.findall("w:binding/w:operation", w)),
            [(s.get("name"), s.find("w:port", w).get("name")) for s in doc.findall("w:service", w)],
        )

    assert shape(ours) == shape(ref)


@pytest.mark.slow
def test_double_command_line_serves_the_samples_and_stops_on_sigterm(tmp_path, shared_dir):
    import signal
    import socket
    import sys

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    root = Path(__file__).resolve().parent.parent
    samples = shared_dir / "spec/samples/signed"
    proc = subprocess.Popen(
        [sys.executable, "-m", "adapters.epuap.double", "--port", str(port), "--keys", str(tmp_path / "keys"),
         "--load", f"/czystyregion/deklaracje={samples}", "--mailbox", "/czystyregion/inne"],
        cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        first = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}/pk_external_ws/services/pull" in first
        lines = [proc.stdout.readline() for _ in range(4)]
        assert any("/czystyregion/deklaracje: 6 document(s)" in line for line in lines)
        assert any("/czystyregion/inne: 0 document(s)" in line for line in lines)
        keys = devkeys.ensure(tmp_path / "keys")  # the files the double created, reused as they are
        env = wssec.sign_envelope(request_envelope(), keys.system_identity())
        r = requests.post(f"http://127.0.0.1:{port}/pk_external_ws/services/pull", data=etree.tostring(env), timeout=10)
        assert r.status_code == 200
        wssec.verify_envelope(etree.fromstring(r.content), wssec.load_certificate(keys.double_certificate))
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
