"""How people see values: the one formatting helper for everything a clerk or an
administrator reads (review, check, reprocess, status, scan, monitoring).

Dates and times are shown in Polish time (Europe/Warsaw) whatever the database holds
(UTC); logs keep UTC. Money has two decimals and a decimal comma (``174,50 zł``). A
missing value is a dash, never ``None``.

>>> from datetime import datetime, timezone
>>> datetime_local(datetime(2025, 1, 30, 23, 0, tzinfo=timezone.utc))
'2025-01-31 00:00'
>>> date_local(datetime(2025, 1, 30, 23, 0, tzinfo=timezone.utc))
'2025-01-31'
>>> money("174.5"), money(None)
('174,50 zł', '—')
>>> field(None), field(""), field("skladajacy.pesel")
('—', '—', 'skladajacy.pesel')
>>> count(1, "dokument", "dokumenty", "dokumentów"), count(3, "dokument", "dokumenty", "dokumentów"), count(12, "dokument", "dokumenty", "dokumentów")
('1 dokument', '3 dokumenty', '12 dokumentów')
>>> duration(59), duration(3700), duration(90000)
('59 s', '1 h 1 min', '1 d 1 h')
>>> size(40), size(2048), size(3 * 1024 * 1024 + 512 * 1024), size(None)
('40 B', '2,0 KiB', '3,5 MiB', '—')
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from worker.domain.clock import WARSAW

LOCAL = WARSAW
DASH = "—"


def _aware(value: datetime | str) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def local(value: datetime | str) -> datetime:
    """The moment in Polish time (a naive value is taken as UTC, as the database stores it)."""
    return _aware(value).astimezone(LOCAL)


def datetime_local(value: datetime | str | None, *, seconds: bool = False) -> str:
    if value is None or value == "":
        return DASH
    return local(value).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def date_local(value: datetime | date | str | None) -> str:
    """A date; a moment is first turned into Polish time (a paper form received on
    2025-01-31 is stored as 2025-01-30 23:00 UTC)."""
    if value is None or value == "":
        return DASH
    if isinstance(value, datetime) or (isinstance(value, str) and ("T" in value or " " in value)):
        return local(value).strftime("%Y-%m-%d")
    if isinstance(value, str):
        return value
    return value.strftime("%Y-%m-%d")


def money(value: Any) -> str:
    if value is None or value == "":
        return DASH
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return str(value)
    return f"{amount:,.2f}".replace(",", " ").replace(".", ",") + " zł"


def field(path: str | None) -> str:
    """A finding's field path (the form's or the scan's name), dash when the finding has none."""
    return path or DASH


def text(value: Any) -> str:
    """Any optional value for people: dash for nothing."""
    if value is None or value == "":
        return DASH
    return str(value)


def count(n: int, one: str, few: str, many: str) -> str:
    """``n`` with the Polish plural form of the noun."""
    if n == 1:
        word = one
    elif n % 10 in (2, 3, 4) and n % 100 not in (12, 13, 14):
        word = few
    else:
        word = many
    return f"{n} {word}"


def size(n: int | None) -> str:
    """A size in bytes for people: ``512 B``, ``2,0 KiB``, ``3,5 MiB``, ``1,2 GiB``."""
    if n is None:
        return DASH
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}".replace(".", ",")
        value /= 1024
    return f"{n} B"  # pragma: no cover


def duration(seconds: float) -> str:
    s = int(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60} min"
    return f"{s // 86400} d {s % 86400 // 3600} h"


STATUS_PL = {
    "ACCEPTED": "przyjęta",
    "NEEDS_REVIEW": "do weryfikacji",
    "REJECTED": "odrzucona",
    "SUPERSEDED": "zastąpiona korektą",
    "FAILED": "błąd techniczny",
    "FETCHING": "czeka na załączniki z ePUAP",
    "RECEIVED": "oczekuje",
    "PROCESSING": "w trakcie",
    "CORRESPONDENCE": "korespondencja",
    "TEST": "dokument testowy",
}


def status(value: str | None) -> str:
    """An outcome or state in Polish with its English code: ``przyjęta (ACCEPTED)``."""
    if not value:
        return DASH
    pl = STATUS_PL.get(value)
    return f"{pl} ({value})" if pl else value


_LABELS = {
    "purpose": {"FIRST": "pierwsza", "CHANGE": "zmiana", "CORRECTION": "korekta"},
    "channel": {"EPUAP": "ePUAP", "PAPER": "papier (skan)"},
    "signature": {
        "TRUSTED_PROFILE": "podpis zaufany", "QUALIFIED": "podpis kwalifikowany", "PERSONAL": "podpis osobisty",
        "HANDWRITTEN": "podpis odręczny", "NONE": "brak podpisu",
    },
    "signature_status": {"VALID": "ważny", "INVALID": "nieważny", "INDETERMINATE": "nieustalony", "NOT_APPLICABLE": "nie dotyczy"},
}


def label(kind: str, value: str | None) -> str:
    """A code (purpose, channel, signature kind or status) in Polish: ``podpis zaufany``;
    an unknown code is shown as it is, nothing as a dash."""
    if not value:
        return DASH
    return _LABELS[kind].get(value, value)
