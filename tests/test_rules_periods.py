"""Fee periods, correction bases and the no-retroactive-decrease rule."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rules.periods import (
    FeePeriod,
    PeriodInput,
    check_retroactive_decrease,
    compute_fee_periods,
    correction_without_base,
    fee_for_month,
    monthly_fee_for,
    select_correction_base,
)
from rules.ruleset import load_ruleset
from tests.test_rules_support import declaration
from worker.domain.model import CHANGE, CORRECTION, FIRST, MIXED, MULTI_FLAT, PAPER

D = Decimal
RS = load_ruleset()
CET = timezone(timedelta(hours=1))


def pin(
    ident: int,
    applies: str,
    filed: str,
    *,
    payer: int = 1,
    purpose: str = FIRST,
    corrects: int | None = None,
    residents=(2,),
    reason: str | None = None,
    **kw,
) -> PeriodInput:
    applies_from = date.fromisoformat(applies)
    filed_at = datetime.fromisoformat(filed)
    if filed_at.tzinfo is None:
        filed_at = filed_at.replace(tzinfo=CET)
    decl = declaration(residents=residents, applies_from=applies_from, purpose=purpose, reason=reason, filed_at=filed_at, **kw)
    return PeriodInput(ident, payer, purpose, applies_from, filed_at, corrects, decl)


def rows(periods):
    return [(p.declaration_id, str(p.valid_from), str(p.valid_to) if p.valid_to else None, str(p.monthly_fee)) for p in periods]


def test_no_declarations_no_periods():
    assert compute_fee_periods([], RS) == []


def test_first_declaration_split_at_the_rate_change():
    periods = compute_fee_periods([pin(1, "2024-11-20", "2024-11-25", residents=(5,))], RS)
    assert rows(periods) == [
        (1, "2024-11-01", "2024-12-31", "154.50"),  # 2023 rates
        (1, "2025-01-01", None, "184.50"),  # 4×38 + 32.50 from the new rates, without a new declaration
    ]
    assert periods[0].payer_id == 1


def test_rate_change_leaving_the_fee_unchanged_does_not_split():
    shop = pin(1, "2024-06-03", "2024-06-05", residents=None, containers=[(240, 1, 26, "40.00", "86.67")])
    assert rows(compute_fee_periods([shop], RS)) == [(1, "2024-06-01", None, "86.67")]
    # a residential rate change with 0 residents does not change anything either
    empty = pin(2, "2024-06-03", "2024-06-05", residents=(0,))
    assert rows(compute_fee_periods([empty], RS)) == [(2, "2024-06-01", None, "0.00")]


def test_mixed_property_changes_with_the_residential_rates_only():
    mixed = pin(1, "2024-10-07", "2024-10-08", residents=(3,), kind=MIXED, containers=[(120, 1, 26, "20.00", "43.33")])
    assert rows(compute_fee_periods([mixed], RS)) == [
        (1, "2024-10-01", "2024-12-31", "139.33"),  # 3×32 + 43.33
        (1, "2025-01-01", None, "157.33"),  # 3×38 + 43.33
    ]


def test_change_applies_from_the_month_of_the_change():
    periods = compute_fee_periods(
        [pin(1, "2025-02-10", "2025-02-12", residents=(4,)),
         pin(2, "2025-05-15", "2025-06-02", purpose=CHANGE, residents=(3,), reason="ZMIANA_LICZBY_MIESZKANCOW")],
        RS,
    )
    assert rows(periods) == [(1, "2025-02-01", "2025-04-30", "152.00"), (2, "2025-05-01", None, "114.00")]


def test_same_month_the_later_filing_wins():
    a = pin(1, "2025-02-03", "2025-02-05", residents=(4,))
    b = pin(2, "2025-02-20", "2025-02-21", purpose=CHANGE, residents=(5,))
    assert rows(compute_fee_periods([b, a], RS)) == [(2, "2025-02-01", None, "184.50")]


def test_correction_with_the_same_date_replaces_the_corrected_declaration():
    x = pin(1, "2025-02-10", "2025-02-12", residents=(4,))
    k = pin(2, "2025-02-10", "2025-03-01", purpose=CORRECTION, corrects=1, residents=(3,))
    assert rows(compute_fee_periods([k, x], RS)) == [(2, "2025-02-01", None, "114.00")]


def test_correction_wins_over_what_it_corrects_even_if_filed_earlier():
    # (clocks of two channels: a paper receipt date may precede the e-filing time)
    x = pin(1, "2025-02-10", "2025-02-12T15:00", residents=(4,))
    k = pin(2, "2025-02-10", "2025-02-12T09:00", purpose=CORRECTION, corrects=1, residents=(3,))
    assert rows(compute_fee_periods([x, k], RS)) == [(2, "2025-02-01", None, "114.00")]
    assert rows(compute_fee_periods([k, x], RS)) == [(2, "2025-02-01", None, "114.00")]


def test_correction_from_a_later_day_replaces_the_data_from_then_on():
    x = pin(1, "2025-02-10", "2025-02-12", residents=(4,))
    k = pin(2, "2025-04-01", "2025-06-01", purpose=CORRECTION, corrects=1, residents=(3,))
    y = pin(3, "2025-08-10", "2025-08-11", purpose=CHANGE, residents=(6,))
    assert rows(compute_fee_periods([y, k, x], RS)) == [
        (1, "2025-02-01", "2025-03-31", "152.00"),
        (2, "2025-04-01", "2025-07-31", "114.00"),
        (3, "2025-08-01", None, "211.00"),
    ]


def test_correction_of_an_old_declaration_filed_after_a_change_keeps_the_change():
    x = pin(1, "2025-01-10", "2025-01-12", residents=(4,))
    y = pin(2, "2025-05-10", "2025-05-12", purpose=CHANGE, residents=(2,))
    k = pin(3, "2025-01-10", "2025-09-01", purpose=CORRECTION, corrects=1, residents=(5,))
    assert rows(compute_fee_periods([k, y, x], RS)) == [
        (3, "2025-01-01", "2025-04-30", "184.50"),
        (2, "2025-05-01", None, "76.00"),
    ]


def test_sale_ends_the_sellers_periods_and_the_buyer_takes_over():
    seller = pin(1, "2025-01-05", "2025-01-06", payer=1, residents=(2,))
    sale = pin(2, "2025-06-20", "2025-07-01", payer=1, purpose=CHANGE, reason="ZBYCIE_NIERUCHOMOSCI", residents=(2,))
    assert rows(compute_fee_periods([sale, seller], RS)) == [
        (1, "2025-01-01", "2025-05-31", "76.00"),
        (2, "2025-06-01", None, "0.00"),
    ]
    buyer = pin(3, "2025-08-01", "2025-08-05", payer=2, residents=(4,))
    periods = compute_fee_periods([buyer, sale, seller], RS)
    assert rows(periods) == [
        (1, "2025-01-01", "2025-05-31", "76.00"),
        (2, "2025-06-01", "2025-07-31", "0.00"),
        (3, "2025-08-01", None, "152.00"),
    ]
    assert [p.payer_id for p in periods] == [1, 1, 2]


def test_sale_does_not_cut_off_a_buyer_who_declared_first():
    seller = pin(1, "2025-01-05", "2025-01-06", payer=1, residents=(2,))
    buyer = pin(3, "2025-06-25", "2025-06-26", payer=2, residents=(4,))
    late_sale = pin(2, "2025-06-20", "2025-07-09", payer=1, purpose=CHANGE, reason="ZBYCIE_NIERUCHOMOSCI")
    early_sale = replace(late_sale, filed_at=datetime(2025, 6, 21, tzinfo=CET))
    expected = [(1, "2025-01-01", "2025-05-31", "76.00"), (3, "2025-06-01", None, "152.00")]
    assert rows(compute_fee_periods([seller, buyer, late_sale], RS)) == expected
    assert rows(compute_fee_periods([seller, buyer, early_sale], RS)) == expected


def test_sale_by_someone_who_never_declared_has_no_effect():
    sale = pin(2, "2025-06-20", "2025-07-01", payer=9, purpose=CHANGE, reason="ZBYCIE_NIERUCHOMOSCI")
    assert compute_fee_periods([sale], RS) == []
    owner = pin(1, "2025-01-05", "2025-01-06", payer=1, residents=(2,))
    assert rows(compute_fee_periods([owner, sale], RS)) == [(1, "2025-01-01", None, "76.00")]


def test_months_without_rates_charge_the_declared_fee():
    old = pin(1, "2022-06-15", "2022-06-20", residents=(2,), lines=[("osoby 1-4", 2, "30.00", "60.00")])
    assert rows(compute_fee_periods([old], RS)) == [
        (1, "2022-06-01", "2022-12-31", "60.00"),
        (1, "2023-01-01", "2024-12-31", "64.00"),
        (1, "2025-01-01", None, "76.00"),
    ]


def test_fee_for_month():
    periods = compute_fee_periods([pin(1, "2024-11-20", "2024-11-25", residents=(5,))], RS)
    assert fee_for_month(periods, date(2024, 10, 31)) is None
    assert fee_for_month(periods, date(2024, 12, 31)) == D("154.50")
    assert fee_for_month(periods, date(2031, 1, 1)) == D("184.50")


# --------------------------------------------------------------------------- order independence

REASONS = [None, "ZMIANA_LICZBY_MIESZKANCOW", "ZBYCIE_NIERUCHOMOSCI", "SMIERC_MIESZKANCA"]


@st.composite
def property_history(draw):
    n = draw(st.integers(min_value=1, max_value=7))
    items = []
    shared_times = [datetime(2025, 3, 1, 12, tzinfo=CET), datetime(2024, 12, 31, 23, 59, tzinfo=UTC)]
    for i in range(n):
        purpose = draw(st.sampled_from([FIRST, CHANGE, CORRECTION]))
        applies = draw(st.dates(min_value=date(2022, 10, 1), max_value=date(2026, 6, 30)))
        if draw(st.booleans()):
            filed = draw(st.sampled_from(shared_times))  # ties in filing time
        else:
            filed = datetime.combine(applies, datetime.min.time(), CET) + timedelta(
                days=draw(st.integers(0, 400)), minutes=draw(st.integers(0, 1439))
            )
        corrects = draw(st.sampled_from([None] + list(range(i)))) if purpose == CORRECTION else None
        reason = draw(st.sampled_from(REASONS)) if purpose == CHANGE else None
        shape = draw(st.sampled_from(["house", "flats", "shop", "mixed", "odd"]))
        kw: dict = {}
        if shape == "house":
            kw = dict(residents=(draw(st.integers(0, 9)),), composting=draw(st.booleans()))
        elif shape == "flats":
            kw = dict(residents=tuple(draw(st.lists(st.integers(0, 7), min_size=1, max_size=4))), building=MULTI_FLAT)
        elif shape == "shop":
            kw = dict(residents=None, containers=[(draw(st.sampled_from([120, 240, 660, 1100])), draw(st.integers(1, 3)),
                                                   draw(st.sampled_from([4, 12, 26, 52])), "0.00", "0.00")])
        elif shape == "mixed":
            kw = dict(residents=(draw(st.integers(1, 6)),), kind=MIXED, containers=[(120, 1, 26, "20.00", "43.33")])
        else:  # an unknown container: priced at the declared fee
            kw = dict(residents=None, containers=[(200, 1, 12, "30.00", "30.00")], monthly=str(draw(st.integers(0, 500))))
        decl = declaration(applies_from=applies, purpose=purpose, reason=reason, filed_at=filed, **kw)
        decl = replace(decl, justification=f"dokument {i}")  # every document is distinct
        payer = draw(st.sampled_from([1, 2]))
        items.append((payer, purpose, applies, filed, corrects, decl))
    return items


def as_inputs(history, arrival):
    """Ids are assigned in arrival order, as the database does."""
    ids = {orig: pos + 100 for pos, orig in enumerate(arrival)}
    out = []
    for orig in arrival:
        payer, purpose, applies, filed, corrects, decl = history[orig]
        out.append(PeriodInput(ids[orig], payer, purpose, applies, filed, ids[corrects] if corrects is not None else None, decl))
    back = {v: k for k, v in ids.items()}
    return out, back


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history=property_history(), data=st.data())
def test_fee_periods_do_not_depend_on_arrival_order(history, data):
    order_a = list(range(len(history)))
    order_b = data.draw(st.permutations(order_a))
    inputs_a, back_a = as_inputs(history, order_a)
    inputs_b, back_b = as_inputs(history, order_b)
    periods_a = compute_fee_periods(inputs_a, RS)
    periods_b = compute_fee_periods(list(reversed(inputs_b)), RS)
    normal_a = [(back_a[p.declaration_id], p.payer_id, p.valid_from, p.valid_to, p.monthly_fee) for p in periods_a]
    normal_b = [(back_b[p.declaration_id], p.payer_id, p.valid_from, p.valid_to, p.monthly_fee) for p in periods_b]
    assert normal_a == normal_b

    # and the periods are well-formed: monthly, contiguous, the last one open, priced by month
    by_id = {i.declaration_id: i for i in inputs_a}
    for k, p in enumerate(periods_a):
        assert p.valid_from.day == 1
        if k + 1 < len(periods_a):
            nxt = periods_a[k + 1]
            assert p.valid_to is not None and p.valid_to + timedelta(days=1) == nxt.valid_from
            assert (p.declaration_id, p.monthly_fee) != (nxt.declaration_id, nxt.monthly_fee)
        else:
            assert p.valid_to is None
        assert p.monthly_fee >= 0
        src = by_id[p.declaration_id]
        assert p.valid_from >= src.applies_from.replace(day=1)
        assert monthly_fee_for(src, RS, p.valid_from) == p.monthly_fee
        if p.valid_to is not None:
            assert monthly_fee_for(src, RS, p.valid_to) == p.monthly_fee
    if periods_a:
        assert periods_a[0].valid_from == min(i.applies_from for i in inputs_a if not i.is_sale).replace(day=1)


# --------------------------------------------------------------------------- correction base


def test_correction_base_with_the_same_date():
    x = pin(1, "2025-02-10", "2025-02-12")
    y = pin(2, "2025-05-10", "2025-05-12", purpose=CHANGE)
    k = pin(3, "2025-02-10", "2025-09-01", purpose=CORRECTION)
    assert select_correction_base(k, [y, x]) == 1
    assert select_correction_base(k, [y, x, k]) == 1  # itself is never its base


def test_correction_base_falls_back_to_the_one_in_force():
    x = pin(1, "2025-02-10", "2025-02-12")
    y = pin(2, "2025-05-10", "2025-05-12", purpose=CHANGE)
    z = pin(4, "2025-09-10", "2025-09-12", purpose=CHANGE)
    k = pin(3, "2025-07-01", "2025-09-01", purpose=CORRECTION)
    assert select_correction_base(k, [z, x, y]) == 2
    early = pin(5, "2025-01-01", "2025-09-01", purpose=CORRECTION)
    assert select_correction_base(early, [z, x, y]) is None


def test_correction_base_is_only_the_same_payers():
    x = pin(1, "2025-02-10", "2025-02-12", payer=1)
    k = pin(3, "2025-02-10", "2025-03-01", purpose=CORRECTION, payer=2)
    assert select_correction_base(k, [x]) is None
    assert select_correction_base(replace(k, payer_id=None), [replace(x, payer_id=None)]) is None


def test_correction_without_base_finding():
    f = correction_without_base()
    assert (f.code, f.severity, f.field) == ("CORRECTION_WITHOUT_BASE", "warning", "CelZlozenia/Rodzaj")
    assert correction_without_base(PAPER).field == "cel.rodzaj"
    assert "korektą" in f.message


# --------------------------------------------------------------------------- retroactive decrease


def history_of_four():
    return compute_fee_periods([pin(1, "2024-11-05", "2024-11-06", residents=(4,))], RS)


def test_retroactive_decrease_is_found():
    previous = history_of_four()  # 128.00 in 2024, 152.00 from 2025
    new = pin(2, "2025-01-10", "2025-03-15", purpose=CHANGE, residents=(3,), reason="ZMIANA_LICZBY_MIESZKANCOW")
    (f,) = check_retroactive_decrease(new, previous, RS)
    assert (f.code, f.severity) == ("RETROACTIVE_DECREASE", "warning")
    assert "2025-01–2025-02" in f.message and "152,00 zł" in f.message and "114,00 zł" in f.message


def test_decrease_from_the_filing_month_on_is_fine():
    new = pin(2, "2025-03-01", "2025-03-15", purpose=CHANGE, residents=(3,))
    assert check_retroactive_decrease(new, history_of_four(), RS) == []


def test_retroactive_increase_is_fine():
    new = pin(2, "2025-01-10", "2025-03-15", purpose=CHANGE, residents=(5,))
    assert check_retroactive_decrease(new, history_of_four(), RS) == []


def test_a_death_reported_within_six_months_may_lower_the_fee_retroactively():
    death = dict(purpose=CHANGE, residents=(3,), reason="SMIERC_MIESZKANCA")
    assert check_retroactive_decrease(pin(2, "2025-01-10", "2025-07-10", **death), history_of_four(), RS) == []
    (f,) = check_retroactive_decrease(pin(2, "2025-01-10", "2025-07-11", **death), history_of_four(), RS)
    assert "śmierci" in f.message


def test_sale_reported_late_lowers_retroactively():
    new = pin(2, "2025-01-10", "2025-04-02", purpose=CHANGE, reason="ZBYCIE_NIERUCHOMOSCI")
    (f,) = check_retroactive_decrease(new, history_of_four(), RS)
    assert "0,00 zł" in f.message and "2025-01–2025-03" in f.message


def test_retroactive_rule_applies_to_changes_only_and_needs_a_filing_time():
    previous = history_of_four()
    assert check_retroactive_decrease(pin(2, "2025-01-10", "2025-03-15", purpose=CORRECTION, residents=(1,)), previous, RS) == []
    assert check_retroactive_decrease(pin(2, "2025-01-10", "2025-03-15", purpose=FIRST, residents=(1,)), previous, RS) == []
    no_time = replace(pin(2, "2025-01-10", "2025-03-15", purpose=CHANGE, residents=(1,)), filed_at=None)
    assert check_retroactive_decrease(no_time, previous, RS) == []
    assert check_retroactive_decrease(no_time, previous, RS, filed_at=date(2025, 3, 15))  # given explicitly


def test_previous_fee_may_be_a_function():
    new = pin(2, "2024-12-10", "2025-02-15", purpose=CHANGE, residents=(3,))
    seen = []

    def before(month):
        seen.append(month)
        return D("200.00") if month.year == 2025 else None

    (f,) = check_retroactive_decrease(new, before, RS)
    assert seen == [date(2024, 12, 1), date(2025, 1, 1)]
    assert "2025-01 " in f.message and "200,00 zł" in f.message


@pytest.mark.parametrize("periods", [[], [FeePeriod(1, 1, date(2025, 6, 1), None, D("10.00"))]])
def test_nothing_charged_before_means_no_decrease(periods):
    new = pin(2, "2025-01-10", "2025-05-15", purpose=CHANGE, residents=(0,))
    assert check_retroactive_decrease(new, periods, RS) == []
