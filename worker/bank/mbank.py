"""mBank's own ``:86:`` format: labelled parts separated by ``; ``.

``911 TRANSAKCJA COLLECT; ID IPH: XX000000000001; Z RACH.: 5611…; OD: JAN NOWAK  UL. NIJAKA 1
M 2 31-234 KRAKOW; TYT.: PRZELEW SRODKOW   ; TNR: 179171073864111.010001`` — the parts
come in this order, the lines of the ``:86:`` are broken anywhere (even inside the TNR: the
caller joins them as given). ``ID IPH`` is the identifier part of the virtual account,
X-masked; ``TNR`` identifies the transaction (the same in MT940 and MT942); ``OD`` holds the
payer's name and address in one (the name ends at the first run of two blanks, the layout
of mBank's samples — *inference*; without one, the whole part).

>>> p = parse_labels("911 TRANSAKCJA COLLECT; ID IPH: XX000000000001; Z RACH.: 561140; OD: JAN NOWAK  UL. NIJAKA 1; TYT.: PRZELEW   SRODKOW   ; TNR: 1791710738\\n64111.010001")
>>> p["ID IPH"], p["TNR"], title(p), payer_name(p)
('XX000000000001', '179171073864111.010001', 'PRZELEW SRODKOW', 'JAN NOWAK')
"""

from __future__ import annotations

import re

from worker.bank.zbp import fold_blanks

LABELS = ("ID IPH", "Z RACH.", "OD", "TYT.", "TNR")
_UNBROKEN = ("ID IPH", "Z RACH.", "TNR")  # identifiers: line breaks and blanks inside are removed


def _label_pattern(labels: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile(r"(?:^|;)\s*(" + "|".join(re.escape(label) for label in labels) + r")\s*:")


_LABEL = _label_pattern(LABELS)


def has_labels(text: str) -> bool:
    return _LABEL.search(text) is not None


def parse_labels(text: str, extra: tuple[str, ...] = ()) -> dict[str, str]:
    """The labelled parts of an mBank ``:86:`` (the first occurrence of each label);
    ``extra``: further labels to recognise (a configured ``mt940-86-label:…``), whose
    values are identifiers like ``ID IPH`` (blanks removed)."""
    pattern = _label_pattern(LABELS + tuple(e for e in extra if e not in LABELS)) if extra else _LABEL
    found = list(pattern.finditer(text))
    out: dict[str, str] = {}
    for i, m in enumerate(found):
        end = found[i + 1].start() if i + 1 < len(found) else len(text)
        value = text[m.end() : end]
        label = m.group(1)
        if label in out:
            continue
        unbroken = label in _UNBROKEN or label in extra
        out[label] = re.sub(r"\s+", "", value) if unbroken else value.replace("\n", "").replace("\r", "")
    return out


def title(parts: dict[str, str]) -> str | None:
    return fold_blanks(parts.get("TYT.", "")) or None


def payer_name(parts: dict[str, str]) -> str | None:
    who = parts.get("OD", "").strip()
    return fold_blanks(re.split(r"\s{2,}", who, maxsplit=1)[0]) or None


__all__ = ["LABELS", "has_labels", "parse_labels", "payer_name", "title"]
