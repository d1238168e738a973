"""Hostile documents: shapes that cost a careless checker minutes of CPU or gigabytes of
memory (issue #20). Used by the tests and by ``bench/bench_hostile.py``.

A "signature" is put into a hostile document by *transplanting* the ``ds:Signature`` of a
small document signed by xmlsec1: its ``SignedInfo`` and ``SignedProperties`` stay intact
(the signature value verifies, with the key that made it), only the document reference's
digest no longer matches — so only the canonicalisation of the whole hostile document can
tell, which is what such a document is made to provoke.
"""

from __future__ import annotations

import re

from tests.sigtools.pki import ALICJA, Issued
from tests.sigtools.xmlsig import DO1_2025_NS, declaration, pz_signature, qualified_signature, sign

_SIGNATURE = re.compile(rb"<ds:Signature\b.*?</ds:Signature>", re.S)
ROOT_OPEN = f'<wnio:Dokument xmlns:wnio="{DO1_2025_NS}"'.encode()


def signature_of(signer: Issued, *, profile_shape: bool = True) -> bytes:
    """The ``ds:Signature`` element of a small declaration signed by ``signer``:
    ``profile_shape`` the Profil Zaufany shape (``URI=""`` with the XPath filter and the
    inclusive canonicalisation — the costly one), else the enveloped/exclusive one."""
    from tests.sigtools.fixtures import SIGNED_AT

    template = pz_signature(signer, SIGNED_AT, None) if profile_shape else qualified_signature(signer, SIGNED_AT)
    raw = sign(declaration(ALICJA), template, signer)
    match = _SIGNATURE.search(raw)
    assert match is not None
    return match.group(0)


def document(body: bytes, *, namespaces: int = 0, signatures: list[bytes] | None = None, root_attrs: bytes = b"") -> bytes:
    """A DO-1/2025 root with ``namespaces`` extra namespace declarations, ``body`` and the
    ``signatures`` (transplanted) as its last children."""
    decls = b"".join(b' xmlns:p%d="urn:x:%d"' % (i, i) for i in range(namespaces))
    return (b'<?xml version="1.0" encoding="UTF-8"?>\n' + ROOT_OPEN + decls + root_attrs + b">" + body
            + b"".join(signatures or []) + b"</wnio:Dokument>")


def namespace_flood(signature: bytes, *, namespaces: int = 150_000, elements: int = 20_000) -> bytes:
    """The issue's document: ~150,000 namespace declarations on the root, ~20,000 empty
    elements, a signature with a wrong digest (inclusive canonicalisation: hours of CPU)."""
    return document(b"<wnio:e/>" * elements, namespaces=namespaces, signatures=[signature])


_SIGNATURE_NS = re.compile(rb' xmlns:(ds|xades)="[^"]*"')


def many_signatures(signature: bytes, *, copies: int, text_bytes: int = 0, namespaces: int = 0, elements: int = 0) -> bytes:
    """``copies`` of one signature under the root, over a body of ``elements`` empty
    elements and ``text_bytes`` of text: each copy makes the verifier check the whole
    document again. The signature's own namespace declarations move to the root (declared
    once, as a document with many signatures would), so every copy costs no declaration."""
    decls = b"".join(sorted({m.group(0) for m in _SIGNATURE_NS.finditer(signature)}))
    bare = _SIGNATURE_NS.sub(b"", signature)
    body = b"<wnio:e/>" * elements + (b"<wnio:t>" + b"a" * text_bytes + b"</wnio:t>" if text_bytes else b"")
    return document(body, namespaces=namespaces, signatures=[bare] * copies, root_attrs=decls)


def element_flood(size: int) -> bytes:
    """``size`` bytes of empty elements (a tree of millions of nodes)."""
    return document(b"<e/>" * (size // 4))


def attribute_flood(count: int) -> bytes:
    return document(b"", root_attrs=b"".join(b' a%d="1"' % i for i in range(count)))


def deep(depth: int) -> bytes:
    return document(b"<wnio:d>" * depth + b"</wnio:d>" * depth)


def long_text(chars: int) -> bytes:
    return document(b"<wnio:t>" + b"a" * chars + b"</wnio:t>")


def markup_flood(count: int) -> bytes:
    """``count`` processing instructions and comments (nodes that are no elements)."""
    return document(b"<?x y?><!--c-->" * (count // 2))
