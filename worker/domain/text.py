"""Text folding for matching names and addresses typed by people.

>>> fold("  Kędzierzyn-KOŹLE ")
'kedzierzyn-kozle'
>>> fold("ul.  Łąkowa") == fold("UL. Lakowa")
True
"""

from __future__ import annotations

import unicodedata

_EXTRA = str.maketrans({"ł": "l", "Ł": "l"})  # ł has no decomposition in Unicode


def fold(text: str | None) -> str:
    """Lower case, Polish diacritics removed, runs of white space collapsed, trimmed."""
    if not text:
        return ""
    t = unicodedata.normalize("NFKD", text.translate(_EXTRA))
    t = "".join(c for c in t if not unicodedata.combining(c))
    return " ".join(t.lower().split())
