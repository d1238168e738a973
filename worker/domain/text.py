"""Text folding for matching names and addresses typed by people: one rule for gmina
names and property addresses alike.

Case, surrounding and repeated spaces, Polish diacritics (including ``ł``, which has no
Unicode decomposition) and dash variants are ignored.

>>> fold("  Reńska   Wieś ") == fold("renska wies")
True
>>> fold("Głogówek")
'glogowek'
>>> fold("Kędzierzyn – Koźle")
'kedzierzyn-kozle'
>>> fold("ul.  Łąkowa") == fold("UL. Lakowa")
True
>>> fold(None)
''
"""

from __future__ import annotations

import unicodedata

_EXTRA = str.maketrans({"ł": "l", "Ł": "l", "–": "-", "—": "-", "‐": "-", "\u00a0": " "})


def fold(text: str | None) -> str:
    if not text:
        return ""
    t = unicodedata.normalize("NFKD", text.translate(_EXTRA))
    t = "".join(c for c in t if not unicodedata.combining(c))
    t = " ".join(t.casefold().split())
    return t.replace(" - ", "-").replace(" -", "-").replace("- ", "-")
