"""The value of an XML element: its whole string value, as the schema check sees it.

A value the worker reads from a document — residents, fees, identifiers, names, dates, an
attachment's base64, a signer's identity — is the element's **whole string value**: the
text of all its text nodes (CDATA sections and character references included), in
document order, with comments and processing instructions left out. That is what XSD
validation validates (libxml2 joins the text around a comment or a processing
instruction) and what the XPath ``string()`` of the element is. lxml's ``.text`` is only
the text *before* the first child node, so ``<LiczbaMieszkancow>2<?x y?>0</…>`` — a
processing instruction is kept by canonicalisation, so it is signed — would read as ``2``
while the schema check saw ``20``. Every mapper reads values through :func:`string_value`
(``spec/signatures.md``, "What is loaded is what was signed").

>>> from lxml import etree
>>> el = etree.fromstring("<a>2<?x y?>0<!-- c -->5<![CDATA[7]]></a>")
>>> el.text, string_value(el)
('2', '2057')
>>> string_value(etree.fromstring("<r><a>x<b>y</b>z</a>tail</r>")[0])
'xyz'
>>> string_value(None) is None, stripped_value(etree.fromstring("<a>  </a>")) is None
(True, True)
>>> stripped_value(etree.fromstring("<a> 7<?x?>6.00 </a>"))
'76.00'
"""

from __future__ import annotations

from typing import Any


def string_value(element: Any) -> str | None:
    """The element's whole string value (``None`` for no element): the text of every text
    node under it, comments and processing instructions excluded. An element of a simple
    type (what a valid document has where a value is read) has no child elements; where a
    document is read without its schema (a signature's identity, a scan header), child
    elements' text is part of the value, as in XPath."""
    if element is None:
        return None
    if not len(element):  # text alone (lxml counts comments and processing instructions as children)
        return element.text or ""
    return "".join(element.itertext())


def stripped_value(element: Any) -> str | None:
    """:func:`string_value` without surrounding whitespace; ``None`` when there is no
    element or nothing but whitespace."""
    value = string_value(element)
    if value is None:
        return None
    value = value.strip()
    return value or None


__all__ = ["string_value", "stripped_value"]
