"""The one formatting helper for people: Polish time, money, dashes instead of None."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from worker import fmt


def test_polish_time_follows_daylight_saving():
    assert fmt.datetime_local(datetime(2025, 7, 1, 22, 30, tzinfo=UTC)) == "2025-07-02 00:30"  # CEST, UTC+2
    assert fmt.datetime_local(datetime(2025, 12, 31, 23, 30, tzinfo=UTC)) == "2026-01-01 00:30"  # CET, UTC+1
    assert fmt.datetime_local("2025-01-30T23:00:00+00:00", seconds=True) == "2025-01-31 00:00:00"
    assert fmt.datetime_local(datetime(2025, 1, 30, 23, 0)) == "2025-01-31 00:00"  # naive = UTC, as stored
    assert fmt.date_local(date(2025, 1, 31)) == "2025-01-31" and fmt.date_local(None) == "—"


def test_money_and_nothing():
    assert fmt.money(Decimal("1234.5")) == "1 234,50 zł" and fmt.money("76.00") == "76,00 zł" and fmt.money(0) == "0,00 zł"
    assert {fmt.text(None), fmt.money(None), fmt.datetime_local(None), fmt.label("signature", None), fmt.status(None)} == {"—"}
    assert fmt.status("NEEDS_REVIEW") == "do weryfikacji (NEEDS_REVIEW)" and fmt.label("signature", "TRUSTED_PROFILE") == "podpis zaufany"
