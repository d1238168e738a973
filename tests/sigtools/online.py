"""An online test PKI: a real HTTP server on 127.0.0.1 answering OCSP requests, serving
CRLs and trusted lists, and certificates that name it (Authority Information Access, CRL
Distribution Points). OCSP answers and CRLs are made by ``cryptography``'s builders at the
moment of the request (``thisUpdate`` now), independently of the worker's reading of them
with pyhanko-certvalidator.

* the root signs a CRL (``/crl/root.crl``) covering its CAs (which name no OCSP responder:
  a CA's status is always decided by a CRL);
* ``qca`` (granted on the test trusted list) answers OCSP (``/ocsp/qca``) through a
  delegated responder (``id-kp-OCSPSigning`` with ``id-pkix-ocsp-nocheck``) and publishes
  ``/crl/qca.crl``; ``withdrawn_ca`` (withdrawn from the list on :data:`WITHDRAWN_AT`) the same;
* persons: ``good``, ``revoked_before`` (revoked before the filing time :data:`FILED`),
  ``revoked_after`` (revoked after it), ``crl_only`` (no OCSP responder named),
  ``under_withdrawn`` (issued by the withdrawn CA);
* trusted-list signers: ``tl_signer`` (the national list), ``lotl_signer`` (the LOTL).

A test makes a route fail (``server.failing``: HTTP 503), or serves a CRL already past its
``nextUpdate`` (``stale_crls``). Everything is fictitious.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID

from tests.sigtools.pki import ALICJA, BOGDAN, CELINA, QC_TYPE_ESIGN, QCP_N_QSCD, Issued, _name, issue, qc_statements, utc

FILED = datetime(2025, 3, 10, 9, 0, tzinfo=UTC)
SIGNED = FILED - timedelta(minutes=20)
REVOKED_BEFORE = datetime(2025, 2, 1, tzinfo=UTC)
REVOKED_AFTER = datetime(2025, 6, 1, tzinfo=UTC)
WITHDRAWN_AT = datetime(2025, 3, 1, tzinfo=UTC)

Route = Callable[[bytes], tuple[int, str, bytes]]


class TrustServer:
    """HTTP on 127.0.0.1 in a thread: ``routes`` by path; ``failing`` paths answer 503;
    ``hits`` counts the requests per path."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.failing: set[str] = set()
        self.hits: Counter[str] = Counter()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, body: bytes) -> None:
                path = self.path.split("?", 1)[0]
                outer.hits[path] += 1
                route = outer.routes.get(path)
                if path in outer.failing:
                    status, ctype, data = 503, "text/plain", b"down"
                elif route is None:
                    status, ctype, data = 404, "text/plain", b"not found"
                else:
                    status, ctype, data = route(body)
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802
                self._answer(b"")

            def do_POST(self) -> None:  # noqa: N802
                self._answer(self.rfile.read(int(self.headers.get("Content-Length") or 0)))

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def serve(self, path: str, data: bytes, content_type: str = "application/xml") -> str:
        self.routes[path] = lambda _body: (200, content_type, data)
        return self.url + path

    def reset(self) -> None:
        self.failing.clear()
        self.hits.clear()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class OnlineCA:
    """A CA with its revocation records, its OCSP responder and its CRL on the server."""

    def __init__(self, ca: Issued, server: TrustServer, name: str, *, ocsp_responder: bool) -> None:
        self.ca, self.name, self.server = ca, name, server
        self.revoked: dict[int, datetime] = {}
        self.issued: dict[int, Issued] = {}
        self.stale_crl = False
        self.responder: Issued | None = None
        if ocsp_responder:
            self.responder = issue(
                _name(C="PL", O="TEST - dostawca", CN=f"TEST OCSP {name}"), ca, not_before=utc(2020), not_after=utc(2040),
                ca=False, key_usage="seal", eku=[ExtendedKeyUsageOID.OCSP_SIGNING],
                extensions=[(x509.OCSPNoCheck(), False)],
            )  # fmt: skip
            server.routes[f"/ocsp/{name}"] = self._ocsp
        server.routes[f"/crl/{name}.crl"] = lambda _body: (200, "application/pkix-crl", self.crl().public_bytes(Encoding.DER))

    @property
    def ocsp_url(self) -> str:
        return f"{self.server.url}/ocsp/{self.name}"

    @property
    def crl_url(self) -> str:
        return f"{self.server.url}/crl/{self.name}.crl"

    def crl(self) -> x509.CertificateRevocationList:
        now = datetime.now(UTC)
        last, nxt = (now - timedelta(days=10), now - timedelta(days=3)) if self.stale_crl else (now - timedelta(minutes=1), now + timedelta(days=1))
        b = x509.CertificateRevocationListBuilder().issuer_name(self.ca.cert.subject).last_update(last).next_update(nxt)
        for serial, when in self.revoked.items():
            b = b.add_revoked_certificate(x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when).build())
        return b.sign(self.ca.key, hashes.SHA256())

    def _ocsp(self, body: bytes) -> tuple[int, str, bytes]:
        assert self.responder is not None
        req = ocsp.load_der_ocsp_request(body)
        now = datetime.now(UTC)
        issued = self.issued.get(req.serial_number)
        if issued is None:
            resp = ocsp.OCSPResponseBuilder.build_unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED)
            return 200, "application/ocsp-response", resp.public_bytes(Encoding.DER)
        revoked = self.revoked.get(req.serial_number)
        builder = ocsp.OCSPResponseBuilder().add_response(
            cert=issued.cert, issuer=self.ca.cert, algorithm=hashes.SHA1(),
            cert_status=ocsp.OCSPCertStatus.REVOKED if revoked else ocsp.OCSPCertStatus.GOOD,
            this_update=now - timedelta(minutes=1), next_update=now + timedelta(hours=12),
            revocation_time=revoked, revocation_reason=x509.ReasonFlags.key_compromise if revoked else None,
        ).responder_id(ocsp.OCSPResponderEncoding.HASH, self.responder.cert).certificates([self.responder.cert])  # fmt: skip
        return 200, "application/ocsp-response", builder.sign(self.responder.key, hashes.SHA256()).public_bytes(Encoding.DER)

    def person(self, who, *, ocsp_named: bool = True, not_after: datetime = utc(2030, 12, 31)) -> Issued:  # noqa: B008
        access = [x509.AccessDescription(AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(self.ocsp_url))]
        exts: list[tuple[x509.ExtensionType, bool]] = [
            (x509.CRLDistributionPoints([x509.DistributionPoint([x509.UniformResourceIdentifier(self.crl_url)], None, None, None)]), False)
        ]
        if ocsp_named:
            exts.append((x509.AuthorityInformationAccess(access), False))
        person = issue(
            _name(C="PL", GN=who.first, SN=who.last, serialNumber=f"PNOPL-{who.pesel}", CN=f"{who.first} {who.last}"),
            self.ca, not_before=utc(2022), not_after=not_after, ca=False, key_usage="nonrep", policy=QCP_N_QSCD,
            qc=qc_statements(types=(QC_TYPE_ESIGN,)), extensions=exts,
        )  # fmt: skip
        self.issued[person.cert.serial_number] = person
        return person


