"""The ``fee_rules`` stage: membership, rate and amount comparison, late filing."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from rules.checks import check_fee_rules, fee_rules
from rules.ruleset import load_ruleset
from tests.test_rules_support import declaration, declaration_from_sample
from worker.domain.findings import ACCEPTED, NEEDS_REVIEW, REJECTED, outcome_of
from worker.domain.model import CHANGE, CORRECTION, EPUAP, MIXED, MULTI_FLAT, PAPER
from worker.pipeline import Context, ProcessingSettings, run_stages

D = Decimal
RS = load_ruleset()
CET = timezone(timedelta(hours=1))

# a correct 2025 declaration: house, 5 residents, composting (the worked example)
WORKED = dict(
    residents=(5,),
    composting=True,
    lines=[("osoby 1-4", 4, "38.00", "152.00"), ("osoba 5", 1, "32.50", "32.50")],
    discount="10.00",
    applies_from=date(2025, 1, 20),
    gmina="Kędzierzyn-Koźle",
)


def run(decl, *, ruleset=RS, channel=EPUAP, filed_at=None):
    ctx = Context(raw=b"", channel=channel, filed_at=filed_at, settings=ProcessingSettings(ruleset=ruleset))
    ctx.declaration = decl
    run_stages(ctx, [fee_rules])
    return ctx


def codes(ctx_or_findings):
    findings = getattr(ctx_or_findings, "findings", ctx_or_findings)
    return sorted(f.code for f in findings)


def test_stage_name_and_a_correct_declaration_passes():
    assert fee_rules.name == "fee_rules"
    ctx = run(declaration(**WORKED, filed_at=datetime(2025, 1, 31, 10, tzinfo=CET)))
    assert ctx.findings == []
    assert ctx.computed_fee == D("174.50")
    assert ctx.gmina == "Kędzierzyn-Koźle"
    assert ctx.fee_explanation and ctx.fee_explanation[-1] == "Opłata miesięczna: 174,50 zł."
    assert ctx.outcome == ACCEPTED


def test_without_declaration_the_stage_does_nothing():
    ctx = Context(raw=b"", channel=EPUAP, filed_at=None, settings=ProcessingSettings(ruleset=RS))
    fee_rules(ctx)
    assert ctx.findings == [] and ctx.computed_fee is None


def test_default_rule_set_is_used_when_none_is_configured():
    ctx = run(declaration(**WORKED), ruleset=None)
    assert ctx.computed_fee == D("174.50") and ctx.findings == []


def test_gmina_is_canonicalised():
    ctx = run(declaration(**{**WORKED, "gmina": "  kedzierzyn-KOZLE "}))
    assert ctx.gmina == "Kędzierzyn-Koźle" and ctx.findings == []


@pytest.mark.parametrize(
    "gmina, applies_from, expected_gmina, note",
    [
        ("Opole", date(2025, 1, 20), None, "nie należy do Związku"),
        ("Krapkowice", date(2025, 1, 20), "Krapkowice", "członkiem do 2013-12-31"),
        ("zawadzkie", date(2023, 11, 30), "Zawadzkie", "członkiem od 2023-12-01"),
    ],
)
def test_gmina_not_member(gmina, applies_from, expected_gmina, note):
    ctx = run(declaration(**{**WORKED, "gmina": gmina, "applies_from": applies_from}))
    found = [f for f in ctx.findings if f.code == "GMINA_NOT_MEMBER"]
    assert len(found) == 1 and found[0].field == "Nieruchomosc/Gmina" and note in found[0].message
    if expected_gmina:
        assert f"Gmina {expected_gmina} " in found[0].message  # named canonically
    assert ctx.gmina is None  # the loader creates properties only in member gminas
    assert ctx.outcome == REJECTED


def test_zawadzkie_is_a_member_from_its_joining_day():
    ctx = run(declaration(**{**WORKED, "gmina": "Zawadzkie", "applies_from": date(2025, 1, 1)}))
    assert "GMINA_NOT_MEMBER" not in codes(ctx)


def test_old_rates_declared_after_the_rate_change():
    # 2023 rates on a declaration applying from 2025-01-20: every line and the totals differ
    decl = declaration(
        residents=(5,), composting=True,
        lines=[("osoby 1-4", 4, "32.00", "128.00"), ("osoba 5", 1, "26.50", "26.50")],
        discount="10.00", applies_from=date(2025, 1, 20),
    )
    ctx = run(decl)
    assert ctx.computed_fee == D("174.50")
    rate = [f for f in ctx.findings if f.code == "RATE_MISMATCH"]
    assert [f.field for f in rate] == ["CzescZamieszkala/Wyliczenie/Pozycja[1]/Stawka", "CzescZamieszkala/Wyliczenie/Pozycja[2]/Stawka"]
    assert "32,00 zł" in rate[0].message and "38,00 zł" in rate[0].message and "osoby 1-4" in rate[0].message
    fee = {f.field: f.message for f in ctx.findings if f.code == "FEE_MISMATCH"}
    assert "zadeklarowano 128,00 zł, wyliczono 152,00 zł" in fee["CzescZamieszkala/Wyliczenie/Pozycja[1]/Kwota"]
    assert "zadeklarowano 144,50 zł, wyliczono 174,50 zł" in fee["CzescZamieszkala/Wyliczenie/Oplata"]
    assert "zadeklarowano 144,50 zł, wyliczono 174,50 zł" in fee["OplataMiesieczna"]
    assert ctx.outcome == NEEDS_REVIEW


def test_only_the_total_wrong():
    ctx = run(declaration(**WORKED, monthly="175.00"))
    assert codes(ctx) == ["FEE_MISMATCH"]
    (f,) = ctx.findings
    assert f.field == "OplataMiesieczna" and "175,00 zł" in f.message and "174,50 zł" in f.message


def test_missing_tier_line():
    decl = declaration(residents=(6,), lines=[("osoby 1-4", 4, "38.00", "152.00"), ("osoba 5", 1, "32.50", "32.50")],
                       applies_from=date(2025, 5, 5))
    ctx = run(decl)
    msgs = [f.message for f in ctx.findings if f.code == "FEE_MISMATCH"]
    assert any("Brak pozycji „osoby 6 i kolejne”" in m and "26,50 zł" in m for m in msgs)
    assert ctx.computed_fee == D("211.00")


def test_wrong_person_count_in_a_line():
    decl = declaration(residents=(5,), lines=[("osoby 1-4", 5, "38.00", "190.00")], applies_from=date(2025, 5, 5))
    ctx = run(decl)
    by_field = {f.field: f.message for f in ctx.findings}
    assert "zadeklarowano 5 osób" in by_field["CzescZamieszkala/Wyliczenie/Pozycja[1]/Kwota"]
    assert "Brak pozycji „osoba 5”" in by_field["CzescZamieszkala/Wyliczenie/Pozycja"]
    assert "zadeklarowano 190,00 zł, wyliczono 184,50 zł" in by_field["OplataMiesieczna"]


def test_discount_mismatch_and_discount_where_not_allowed():
    ctx = run(declaration(**{**WORKED, "discount": "8.00"}, monthly="176.50"))
    by_field = {f.field: f.message for f in ctx.findings}
    assert "zadeklarowano 8,00 zł, wyliczono 10,00 zł" in by_field["CzescZamieszkala/Wyliczenie/ZwolnienieKompostownik"]
    multi = declaration(residents=(3,), building=MULTI_FLAT, composting=True,
                        lines=[("osoby 1-4", 3, "38.00", "114.00")], discount="6.00")
    ctx = run(multi)
    f = next(f for f in ctx.findings if f.field.endswith("ZwolnienieKompostownik"))
    assert f.code == "FEE_MISMATCH" and "tylko" in f.message
    assert ctx.computed_fee == D("114.00")


def test_multi_flat_declared_per_tier_summed_over_flats_passes():
    decl = declaration(
        residents=(5, 2, 0), building=MULTI_FLAT,
        lines=[("osoby 1-4", 6, "38.00", "228.00"), ("osoba 5", 1, "32.50", "32.50")],
        applies_from=date(2025, 6, 2),
    )
    ctx = run(decl)
    assert ctx.findings == [] and ctx.computed_fee == D("260.50")


def test_multi_flat_declared_line_by_flat_is_added_up():
    decl = declaration(
        residents=(5, 2), building=MULTI_FLAT,
        lines=[("osoby 1-4", 4, "38.00", "152.00"), ("osoba 5", 1, "32.50", "32.50"), ("osoby 1-4", 2, "38.00", "76.00")],
        applies_from=date(2025, 6, 2),
    )
    assert run(decl).findings == []


def test_multi_flat_counted_as_one_dwelling_is_a_fee_mismatch():
    # flats 5/2 wrongly tiered as if one dwelling of 7: 4×38 + 32.50 + 2×26.50
    decl = declaration(
        residents=(5, 2), building=MULTI_FLAT,
        lines=[("osoby 1-4", 4, "38.00", "152.00"), ("osoba 5", 1, "32.50", "32.50"), ("osoby 6 i kolejne", 2, "26.50", "53.00")],
        applies_from=date(2025, 6, 2),
    )
    ctx = run(decl)
    assert ctx.computed_fee == D("260.50")
    fields = {f.field for f in ctx.findings if f.code == "FEE_MISMATCH"}
    assert {"CzescZamieszkala/Wyliczenie/Pozycja[1]/Kwota", "CzescZamieszkala/Wyliczenie/Pozycja[3]/Kwota", "OplataMiesieczna"} <= fields
    assert "RATE_MISMATCH" not in codes(ctx)


def test_lines_with_unrecognised_descriptions_fall_back_to_position():
    decl = declaration(residents=(5,), lines=[("pierwsze", 4, "38.00", "152.00"), ("dalej", 1, "32.50", "32.50")],
                       applies_from=date(2025, 5, 5))
    assert run(decl).findings == []


def test_containers_sample_and_a_wrong_line():
    good = declaration(residents=None, containers=[(240, 2, 52, "40.00", "346.67"), (1100, 1, 26, "183.00", "396.50")],
                       applies_from=date(2025, 7, 1))
    assert run(good).findings == [] and run(good).computed_fee == D("743.17")
    # rounded down instead of half-up, and an old-fashioned rate
    bad = declaration(residents=None, containers=[(240, 2, 52, "40.00", "346.66"), (1100, 1, 26, "180.00", "390.00")],
                      applies_from=date(2025, 7, 1))
    ctx = run(bad)
    by_field = {(f.code, f.field): f.message for f in ctx.findings}
    assert "zadeklarowano 346,66 zł, wyliczono 346,67 zł" in by_field[("FEE_MISMATCH", "CzescNiezamieszkala/Pojemnik[1]/Kwota")]
    assert "183,00 zł" in by_field[("RATE_MISMATCH", "CzescNiezamieszkala/Pojemnik[2]/Stawka")]
    assert ("FEE_MISMATCH", "CzescNiezamieszkala/Oplata") in by_field
    assert ("FEE_MISMATCH", "OplataMiesieczna") in by_field
    assert ctx.computed_fee == D("743.17")


def test_container_unknown_leaves_the_fee_uncomputed():
    decl = declaration(residents=(3,), kind=MIXED, lines=[("osoby 1-4", 3, "38.00", "114.00")],
                       containers=[(200, 1, 26, "30.00", "65.00")])
    ctx = run(decl)
    assert codes(ctx) == ["CONTAINER_UNKNOWN"]
    (f,) = ctx.findings
    assert f.field == "CzescNiezamieszkala/Pojemnik[1]/Pojemnosc" and "200 l" in f.message and "120, 240, 660, 1100" in f.message
    assert ctx.computed_fee is None and ctx.outcome == REJECTED


def test_paper_declarations_name_scan_fields():
    decl = declaration(**{**WORKED, "gmina": "Opole", "channel": PAPER}, monthly="170.00")
    ctx = run(decl, channel=PAPER)
    assert {f.field for f in ctx.findings} == {"nieruchomosc.gmina", "oplata_miesieczna"}
    wrong_line = declaration(residents=(2,), lines=[("osoby 1-4", 2, "32.00", "64.00")], channel=PAPER)
    fields = {f.field for f in run(wrong_line, channel=PAPER).findings}
    assert {"wyliczenie.1.stawka", "wyliczenie.1.kwota", "oplata_zamieszkala", "oplata_miesieczna"} == fields


def test_hostile_values_in_the_model_do_not_crash_the_stage():
    from dataclasses import replace

    decl = declaration(residents=(2,), kind=MIXED, lines=[("osoby 1-4", 2, "38.00", "76.00")],
                       containers=[(120, 1, 26, "20.00", "43.33")])
    broken = replace(
        decl,
        residential=replace(decl.residential, dwellings=(replace(decl.residential.dwellings[0], residents=None),),
                            lines=(replace(decl.residential.lines[0], description=None, rate=None, amount=None),)),
        non_residential=replace(decl.non_residential,
                                containers=(replace(decl.non_residential.containers[0], count=None),), fee=None),
        monthly_fee=None,
    )
    ctx = run(broken)
    assert ctx.computed_fee is None
    assert ctx.fee_explanation
    assert all(f.message for f in ctx.findings)


# --------------------------------------------------------------------------- late filing


def test_first_declaration_late_and_on_time():
    # duty from 2025-03-03: deadline 2025-03-17 (Monday)
    base = dict(residents=(2,), lines=[("osoby 1-4", 2, "38.00", "76.00")], applies_from=date(2025, 3, 3))
    assert run(declaration(**base, filed_at=datetime(2025, 3, 17, 23, 59, tzinfo=CET))).findings == []
    ctx = run(declaration(**base, filed_at=datetime(2025, 3, 18, 0, 1, tzinfo=CET)))
    assert codes(ctx) == ["LATE_FILING"]
    assert "2025-03-17" in ctx.findings[0].message and "2025-03-18" in ctx.findings[0].message
    assert ctx.outcome == NEEDS_REVIEW


def test_late_filing_uses_the_day_in_poland():
    base = dict(residents=(2,), lines=[("osoby 1-4", 2, "38.00", "76.00")], applies_from=date(2025, 3, 3))
    # 23:30 UTC on the 17th is already the 18th in Warsaw
    ctx = run(declaration(**base, filed_at=datetime(2025, 3, 17, 23, 30, tzinfo=UTC)))
    assert codes(ctx) == ["LATE_FILING"]


def test_deadline_on_easter_monday_moves_to_tuesday():
    base = dict(residents=(2,), lines=[("osoby 1-4", 2, "38.00", "76.00")], applies_from=date(2025, 4, 7))
    assert run(declaration(**base, filed_at=datetime(2025, 4, 22, 15, tzinfo=CET))).findings == []
    ctx = run(declaration(**base, filed_at=datetime(2025, 4, 23, 9, tzinfo=CET)))
    assert codes(ctx) == ["LATE_FILING"] and "dniem wolnym" in ctx.findings[0].message


def test_change_deadline_is_the_10th_of_next_month():
    base = dict(residents=(3,), lines=[("osoby 1-4", 3, "38.00", "114.00")], purpose=CHANGE, reason="ZMIANA_LICZBY_MIESZKANCOW")
    # change 2025-01-01: 2025-02-10 is a Monday
    assert run(declaration(**base, applies_from=date(2025, 1, 1), filed_at=datetime(2025, 1, 31, tzinfo=CET))).findings == []
    assert codes(run(declaration(**base, applies_from=date(2025, 1, 15), filed_at=datetime(2025, 2, 11, tzinfo=CET)))) == ["LATE_FILING"]
    assert run(declaration(**base, applies_from=date(2025, 1, 1), filed_at=datetime(2025, 2, 10, 20, tzinfo=CET))).findings == []
    # change in October 2024: the 10th of November is a Sunday, the 11th a holiday → the 12th
    old = dict(base, lines=[("osoby 1-4", 3, "32.00", "96.00")], applies_from=date(2024, 10, 20))
    assert run(declaration(**old, filed_at=datetime(2024, 11, 12, 16, tzinfo=CET))).findings == []
    assert codes(run(declaration(**old, filed_at=datetime(2024, 11, 13, 8, tzinfo=CET)))) == ["LATE_FILING"]


def test_correction_has_no_deadline():
    decl = declaration(**WORKED, purpose=CORRECTION, filed_at=datetime(2027, 1, 1, tzinfo=CET))
    assert run(decl).findings == []


def test_without_filing_time_no_late_filing():
    decl = declaration(**WORKED)
    assert run(decl, filed_at=None).findings == []
    # the context's filing time is used when the declaration has none
    assert codes(run(decl, filed_at=datetime(2025, 6, 1, tzinfo=CET))) == ["LATE_FILING"]


def test_check_fee_rules_is_usable_without_a_context():
    result = check_fee_rules(declaration(**WORKED), RS, filed_at=date(2025, 2, 20))
    assert codes(result.findings) == ["LATE_FILING"]
    assert result.computed_fee == D("174.50") and result.gmina == "Kędzierzyn-Koźle"
    assert outcome_of(result.findings) == NEEDS_REVIEW


# --------------------------------------------------------------------------- the union's samples


def test_signed_samples_pass_the_fee_rules_at_their_filing_time(shared_dir):
    signed = shared_dir / "spec" / "samples" / "signed"
    for item in json.loads((signed / "expected.json").read_text(encoding="utf-8")):
        decl = declaration_from_sample(signed / item["file"], datetime.fromisoformat(item["filed_at"]))
        ctx = run(decl)
        assert ctx.findings == [], (item["file"], ctx.findings)
        assert f"{ctx.computed_fee:.2f}" == item["computed_fee"]
        assert ctx.gmina == item["property"]["gmina"]
        # checked a year later, the first declarations are late
        late = run(declaration_from_sample(signed / item["file"], datetime(2026, 9, 1, tzinfo=CET)))
        assert codes(late) == ["LATE_FILING"]
