"""Parsing untrusted bytes into an lxml tree, refusing everything dangerous.

Every document the worker receives is hostile until proven otherwise. :func:`parse_untrusted`
accepts only well-formed UTF-8 XML without any document type declaration, and never
expands an entity, loads a DTD, touches the network or reads a file:

* the size is checked before anything is parsed (``max_bytes``, from the configuration);
* a leading UTF-8 byte order mark is accepted; any other encoding (a declaration naming one,
  a UTF-16 BOM, bytes that are not valid UTF-8) is refused, so the tree is exactly what
  the bytes say;
* lxml runs with ``resolve_entities=False``, ``no_network=True``, ``load_dtd=False``,
  ``huge_tree=False`` (libxml2's depth and text-size limits stay on);
* a document that carries a ``<!DOCTYPE …>`` at all is refused *after* parsing (the
  internal subset is read by libxml2 but nothing in it is ever resolved or expanded), so
  no DTD trick — entity bombs, external entities, external DTDs — reaches any later step.

Refusals raise :class:`XmlRefused` with a Polish message for the office and a short
English ``reason`` for logs (no document content in either).

>>> parse_untrusted(b'\\xef\\xbb\\xbf<a>x</a>', max_bytes=100).tag
'a'
>>> try:
...     parse_untrusted(b'', max_bytes=100)
... except XmlRefused as e:
...     print(e.reason)
empty
"""

from __future__ import annotations

import re

from lxml import etree

UTF8_BOM = b"\xef\xbb\xbf"

# the encoding pseudo-attribute of an XML declaration at the very start of the document
_XML_DECL_ENCODING = re.compile(rb"""\A<\?xml[^>]*?\sencoding\s*=\s*(?:"([^"]*)"|'([^']*)')""")


class XmlRefused(Exception):
    """The bytes are not a document the worker will read.

    ``reason`` is a stable English key for logs (``too_large``, ``empty``, ``encoding``,
    ``dtd``, ``not_well_formed``); ``message`` is Polish, for the finding.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


class DocumentTooLarge(XmlRefused):
    """The document exceeds the configured size limit (``DOCUMENT_TOO_LARGE``)."""

    def __init__(self, size: int, max_bytes: int) -> None:
        super().__init__(
            "too_large",
            f"Dokument ma {size} bajtów, a przyjmowane są dokumenty do {max_bytes} bajtów. "
            "Dokumentu nie przetworzono.",
        )
        self.size = size
        self.max_bytes = max_bytes


class DocumentTooComplex(XmlRefused):
    """The document is beyond a structural limit (``DOCUMENT_TOO_COMPLEX``): ``limit`` names
    it (``max_elements``…, or ``parser`` for one of libxml2's own resource limits)."""

    def __init__(self, limit: str, what: str) -> None:
        super().__init__(
            "too_complex",
            f"{what}, więc nie może zostać bezpiecznie sprawdzony. Dokumentu nie przetworzono.",
        )
        self.limit = limit


def safe_parser(*, remove_comments: bool = False, remove_pis: bool = False) -> etree.XMLParser:
    """The one parser configuration for XML from outside: no DTD, no entity resolution,
    no network, no huge trees, no recovery. A fresh parser per document: lxml parsers are
    not thread-safe to share. Every module that parses untrusted XML uses this."""
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_blank_text=False,
        remove_comments=remove_comments,
        remove_pis=remove_pis,
        strip_cdata=False,
        recover=False,
        collect_ids=False,
    )


def _prolog_has_doctype(data: bytes) -> bool:
    """Whether a ``<!DOCTYPE`` stands in the prolog (before the root element).

    Checked before parsing, so a DTD is never even handed to libxml2. Only the prolog is
    scanned: the same text inside an element's content or a comment is harmless.

    >>> _prolog_has_doctype(b'<?xml version="1.0"?><!-- c --> <!DOCTYPE a><a/>')
    True
    >>> _prolog_has_doctype(b'<a><![CDATA[<!DOCTYPE a>]]></a>')
    False
    """
    pos, end = 0, len(data)
    while pos < end:
        while pos < end and data[pos] in b" \t\r\n":
            pos += 1
        if data.startswith(b"<?", pos):
            terminator = b"?>"
        elif data.startswith(b"<!--", pos):
            terminator = b"-->"
        else:
            return data[pos : pos + 9].upper() == b"<!DOCTYPE"
        close = data.find(terminator, pos + 2)
        if close < 0:
            return False  # unterminated: the parser refuses it as not well-formed
        pos = close + len(terminator)
    return False


def parse_untrusted(raw: bytes, *, max_bytes: int) -> etree._Element:
    """Parse ``raw`` safely and return the root element, or raise :class:`XmlRefused`."""
    if not isinstance(raw, (bytes, bytearray, memoryview)):
        raise XmlRefused("not_bytes", "Dokument nie jest plikiem XML.")
    data = bytes(raw)
    if len(data) > max_bytes:
        raise DocumentTooLarge(len(data), max_bytes)
    if data.startswith(UTF8_BOM):
        data = data[len(UTF8_BOM) :]
    if not data.strip():
        raise XmlRefused("empty", "Dokument jest pusty.")
    try:
        data.decode("utf-8", errors="strict")
    except UnicodeDecodeError as exc:
        raise XmlRefused(
            "encoding",
            f"Dokument nie jest zapisany poprawnie w kodowaniu UTF-8 (błędny bajt na pozycji {exc.start}).",
        ) from None
    if _prolog_has_doctype(data):
        raise XmlRefused(
            "dtd",
            "Dokument zawiera deklarację typu dokumentu (DOCTYPE/DTD), "
            "która jest niedozwolona ze względów bezpieczeństwa.",
        )
    declared = _XML_DECL_ENCODING.match(data)
    if declared is not None:
        name = (declared.group(1) or declared.group(2) or b"").strip().lower()
        if name not in (b"utf-8", b"utf8"):
            raise XmlRefused(
                "encoding",
                "Dokument deklaruje kodowanie inne niż UTF-8; przyjmowane są tylko dokumenty w UTF-8.",
            )
    try:
        tree = etree.fromstring(data, parser=safe_parser()).getroottree()
    except etree.XMLSyntaxError as exc:
        if exc.code == etree.ErrorTypes.ERR_RESOURCE_LIMIT:  # libxml2's own limits (text node, depth)
            raise DocumentTooComplex(
                "parser", "Dokument przekracza ograniczenia bezpiecznego odczytu (zbyt długi tekst albo zbyt głębokie zagnieżdżenie)"
            ) from None
        line = getattr(exc, "lineno", None) or (exc.position[0] if exc.position else None)
        where = f" (wiersz {line})" if line else ""
        raise XmlRefused("not_well_formed", f"Dokument nie jest poprawnym plikiem XML{where}.") from None
    except (etree.LxmlError, ValueError):
        raise XmlRefused("not_well_formed", "Dokument nie jest poprawnym plikiem XML.") from None
    docinfo = tree.docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise XmlRefused(
            "dtd",
            "Dokument zawiera deklarację typu dokumentu (DOCTYPE/DTD) lub encje, "
            "które są niedozwolone ze względów bezpieczeństwa.",
        )
    root = tree.getroot()
    # Belt and braces: with no DTD there can be no entity node, but never let one through.
    for _node in root.iter(etree.Entity):
        raise XmlRefused("dtd", "Dokument zawiera encje, które są niedozwolone ze względów bezpieczeństwa.")
    return root


__all__ = ["DocumentTooComplex", "DocumentTooLarge", "XmlRefused", "UTF8_BOM", "parse_untrusted"]