class OnlinePKI:
    """The online test PKI on ``server`` (see the module docstring)."""

    __test__ = False

    def __init__(self, server: TrustServer) -> None:
        self.server = server
        self.root = issue(_name(C="PL", O="TEST - online", CN="TEST Online Root"), None, not_before=utc(2020), not_after=utc(2045),
                          ca=True, key_usage="ca")  # fmt: skip
        self.root_ca = OnlineCA(self.root, server, "root", ocsp_responder=False)
        cdp = [(x509.CRLDistributionPoints([x509.DistributionPoint([x509.UniformResourceIdentifier(self.root_ca.crl_url)], None, None, None)]), False)]
        qca = issue(_name(C="PL", O="TEST - online", CN="TEST Online Kwalifikowane CA"), self.root, not_before=utc(2020),
                    not_after=utc(2040), ca=True, key_usage="ca", extensions=cdp)  # fmt: skip
        wca = issue(_name(C="PL", O="TEST - online", CN="TEST Online CA wycofane"), self.root, not_before=utc(2020),
                    not_after=utc(2040), ca=True, key_usage="ca", extensions=cdp)  # fmt: skip
        self.qca = OnlineCA(qca, server, "qca", ocsp_responder=True)
        self.wca = OnlineCA(wca, server, "wca", ocsp_responder=True)
        self.good = self.qca.person(ALICJA)
        self.revoked_before = self.qca.person(BOGDAN)
        self.revoked_after = self.qca.person(CELINA)
        self.crl_only = self.qca.person(ALICJA, ocsp_named=False)
        self.under_withdrawn = self.wca.person(ALICJA)
        self.qca.revoked[self.revoked_before.cert.serial_number] = REVOKED_BEFORE
        self.qca.revoked[self.revoked_after.cert.serial_number] = REVOKED_AFTER
        self.tl_signer = issue(_name(C="PL", O="TEST - organ nadzoru", CN="TEST TL signer PL"), None, not_before=utc(2020),
                               not_after=utc(2045), ca=False, key_usage="seal")  # fmt: skip
        self.lotl_signer = issue(_name(C="BE", O="TEST - Commission", CN="TEST LOTL signer"), None, not_before=utc(2020),
                                 not_after=utc(2045), ca=False, key_usage="seal")  # fmt: skip
