"""Strict decoding of a statement's bytes in the bank's code page.

Every byte is a letter in CP852 and nearly every one in Windows-1250, so a wrong code page
gives wrong letters, not an error: the code page is configured from the bank's description
(``bank.encoding``) and decoded strictly — a byte the code page does not define is an
``encoding_error``, and so is any control character other than CR, LF, SOH (0x01) and ETX
(0x03) (NUL, TAB, the C1 controls ISO-8859-2 maps bytes 0x80–0x9F to). A UTF-8 byte order
mark is dropped. The position is the line of the first bad byte.

>>> decode_strict("ŁÓDŹ".encode("cp1250"), "windows-1250")
'ŁÓDŹ'
>>> decode_strict(b"ok\\n\\x00", "cp852")
Traceback (most recent call last):
...
worker.bank.model.StatementRefused: encoding_error (wiersz 2): plik nie jest zapisany w skonfigurowanej stronie kodowej (bank.encoding) albo zawiera niedozwolone znaki sterujące.
"""

from __future__ import annotations

import re

from worker.bank.model import StatementRefused
from worker.bank.options import ENCODINGS

UTF8_BOM = b"\xef\xbb\xbf"
_FORBIDDEN = re.compile("[\x00\x02\x04-\x09\x0b\x0c\x0e-\x1f\x7f-\x9f\ufeff\ufffe\uffff]")


def _line_of(text: str | bytes, offset: int) -> int:
    if isinstance(text, bytes):
        return text.count(b"\n", 0, offset) + 1
    return text.count("\n", 0, offset) + 1


def decode_strict(raw: bytes, encoding: str) -> str:
    """``raw`` decoded in ``encoding`` (a key of ``ENCODINGS``), or ``encoding_error``."""
    codec = ENCODINGS[encoding]
    if codec == "utf-8" and raw.startswith(UTF8_BOM):
        raw = raw[len(UTF8_BOM) :]
    try:
        text = raw.decode(codec, errors="strict")
    except UnicodeDecodeError as exc:
        raise StatementRefused("encoding_error", line=_line_of(raw, exc.start)) from None
    bad = _FORBIDDEN.search(text)
    if bad is not None:
        raise StatementRefused("encoding_error", line=_line_of(text, bad.start()))
    return text


__all__ = ["decode_strict"]
