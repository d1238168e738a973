"""Parsing untrusted XML for signature verification: no DTDs, no entities, no network.

Every document the worker verifies comes from outside. It is parsed with DTD loading,
entity resolution and network access off and huge trees refused; a document that still
carries a DTD (internal subset or external reference) or an entity reference is refused
outright, so an entity bomb or an external entity is never expanded or fetched.

>>> parse_untrusted(b"<a><b>1</b></a>").tag
'a'
>>> try:
...     parse_untrusted(b'<!DOCTYPE a [<!ENTITY e "x">]><a>&e;</a>')
... except UnsafeXML as exc:
...     print(exc)
DTD declarations are not accepted
"""

from __future__ import annotations

from lxml import etree

from worker.forms.safe_xml import safe_parser


class UnsafeXML(ValueError):
    """The bytes are not well-formed XML, or carry a DTD or entities."""


def parse_untrusted(raw: bytes) -> etree._Element:
    """Parse ``raw`` and return the root element (its tree keeps processing instructions
    before the root). Raises :class:`UnsafeXML` for anything not plainly well-formed."""
    try:
        root = etree.fromstring(raw, parser=safe_parser())
    except (etree.XMLSyntaxError, ValueError) as exc:
        raise UnsafeXML("not well-formed XML") from exc
    if root is None:
        raise UnsafeXML("empty document")
    docinfo = root.getroottree().docinfo
    if docinfo.internalDTD is not None or docinfo.externalDTD is not None or docinfo.doctype:
        raise UnsafeXML("DTD declarations are not accepted")
    for _ in root.iter(etree.Entity):
        raise UnsafeXML("entity references are not accepted")
    return root
