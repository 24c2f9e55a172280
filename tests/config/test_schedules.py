"""Schedules of systemic inputs and treatments: values over time and one-line errors."""

from __future__ import annotations

import math

import pytest

from abm.config import ConfigErrors, load_scenario
from abm.config.systemic import glucose_from_hba1c
from tests.conftest import REPO

BASELINE = REPO / "configs" / "baseline.toml"


def _systemic(*overrides):
    return load_scenario(BASELINE, list(overrides)).systemic


def test_a_number_is_a_constant_and_tables_interpolate():
    s = _systemic(
        "systemic.glucose_mM={kind='table', days=[0, 100, 200], values=[5, 7, 9]}",
        "systemic.estrogen={kind='decline', start_value=1.0, end_value=0.2, start_days=10, half_life_days=100}",
        "systemic.insulin_sensitivity={kind='ramp', start_value=1.0, end_value=0.5, start_days=0, end_days=50}",
        "systemic.fat_inflammation={kind='step', before=0, after=1, at_days=30}",
        "systemic.vitamin_d_nM=40",
    )
    assert [s.glucose_at(d) for d in (0, 50, 200, 400)] == [5, 6, 9, 9]
    assert s.estrogen.at(5) == 1.0 and math.isclose(s.estrogen.at(110), 0.6)  # one half-life: half-way
    assert s.insulin_sensitivity.at(25) == 0.75 and s.insulin_sensitivity.at(80) == 0.5
    assert s.fat_inflammation.at(29.9) == 0 and s.fat_inflammation.at(30) == 1
    assert s.at(0)["vitamin_d_nM"] == 40


def test_hba1c_gives_the_adag_average_glucose():
    assert math.isclose(glucose_from_hba1c(7.0), 8.54)
    assert math.isclose(_systemic("systemic.hba1c_percent=7").glucose_at(0), 8.54)


@pytest.mark.parametrize(
    ("override", "line"),
    [
        ("systemic.estrogen=2", "systemic.estrogen: out of range (got 2, allowed a number in 0..1.5, or a schedule"
         " table (kind = constant, step, ramp, decline or table) whose values stay in that range)"),
        ("systemic.glucose_mM={kind='ramp', start_value=5, end_value=9, start_days=10, end_days=5}",
         "systemic.glucose_mM.ramp: end_days must be after start_days (got 10 .. 5) (got a table, allowed a number in"
         " 0..40, or a schedule table (kind = constant, step, ramp, decline or table) whose values stay in that range)"),
        ("systemic.pth_pg_mL=2000", "systemic.pth_pg_mL: out of range (got 2000, allowed a number in 0..1000, or a"
         " schedule table (kind = constant, step, ramp, decline or table) whose values stay in that range)"),
        ("treatments.alendronate=-1", "treatments.alendronate: out of range (got -1, allowed a dose >= 0 (1 = standard"
         " dose), or a schedule table (kind = constant, step, ramp, decline or table))"),
    ],
)
def test_bad_schedules_are_one_line_errors(override, line):
    with pytest.raises(ConfigErrors) as info:
        load_scenario(BASELINE, [override])
    assert info.value.lines == [line]


def test_glucose_and_hba1c_are_exclusive():
    with pytest.raises(ConfigErrors) as info:
        load_scenario(BASELINE, ["systemic.hba1c_percent=8", "systemic.glucose_mM=7"])
    assert info.value.lines == ["systemic: give either glucose_mM or hba1c_percent, not both"]
