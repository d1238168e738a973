"""A statement file's bytes → its statements, or the reason it is quarantined.

:func:`read_statements` is the one entry for intake and ``check``: it recognises the format
(:func:`detect`), refuses what is not a statement or not the account's configured format,
and hands the bytes to :mod:`worker.bank.mt940` or :mod:`worker.bank.camt053`. The file's
size limit (``file_too_large``) is the intake's, which does not read such a file at all.

Order of the checks, so every file gets the most telling reason: not a statement
(``not_a_statement``: MT942, camt.052, camt.054), a format the worker does not read
(``format_unknown``), the other format (``format_not_configured``), then the format's own
checks (code page, XML safety, schema, structure, account, currency, balances).

>>> detect(b"{1:F01}{2:O9420000}{4:\\r\\n:20:X\\r\\n-}")
Traceback (most recent call last):
...
worker.bank.model.StatementRefused: not_a_statement: plik nie jest wyciągiem dziennym (raport śróddzienny MT942, camt.052 lub powiadomienie camt.054).
>>> detect(b'<?xml version="1.0"?><Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"/>')
'camt053'
"""

from __future__ import annotations

import re

from worker.bank.camt053 import NAMESPACES, parse_camt053
from worker.bank.model import CAMT053, MT940, Statement, StatementRefused
from worker.bank.mt940 import parse_mt940
from worker.bank.options import BankFormat

_SNIFF_BYTES = 65536
_ISO_NS = re.compile(rb"urn:iso:std:iso:20022:tech:xsd:(camt\.[0-9]{3})\.[0-9]{3}\.[0-9]{2}")
_LEADING = b"\xef\xbb\xbf \t\r\n\x01"


def detect(raw: bytes) -> str:
    """``mt940`` or ``camt053``; :class:`StatementRefused` ``not_a_statement`` or
    ``format_unknown`` otherwise. Looks only at markers, never parses."""
    head = raw[:_SNIFF_BYTES]
    start = head.lstrip(_LEADING)
    if start.startswith(b"<"):
        m = _ISO_NS.search(head)
        if m is None:
            raise StatementRefused("format_unknown")
        if m.group(1) in (b"camt.052", b"camt.054"):
            raise StatementRefused("not_a_statement")
        if m.group(0).decode("ascii") in NAMESPACES:
            return CAMT053
        raise StatementRefused("format_unknown")
    if re.search(rb"\{2:[IO]942", head):
        raise StatementRefused("not_a_statement")
    tags = set(re.findall(rb"(?m)^[\x01]?:([0-9]{2}[A-Z]?):", raw))
    if b"20" not in tags or b"25" not in tags:
        raise StatementRefused("format_unknown")
    if not tags & {b"60F", b"60M", b"62F", b"62M"} and tags & {b"34F", b"13D", b"90D", b"90C"}:
        raise StatementRefused("not_a_statement")
    return MT940


def read_statements(raw: bytes, fmt: BankFormat) -> tuple[Statement, ...]:
    """The statements of a file in the account's configured format, every one checked;
    :class:`StatementRefused` (reason and position) otherwise. Pure: no I/O, no logging."""
    kind = detect(raw)
    if kind != fmt.format:
        raise StatementRefused("format_not_configured")
    if kind == MT940:
        return parse_mt940(raw, fmt)
    return parse_camt053(raw, fmt)


__all__ = ["detect", "read_statements"]
