"""Structural limits of a document, checked before anything is canonicalised or trusted.

What a document costs to check depends on its shape more than on its size: libxml2's
inclusive canonicalisation walks every in-scope namespace of every element (measured: about
3 ns × namespaces² × elements, so 150,000 namespace declarations on a root with 20,000
empty elements is hours of CPU in 3 MB), a tree of millions of tiny elements takes hundreds
of megabytes. So a document is refused with ``DOCUMENT_TOO_COMPLEX`` (``spec/signatures.md``,
"Bounded work for every document") when it has more than (``[processing]``, documented in
``config.example.toml``):

* ``max_elements`` elements;
* ``max_attributes`` attributes (namespace declarations not counted);
* ``max_namespace_declarations`` namespace declarations (``xmlns`` / ``xmlns:p``
  attributes, wherever they stand: the worst case is all of them in scope everywhere);
* ``max_depth`` levels of nested elements (the document element is level 1);
* ``max_text_chars`` characters in one text node or attribute value.

The checks are cheap and come in two steps. Before parsing, on the bytes (C-speed counts;
each an upper bound of what it limits, so an honest document never trips them): at most
``4 × max_elements`` ``<`` (every element is one or two tags; comments, processing
instructions and CDATA sections count too), at most ``4 × (max_attributes +
max_namespace_declarations)`` ``=``, at most ``max_namespace_declarations`` ``xmlns``
declarations — so a flood is refused without building its tree. After parsing, exact
counts by XPath over the tree (libxml2, no Python loop over the nodes). libxml2's own limits
stay on as well (the parser never gets ``XML_PARSE_HUGE``): a text node above 10,000,000
bytes or nesting deeper than 256 is refused by the parser, and reported the same way.

Within the defaults the costliest step — the whole-document canonicalisation of each
signature — stays under half a second (``bench/bench_hostile.py``), and the CPU budget
(:mod:`worker.domain.budget`) bounds the sum of the steps.

>>> limits = StructureLimits(max_elements=3, max_attributes=1, max_namespace_declarations=1, max_depth=2, max_text_chars=5)
>>> parse_bounded(b'<a xmlns="urn:x" k="v"><b>text</b></a>', max_bytes=1000, limits=limits).tag
'{urn:x}a'
>>> for doc in (b"<a><b/><b/><b/></a>", b'<a x="1" y="2"/>', b"<a><b><c/></b></a>", b"<a>toolong</a>",
...             b'<a xmlns:p="urn:p" xmlns:q="urn:q"/>'):
...     try:
...         parse_bounded(doc, max_bytes=1000, limits=limits)
...     except DocumentTooComplex as exc:
...         print(exc.limit)
max_elements
max_attributes
max_depth
max_text_chars
max_namespace_declarations
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import islice
from typing import Any

from lxml import etree

from worker.forms.safe_xml import DocumentTooComplex, parse_untrusted

# an xmlns declaration as it can stand in a start tag (counted on the bytes: an upper bound,
# text that happens to read "xmlns=" counts too)
_XMLNS = re.compile(rb"xmlns(?::[^\s=/>]*)?\s*=")


@dataclass(frozen=True)
class StructureLimits:
    """The limits of :mod:`worker.forms.structure` (``[processing]`` keys of the same names)."""

    max_elements: int = 10_000
    max_attributes: int = 20_000
    max_namespace_declarations: int = 128
    max_depth: int = 64
    max_text_chars: int = 10_000_000


DEFAULT_LIMITS = StructureLimits()

# Polish: what exceeded its limit (for the finding; the limit's value follows)
_WHAT = {
    "max_elements": "ma więcej elementów niż dopuszczalne {limit}",
    "max_attributes": "ma więcej atrybutów niż dopuszczalne {limit}",
    "max_namespace_declarations": "ma więcej deklaracji przestrzeni nazw (xmlns) niż dopuszczalne {limit}",
    "max_depth": "ma więcej poziomów zagnieżdżenia elementów niż dopuszczalne {limit}",
    "max_text_chars": "zawiera tekst lub wartość atrybutu dłuższe niż dopuszczalne {limit} znaków",
}


def _too_complex(limit: str, value: int) -> DocumentTooComplex:
    return DocumentTooComplex(limit, f"Dokument {_WHAT[limit].format(limit=value)}")


@dataclass(frozen=True)
class ByteCounts:
    """What :func:`check_bytes` counted: upper bounds of the tree's elements (``lt``: each
    element is at least one ``<``) and attributes (``eq``: each at least one ``=``)."""

    lt: int
    eq: int


def check_bytes(data: bytes, limits: StructureLimits) -> ByteCounts:
    """The counts on the bytes, before parsing (see the module docstring)."""
    most = limits.max_namespace_declarations
    if data.count(b"xmlns") > most and sum(1 for _ in islice(_XMLNS.finditer(data), most + 1)) > most:
        raise _too_complex("max_namespace_declarations", most)
    counts = ByteCounts(data.count(b"<"), data.count(b"="))
    if counts.lt > 4 * limits.max_elements:
        raise _too_complex("max_elements", limits.max_elements)
    if counts.eq > 4 * (limits.max_attributes + most):
        raise _too_complex("max_attributes", limits.max_attributes)
    return counts


def _deeper_than(depth: int) -> etree.XPath:
    return etree.XPath("boolean(/" + "/".join(["*"] * (depth + 1)) + ")")


_COUNT_ELEMENTS = etree.XPath("count(//*)")
_COUNT_ATTRIBUTES = etree.XPath("count(//@*)")
_LONG_TEXT = etree.XPath("boolean(//text()[string-length() > $n] | //@*[string-length() > $n])")
_DEPTH_XPATHS: dict[int, etree.XPath] = {}


def check_tree(root: Any, limits: StructureLimits, counts: ByteCounts | None = None) -> None:
    """The exact counts on the parsed tree (XPath, evaluated by libxml2); a count the
    bytes' ``counts`` already keep within its limit is not made again."""
    if (counts is None or counts.lt > limits.max_elements) and _COUNT_ELEMENTS(root) > limits.max_elements:
        raise _too_complex("max_elements", limits.max_elements)
    if (counts is None or counts.eq > limits.max_attributes) and _COUNT_ATTRIBUTES(root) > limits.max_attributes:
        raise _too_complex("max_attributes", limits.max_attributes)
    deeper = _DEPTH_XPATHS.get(limits.max_depth)
    if deeper is None:
        deeper = _DEPTH_XPATHS[limits.max_depth] = _deeper_than(limits.max_depth)
    if deeper(root):
        raise _too_complex("max_depth", limits.max_depth)
    if limits.max_text_chars < 10_000_000 and _LONG_TEXT(root, n=limits.max_text_chars):
        raise _too_complex("max_text_chars", limits.max_text_chars)


def parse_bounded(raw: bytes, *, max_bytes: int, limits: StructureLimits = DEFAULT_LIMITS) -> Any:
    """:func:`worker.forms.safe_xml.parse_untrusted` within ``limits``: the root element,
    or :class:`~worker.forms.safe_xml.XmlRefused` (:class:`DocumentTooComplex` for a
    document beyond a limit, :class:`~worker.forms.safe_xml.DocumentTooLarge` for one over
    ``max_bytes``)."""
    data = bytes(raw)
    counts = None
    if len(data) <= max_bytes:  # a larger one is refused by its size, checked first
        counts = check_bytes(data, limits)
    root = parse_untrusted(data, max_bytes=max_bytes)
    check_tree(root, limits, counts)
    return root


__all__ = ["DEFAULT_LIMITS", "ByteCounts", "DocumentTooComplex", "StructureLimits", "check_bytes", "check_tree", "parse_bounded"]
