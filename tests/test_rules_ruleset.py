"""The union's rule set: packaged data, look-ups by date, and validation at start-up."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from rules.ruleset import RuleSetError, fold_name, load_ruleset, loads_ruleset

D = Decimal
PACKAGED = Path(__file__).resolve().parent.parent / "rules" / "czysty-region.toml"


@pytest.fixture(scope="module")
def rs():
    return load_ruleset()


def packaged_text() -> str:
    return PACKAGED.read_text(encoding="utf-8")


def variant(old: str, new: str) -> str:
    text = packaged_text()
    assert old in text, old
    return text.replace(old, new, 1)


def refused(text: str) -> str:
    with pytest.raises(RuleSetError) as info:
        loads_ruleset(text, source="test.toml")
    message = str(info.value)
    assert "\n" not in message and message.startswith("test.toml: ")
    return message


# --------------------------------------------------------------------------- packaged data


def test_default_is_the_packaged_file(rs):
    from_path = load_ruleset(PACKAGED)
    assert from_path.source == str(PACKAGED)
    assert (rs.memberships, rs.residential, rs.containers, rs.statutory, rs.deadlines) == (
        from_path.memberships, from_path.residential, from_path.containers, from_path.statutory, from_path.deadlines)


@pytest.mark.parametrize(
    "written, canonical",
    [
        ("Kedzierzyn-Kozle", "Kędzierzyn-Koźle"),
        ("  KĘDZIERZYN-KOŹLE  ", "Kędzierzyn-Koźle"),
        ("kedzierzyn - kozle", "Kędzierzyn-Koźle"),
        ("Renska Wies", "Reńska Wieś"),
        ("pawlowiczki", "Pawłowiczki"),
        ("LESNICA", "Leśnica"),
        ("tarnow   opolski", "Tarnów Opolski"),
        ("Dobrodzien", "Dobrodzień"),
        ("Glogowek", "Głogówek"),
    ],
)
def test_gmina_names_match_without_case_spaces_and_diacritics(rs, written, canonical):
    assert rs.canonical_gmina(written) == canonical


@pytest.mark.parametrize("written", ["Opole", "", "   ", "Kędzierzyn", "Krapkowice Wielkie"])
def test_unknown_gminas_have_no_canonical_name(rs, written):
    assert rs.canonical_gmina(written) is None


def test_all_eleven_founding_members_and_the_joiners(rs):
    founders = [
        "Cisek", "Izbicko", "Kędzierzyn-Koźle", "Kolonowskie", "Leśnica", "Pawłowiczki",
        "Polska Cerekiew", "Reńska Wieś", "Ujazd", "Walce", "Zdzieszowice",
    ]
    for name in founders:
        assert rs.is_member(name, date(2010, 1, 1)) and rs.is_member(name, date(2030, 1, 1)), name
    joins = {"Dobrodzień": date(2021, 1, 1), "Gogolin": date(2022, 1, 1),
             "Tarnów Opolski": date(2022, 4, 1), "Zawadzkie": date(2023, 12, 1)}
    for name, joined in joins.items():
        assert not rs.is_member(name, date.fromordinal(joined.toordinal() - 1)), name
        assert rs.is_member(name, joined), name


def test_former_members_are_not_members_after_they_left(rs):
    for name, left in {"Krapkowice": date(2014, 1, 1), "Bierawa": date(2015, 1, 1),
                       "Głogówek": date(2014, 1, 1), "Strzeleczki": date(2014, 1, 1)}.items():
        assert rs.is_member(name, date.fromordinal(left.toordinal() - 1)), name
        assert not rs.is_member(name, left), name
        assert not rs.is_member(name, date(2025, 3, 1)), name


def test_rates_in_force_by_date(rs):
    assert rs.residential_rates(date(2022, 12, 31)) is None
    r23 = rs.residential_rates(date(2024, 12, 31))
    r25 = rs.residential_rates(date(2025, 1, 1))
    assert [t.rate for t in r23.tiers] == [D("32.00"), D("26.50"), D("20.50")]
    assert [t.rate for t in r25.tiers] == [D("38.00"), D("32.50"), D("26.50")]
    assert [t.label for t in r25.tiers] == ["osoby 1-4", "osoba 5", "osoby 6 i kolejne"]
    assert r23.composting_discount == r25.composting_discount == D("2.00")
    c = rs.container_rates(date(2025, 7, 1))
    assert dict(c.rates) == {120: D("20.00"), 240: D("40.00"), 660: D("110.00"), 1100: D("183.00")}
    assert c.rate_for(200) is None
    assert rs.rate_change_dates() == (date(2023, 1, 1), date(2025, 1, 1))


def test_rates_are_exact_decimals(rs):
    for table in rs.residential:
        for tier in table.tiers:
            assert isinstance(tier.rate, Decimal)
    for table in rs.containers:
        assert all(isinstance(v, Decimal) for v in table.rates.values())


@pytest.mark.parametrize(
    "on, per_resident, per_120l",
    [  # the table of fee-rules.md
        (date(2022, 4, 1), "41.23", "26.80"),
        (date(2023, 4, 1), "44.99", "29.24"),
        (date(2024, 4, 1), "53.56", "34.81"),
        (date(2025, 3, 31), "63.34", "41.17"),
        (date(2023, 1, 1), "41.23", "26.80"),  # "a rate in force from 2023-01-01 is checked against the base of 2021"
        (date(2025, 1, 1), "53.56", "34.81"),
    ],
)
def test_statutory_maxima_truncated_to_the_grosz(rs, on, per_resident, per_120l):
    assert rs.statutory.max_per_resident(on) == D(per_resident)
    assert rs.statutory.max_per_container(120, on) == D(per_120l)


def test_container_maxima_are_proportional_to_capacity(rs):
    m = rs.statutory
    on = date(2023, 1, 1)  # base 2061.93 × 1.3 % = 26.80509 per 120 l
    assert m.max_per_container(1100, on) == D("245.71")  # 26.80509 × 1100/120 = 245.7133…
    assert m.max_per_container(660, on) == D("147.42")
    assert m.max_per_container(60, on) == D("13.40")


def test_fold_name_is_idempotent():
    for name in ["Kędzierzyn-Koźle", "Reńska Wieś", "ŁAŃCUT", " a  b "]:
        assert fold_name(fold_name(name)) == fold_name(name)


# --------------------------------------------------------------------------- refused rule sets


def test_packaged_file_is_accepted_as_text():
    assert loads_ruleset(packaged_text()).name.startswith("Związek Międzygminny")


def test_resident_rate_above_the_maximum_is_refused():
    # a 2023 rate is checked against the 2021 base: maximum 41.23
    ok = loads_ruleset(variant("{ first_person = 1, last_person = 4, rate = 32.00 }",
                               "{ first_person = 1, last_person = 4, rate = 41.23 }"))
    assert ok.residential_rates(date(2023, 1, 1)).tiers[0].rate == D("41.23")
    msg = refused(variant("{ first_person = 1, last_person = 4, rate = 32.00 }",
                          "{ first_person = 1, last_person = 4, rate = 41.24 }"))
    assert "residential table valid from 2023-01-01" in msg
    assert "41.24" in msg and "osoby 1-4" in msg and "statutory maximum 41.23" in msg


def test_container_rate_above_its_proportional_maximum_is_refused():
    msg = refused(variant("240 = 40.00", "240 = 53.62"))  # max 53.61 for 240 l in 2023
    assert "container table valid from 2023-01-01" in msg and "240 l" in msg and "53.61" in msg
    assert loads_ruleset(variant("240 = 40.00", "240 = 53.61")).container_rates(date(2023, 1, 1)).rate_for(240) == D("53.61")


def test_later_table_is_checked_against_the_base_in_force_on_its_first_day():
    extra = (
        "\n[[residential]]\nvalid_from = 2025-03-01\ncomposting_discount = 2.00\n"
        "tiers = [ { first_person = 1, last_person = 4, rate = 53.57 }, { first_person = 5, rate = 30.00 } ]\n"
    )
    msg = refused(packaged_text() + extra)  # before the 2024 base (in force from 2025-03-31): max 53.56
    assert "2025-03-01" in msg and "53.56" in msg
    later = extra.replace("2025-03-01", "2025-04-01")  # base 2024 in force from 2025-03-31: max 63.34
    rs = loads_ruleset(packaged_text() + later)
    assert rs.residential_rates(date(2025, 4, 1)).tiers[0].rate == D("53.57")
    assert rs.rate_change_dates()[-1] == date(2025, 4, 1)


def test_duplicate_validity_is_refused():
    extra = "\n[[containers]]\nvalid_from = 2023-01-01\nrates = { 120 = 21.00 }\n"
    assert "overlapping periods" in refused(packaged_text() + extra)


def test_missing_tier_is_refused():
    msg = refused(variant("{ first_person = 5, last_person = 5, rate = 26.50 },", ""))
    assert "missing tier" in msg and "2023-01-01" in msg


def test_tiers_without_an_open_last_tier_are_refused():
    msg = refused(variant("{ first_person = 6, rate = 20.50 }", "{ first_person = 6, last_person = 9, rate = 20.50 }"))
    assert "missing tier" in msg


def test_overlapping_tiers_are_refused():
    msg = refused(variant("{ first_person = 5, last_person = 5, rate = 26.50 }",
                          "{ first_person = 4, last_person = 5, rate = 26.50 }"))
    assert "overlapping tiers" in msg


def test_unknown_key_is_refused():
    assert "unknown key 'rate_per_m3'" in refused(variant("composting_discount = 2.00", "composting_discount = 2.00\nrate_per_m3 = 1.00"))
    assert "unknown key" in refused(packaged_text() + "\n[extra]\nx = 1\n")


def test_money_with_three_decimals_is_refused():
    assert "more than 2 decimal places" in refused(variant("1100 = 183.00", "1100 = 183.005"))


def test_rate_table_not_starting_on_the_first_of_a_month_is_refused():
    assert "not the first day of a month" in refused(variant("valid_from = 2025-01-01", "valid_from = 2025-01-15"))


def test_rate_table_without_a_statutory_base_is_refused():
    msg = refused(variant("valid_from = 2023-01-01\nresolution = \"uchwała Zgromadzenia Związku (stawki od 2023-01-01)\"\ncomposting",
                          "valid_from = 2021-01-01\nresolution = \"x\"\ncomposting"))
    assert "no statutory base" in msg and "2021-01-01" in msg


def test_overlapping_gmina_membership_is_refused():
    extra = '\n[[gminas]]\nname = "Gogolin"\njoined = 2024-01-01\n'
    assert "overlapping membership" in refused(packaged_text().replace("[[residential]]", extra + "\n[[residential]]", 1))
    rejoined = '\n[[gminas]]\nname = "Krapkowice"\njoined = 2026-01-01\n'
    rs = loads_ruleset(packaged_text().replace("[[residential]]", rejoined + "\n[[residential]]", 1))
    assert not rs.is_member("Krapkowice", date(2020, 1, 1)) and rs.is_member("krapkowice", date(2026, 1, 1))


def test_discount_above_the_lowest_rate_is_refused():
    assert "composting discount" in refused(variant("composting_discount = 2.00", "composting_discount = 21.00"))


def test_broken_toml_and_missing_file_give_one_line_errors(tmp_path):
    assert "not valid TOML" in refused("[union\nname = 1")
    with pytest.raises(RuleSetError, match=re.escape(str(tmp_path / "nope.toml"))):
        load_ruleset(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text(variant("rate = 38.00", "rate = 99.00"), encoding="utf-8")
    with pytest.raises(RuleSetError, match="exceeds the statutory maximum"):
        load_ruleset(bad)


def test_wrong_types_are_refused():
    assert "expected a date" in refused(variant("joined = 2021-01-01", 'joined = "2021"'))
    assert "non-negative number" in refused(variant("120 = 20.00", '120 = "abc"'))
    assert "positive number of litres" in refused(variant("120 = 20.00", "x120 = 20.00"))


@pytest.mark.parametrize(
    "old, new, message",
    [  # the file's schema: the dotted key (tables in arrays counted from 0), then what is wrong
        ("{ first_person = 1, last_person = 4, rate = 32.00 }", "{ first_person = 1, last_person = 4, rate = 32.00, kolor = 1 }",
         "test.toml: residential[0].tiers[0].kolor: unknown key 'kolor'"),
        ("{ first_person = 1, last_person = 4, rate = 32.00 }", "{ first_person = 1, last_person = 4 }",
         "test.toml: residential[0].tiers[0].rate: missing key 'rate'"),
        ("{ first_person = 1, last_person = 4, rate = 32.00 }", "{ first_person = '1', last_person = 4, rate = 32.00 }",
         "test.toml: residential[0].tiers[0].first_person: expected an integer, got '1'"),
        ("120 = 20.00", "120 = true", "test.toml: containers[0].rates.120: expected a non-negative number, got True"),
        ("120 = 20.00", "120 = -1", "test.toml: containers[0].rates.120: expected a number >= 0, got -1"),
        ("joined = 2021-01-01", "joined = 2021-01-01T10:00:00",
         "test.toml: gminas[11].joined: expected a date (YYYY-MM-DD), got datetime.datetime(2021, 1, 1, 10, 0)"),
        ('name = "Związek', 'colour = "green"\nname = "Związek', "test.toml: union.colour: unknown key 'colour'"),
    ],
)
def test_schema_errors_name_the_dotted_key(old, new, message):
    assert refused(variant(old, new)) == message


def test_empty_tables_and_out_of_range_deadlines_are_refused():
    text = packaged_text()
    without_containers = "containers = []\n" + text[: text.index("[[containers]]")] + text[text.index("[statutory]"):]
    assert refused(without_containers) == "test.toml: containers: must not be empty"
    msg = refused(variant("change_day_of_next_month = 10", "change_day_of_next_month = 31"))
    assert msg == "test.toml: deadlines.change_day_of_next_month: expected a number <= 28, got 31"
