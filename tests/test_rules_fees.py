"""The fee calculator against the union's published figures and samples."""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rules.fees import compute_fee, container_amount
from rules.ruleset import load_ruleset
from tests.test_rules_support import declaration, declaration_from_sample
from worker.domain.model import MIXED, MULTI_FLAT, NON_RESIDENTIAL, SINGLE_FAMILY

D = Decimal
RS = load_ruleset()


# the union's published 2023 totals for one dwelling (fee-rules.md)
PUBLISHED_2023 = {1: "32.00", 2: "64.00", 3: "96.00", 4: "128.00", 5: "154.50",
                  6: "175.00", 7: "195.50", 8: "216.00", 9: "236.50", 10: "257.00"}


@pytest.mark.parametrize("persons, total", sorted(PUBLISHED_2023.items()))
def test_published_2023_totals(persons, total):
    comp = compute_fee(declaration(residents=(persons,), applies_from=date(2023, 6, 1)), RS)
    assert comp.total == D(total)
    assert str(comp.total) == total  # exact to the grosz, two places
    assert comp.residential_rates.valid_from == date(2023, 1, 1)


def test_worked_2025_example_house_five_residents_composting():
    comp = compute_fee(declaration(residents=(5,), composting=True, applies_from=date(2025, 1, 20)), RS)
    assert comp.total == D("174.50")
    assert comp.residential_gross == D("184.50") and comp.composting_discount == D("10.00")
    assert [(t.label, t.persons, t.rate, t.amount) for t in comp.tier_lines] == [
        ("osoby 1-4", 4, D("38.00"), D("152.00")),
        ("osoba 5", 1, D("32.50"), D("32.50")),
    ]
    text = "\n".join(comp.explanation)
    assert "Zwolnienie za kompostownik: 5 × 2,00 zł = −10,00 zł" in text
    assert "Opłata miesięczna: 174,50 zł" in text


def test_rates_follow_the_day_the_declaration_applies_from():
    d = declaration(residents=(6,))
    assert compute_fee(d, RS, on=date(2024, 12, 31)).total == D("175.00")
    assert compute_fee(d, RS, on=date(2025, 1, 1)).total == D("211.00")  # 4×38 + 32.50 + 26.50
    assert compute_fee(declaration(residents=(6,), applies_from=date(2025, 5, 5)), RS).total == D("211.00")


def test_multi_flat_tiers_restart_in_each_flat():
    comp = compute_fee(declaration(residents=(5, 2, 0), building=MULTI_FLAT, applies_from=date(2025, 6, 2)), RS)
    assert comp.total == D("260.50")  # (4×38.00 + 32.50) + 2×38.00 + 0
    # one line per tier, persons summed over the flats (the form's shape)
    assert [(t.label, t.persons, t.amount) for t in comp.tier_lines] == [
        ("osoby 1-4", 6, D("228.00")),
        ("osoba 5", 1, D("32.50")),
    ]
    assert any(line.startswith("Lokal 1: 5 osób") for line in comp.explanation)


def test_the_same_residents_cost_more_in_one_house_than_split_into_flats():
    house = compute_fee(declaration(residents=(7,), applies_from=date(2025, 2, 1)), RS)
    flats = compute_fee(declaration(residents=(4, 3), building=MULTI_FLAT, applies_from=date(2025, 2, 1)), RS)
    assert house.total == D("237.50")  # 4×38 + 32.50 + 2×26.50
    assert flats.total == D("266.00")  # 7×38


def test_single_family_house_is_one_dwelling_even_with_several_lokal_elements():
    one = compute_fee(declaration(residents=(3, 3), building=SINGLE_FAMILY, applies_from=date(2025, 2, 1)), RS)
    assert one.total == D("211.00")


def test_composting_discount_only_for_residential_single_family():
    multi = compute_fee(declaration(residents=(3, 2), building=MULTI_FLAT, composting=True), RS)
    assert multi.composting_discount == D("0.00") and multi.total == D("190.00")
    assert any("nie przysługuje" in line for line in multi.explanation)
    mixed = compute_fee(
        declaration(residents=(3,), kind=MIXED, composting=True, containers=[(120, 1, 26, "20.00", "43.33")]), RS
    )
    assert mixed.composting_discount == D("0.00") and mixed.total == D("157.33")


@pytest.mark.parametrize(
    "count, capacity, emptyings, amount",
    [
        (2, 240, 52, "346.67"),  # 346.666… half-up
        (1, 1100, 26, "396.50"),
        (1, 120, 26, "43.33"),  # 43.333…
        (1, 120, 12, "20.00"),
        (3, 660, 4, "110.00"),  # less than monthly
        (1, 120, 3, "5.00"),
        (1, 240, 1, "3.33"),
        (1, 120, 9, "15.00"),
        (1, 660, 1, "9.17"),  # 9.1666…
        (1, 1100, 2, "30.50"),
        (1, 240, 15, "50.00"),
        (1, 120, 1, "1.67"),  # 1.666… → up
    ],
)
def test_container_line_is_rounded_half_up_to_the_grosz(count, capacity, emptyings, amount):
    rate = RS.container_rates(date(2025, 1, 1)).rate_for(capacity)
    assert container_amount(count, rate, emptyings) == D(amount)


