"""Signature time-stamps made by an independent implementation: ``openssl ts`` (RFC 3161)
answers a query for the digest of a signature's canonical ``ds:SignatureValue``, and the
token is added to the signature as ``xades:SignatureTimeStamp`` (unsigned properties, so
the signature itself still verifies). The time in the token is the time it is made."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

from lxml import etree

from tests.sigtools.pki import Issued

DS = "http://www.w3.org/2000/09/xmldsig#"
XADES = "http://uri.etsi.org/01903/v1.3.2#"
C14N_10 = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"

_CONFIG = """
[ tsa ]
default_tsa = tsa_config1
[ tsa_config1 ]
serial = {serial}
crypto_device = builtin
signer_digest = sha256
default_policy = 1.2.3.4.1
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = yes
tsa_name = no
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""


def token_for(data: bytes, tsa: Issued, workdir: Path) -> bytes:
    """A DER time-stamp token (CMS SignedData with TSTInfo) over SHA-256(``data``)."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "data.bin").write_bytes(data)
    (workdir / "tsa.pem").write_bytes(tsa.cert_pem)
    (workdir / "tsa.key").write_bytes(tsa.key_pem)
    (workdir / "serial").write_text("01\n")
    (workdir / "tsa.cnf").write_text(_CONFIG.format(serial=workdir / "serial"))
    run = lambda *a: subprocess.run(["openssl", "ts", *a], check=True, capture_output=True)  # noqa: E731
    run("-query", "-data", str(workdir / "data.bin"), "-sha256", "-cert", "-no_nonce", "-out", str(workdir / "q.tsq"))
    run(
        "-reply", "-config", str(workdir / "tsa.cnf"), "-queryfile", str(workdir / "q.tsq"),
        "-signer", str(workdir / "tsa.pem"), "-inkey", str(workdir / "tsa.key"), "-token_out", "-out", str(workdir / "token.der"),
    )  # fmt: skip
    return (workdir / "token.der").read_bytes()


def add_signature_timestamp(raw: bytes, tsa: Issued, workdir: Path, *, index: int = 0, token: bytes | None = None) -> bytes:
    """``raw`` with a SignatureTimeStamp on its ``index``-th enveloped signature (a token
    made by ``tsa`` for that signature's value, or ``token`` as given)."""
    root = etree.fromstring(raw)
    sig = [s for s in root if s.tag == f"{{{DS}}}Signature"][index]
    value = sig.find(f"{{{DS}}}SignatureValue")
    if token is None:
        token = token_for(etree.tostring(value, method="c14n", exclusive=False, with_comments=False), tsa, workdir)
    qp = sig.find(f".//{{{XADES}}}QualifyingProperties")
    up = etree.SubElement(qp, f"{{{XADES}}}UnsignedProperties")
    usp = etree.SubElement(up, f"{{{XADES}}}UnsignedSignatureProperties")
    ts = etree.SubElement(usp, f"{{{XADES}}}SignatureTimeStamp")
    etree.SubElement(ts, f"{{{DS}}}CanonicalizationMethod", Algorithm=C14N_10)
    etree.SubElement(ts, f"{{{XADES}}}EncapsulatedTimeStamp").text = base64.b64encode(token).decode("ascii")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")
