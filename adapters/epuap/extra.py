"""Safe decoding of ``daneDodatkowe`` (base64 of a small XML with extra data about a document).

The XML comes from outside, so it is parsed without a DTD, entities, network or huge-tree
support, and refused when it declares a DOCTYPE. Whatever happens, the result is a small
JSON-serialisable dict and never an exception: a document must be stored even when its
extra data is unreadable.

>>> parse_dane_dodatkowe(b"<DaneDodatkowe><IdentyfikatorDokumentu>42</IdentyfikatorDokumentu></DaneDodatkowe>")["fields"]
{'IdentyfikatorDokumentu': '42'}
>>> parse_dane_dodatkowe(b"")
>>> parse_dane_dodatkowe(b"<!DOCTYPE a [<!ENTITY x 'y'>]><a>&x;</a>")["error"]
'DTD/DOCTYPE not allowed'
"""

from __future__ import annotations

from typing import Any

from lxml import etree

from worker.domain.xmlvalue import string_value
from worker.forms.safe_xml import safe_parser

MAX_EXTRA_BYTES = 256 * 1024  # daneDodatkowe is metadata, not a document
MAX_FIELDS = 200
MAX_TEXT = 2000


def _local(tag: object) -> str:
    return etree.QName(tag).localname if isinstance(tag, str) else ""


def parse_dane_dodatkowe(data: bytes | None) -> dict[str, Any] | None:
    """Decode the extra data: ``{"fields": {local-name: text}, "xml": text}`` or ``{"error": …}``.

    ``fields`` holds the first text of every leaf element by local name (namespaces vary in
    practice), e.g. ``IdentyfikatorDokumentu``; ``xml`` is the decoded XML text itself (kept
    for the record) when it is valid UTF-8. ``None`` when there is no extra data at all.
    """
    if not data:
        return None
    if len(data) > MAX_EXTRA_BYTES:
        return {"error": "too large", "size": len(data)}
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        return {"error": "DTD/DOCTYPE not allowed", "size": len(data)}
    try:
        root = etree.fromstring(data, safe_parser(remove_comments=True, remove_pis=True))
    except (etree.XMLSyntaxError, ValueError) as exc:
        return {"error": f"not well-formed XML: {str(exc)[:200]}", "size": len(data)}
    if root is None:
        return {"error": "empty XML", "size": len(data)}
    fields: dict[str, str] = {}
    for element in root.iter():
        if len(element) or not isinstance(element.tag, str):
            continue
        name = _local(element.tag)
        text = (string_value(element) or "").strip()
        if name and text and name not in fields:
            fields[name] = text[:MAX_TEXT]
            if len(fields) >= MAX_FIELDS:
                break
    result: dict[str, Any] = {"root": _local(root.tag), "fields": fields}
    try:
        result["xml"] = data.decode("utf-8")
    except UnicodeDecodeError:
        result["xml"] = None
    return result