def test_half_grosz_rounds_up():
    # 1 × 0.05 × 1 / 12 = 0.0041…; 3 × 0.02 × 1 /12 = 0.005 exactly → 0.01
    assert container_amount(3, D("0.02"), 1) == D("0.01")
    assert container_amount(1, D("0.06"), 1) == D("0.01")  # 0.005 → 0.01
    assert container_amount(1, D("0.05"), 1) == D("0.00")  # 0.00416…


def test_non_residential_sample_743_17():
    comp = compute_fee(
        declaration(residents=None, containers=[(240, 2, 52, "40.00", "346.67"), (1100, 1, 26, "183.00", "396.50")],
                    applies_from=date(2025, 7, 1)),
        RS,
    )
    assert [c.amount for c in comp.container_lines] == [D("346.67"), D("396.50")]
    assert comp.non_residential == comp.total == D("743.17")
    assert comp.residential is None and comp.composting_discount is None


def test_mixed_sample_157_33():
    comp = compute_fee(
        declaration(residents=(3,), kind=MIXED, containers=[(120, 1, 26, "20.00", "43.33")], applies_from=date(2025, 8, 4)),
        RS,
    )
    assert (comp.residential, comp.non_residential, comp.total) == (D("114.00"), D("43.33"), D("157.33"))


def test_unknown_container_makes_the_total_not_computable():
    comp = compute_fee(
        declaration(residents=(2,), kind=MIXED, containers=[(200, 1, 12, "30.00", "30.00"), (120, 1, 12, "20.00", "20.00")]),
        RS,
    )
    assert comp.unknown_capacities == (200,)
    assert comp.residential == D("76.00")  # what can be computed is
    assert comp.container_lines[1].amount == D("20.00")
    assert comp.non_residential is None and comp.total is None


def test_no_rates_before_the_first_table():
    comp = compute_fee(declaration(residents=(2,), applies_from=date(2022, 6, 1)), RS)
    assert comp.total is None and comp.residential is None
    assert "Brak stawek" in comp.explanation[0]


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(residents=(0,)),  # NO_RESIDENTS is another check's business
        dict(residents=()),
        dict(residents=None, kind=MIXED, containers=[]),
        dict(residents=None, containers=None, kind=NON_RESIDENTIAL),
        dict(residents=(2,), kind=NON_RESIDENTIAL, containers=[(120, 1, 12, "20.00", "20.00")]),  # PART_MISSING's case
        dict(residents=(-3, 2), building=MULTI_FLAT),
        dict(residents=(3,), building=None, composting=True),
    ],
)
def test_odd_declarations_do_not_crash(kwargs):
    comp = compute_fee(declaration(**kwargs), RS)
    assert comp.explanation
    assert comp.total is None or comp.total >= 0


def test_zero_residents_cost_nothing():
    assert compute_fee(declaration(residents=(0,)), RS).total == D("0.00")


@settings(max_examples=150, deadline=None)
@given(flats=st.lists(st.integers(min_value=0, max_value=30), min_size=1, max_size=12),
       on=st.dates(min_value=date(2023, 1, 1), max_value=date(2027, 12, 31)))
def test_multi_flat_fee_is_the_sum_of_its_flats(flats, on):
    whole = compute_fee(declaration(residents=flats, building=MULTI_FLAT, applies_from=on), RS).total
    parts = [compute_fee(declaration(residents=(n,), applies_from=on), RS).total for n in flats]
    assert whole == sum(parts, D("0.00"))
    assert whole.as_tuple().exponent == -2


@settings(max_examples=100, deadline=None)
@given(n=st.integers(min_value=1, max_value=60))
def test_each_further_resident_costs_their_tier_rate(n):
    on = date(2025, 1, 1)
    rates = RS.residential_rates(on)
    before = compute_fee(declaration(residents=(n - 1,), applies_from=on), RS).total
    after = compute_fee(declaration(residents=(n,), applies_from=on), RS).total
    tier = next(t for t in rates.tiers if t.first_person <= n and (t.last_person is None or n <= t.last_person))
    assert after - before == tier.rate


# --------------------------------------------------------------------------- the union's samples


def test_signed_samples_compute_their_expected_fees(shared_dir):
    signed = shared_dir / "spec" / "samples" / "signed"
    expected = json.loads((signed / "expected.json").read_text(encoding="utf-8"))
    assert len(expected) == 6
    for item in expected:
        decl = declaration_from_sample(signed / item["file"], datetime.fromisoformat(item["filed_at"]))
        comp = compute_fee(decl, RS)
        assert comp.total is not None and f"{comp.total:.2f}" == item["computed_fee"], item["file"]
        assert decl.monthly_fee == D(item["declared_fee"])


def test_unsigned_sample_is_the_worked_example(shared_dir):
    decl = declaration_from_sample(shared_dir / "spec" / "samples" / "do1-2025-pierwsza-jednorodzinna.unsigned.xml")
    assert compute_fee(decl, RS).total == D("174.50") == decl.monthly_fee
