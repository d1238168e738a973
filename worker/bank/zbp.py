"""The ``:86:`` of the Polish "ZBP" MT940 variant: an operation code and two-digit subfields.

``:86:020~00PRZELEW~20OPŁATA ZA ODPADY ~21STYCZEŃ~3010901014~31…~32JAN NOWAK``: the first
three characters are the operation code, then each subfield is the mark (``~`` at PKO BP,
ING, mBank's export and mt940-py; ``<``, ``^`` at BiznesPl@net; ``+`` at inordbusiness:
``bank.subfield_mark``) and two digits. The library mt-940 splits only the German ``?NN``
and returns a ZBP ``:86:`` as raw text, so the worker splits it here. A mark not followed by
two digits is text. A subfield given twice keeps its pieces in order.

>>> d = split_subfields("020~00PRZELEW~20OPŁATA ZA   ODPADY ~21STYCZEŃ~32JAN NOWAK~38PL61109010140000071219812874", "~")
>>> d.code, d.fields["00"], d.title, d.name, d.fields["38"]
('020', 'PRZELEW', 'OPŁATA ZA ODPADY STYCZEŃ', 'JAN NOWAK', 'PL61109010140000071219812874')
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

TITLE_FIELDS = tuple(f"{n:02d}" for n in range(20, 29))  # ~20-~25, ING up to ~28
NAME_FIELDS = ("32", "33")


def fold_blanks(text: str) -> str:
    """Runs of blanks folded to one, ends trimmed (banks split titles mid-word, so the
    pieces are joined as given).

    >>> fold_blanks("  PRZELEW   SRODKOW   ")
    'PRZELEW SRODKOW'
    """
    return re.sub(r"\s+", " ", text).strip()


@dataclass(frozen=True)
class Details:
    code: str | None  # the 3-digit operation code at the start, when there is one
    fields: dict[str, str] = field(default_factory=dict)  # subfield -> its pieces joined as given

    @property
    def title(self) -> str | None:
        text = fold_blanks("".join(self.fields.get(n, "") for n in TITLE_FIELDS))
        return text or None

    @property
    def name(self) -> str | None:
        text = fold_blanks("".join(self.fields.get(n, "") for n in NAME_FIELDS))
        return text or None


def split_subfields(text: str, mark: str) -> Details:
    """The operation code and the subfields of a joined ``:86:`` text (no subfield: only
    the code, if any)."""
    code = text[:3] if re.match(r"[0-9]{3}", text) else None
    pattern = re.compile(re.escape(mark) + r"([0-9]{2})")
    found = list(pattern.finditer(text))
    fields: dict[str, str] = {}
    for i, m in enumerate(found):
        end = found[i + 1].start() if i + 1 < len(found) else len(text)
        fields[m.group(1)] = fields.get(m.group(1), "") + text[m.end() : end]
    return Details(code, fields)


def has_subfields(text: str, mark: str) -> bool:
    return re.search(re.escape(mark) + r"[0-9]{2}", text) is not None


__all__ = ["Details", "fold_blanks", "has_subfields", "split_subfields"]
