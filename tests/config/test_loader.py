"""Scenario loading: extends, overrides and the exact wording of errors."""

from __future__ import annotations

import pytest

from abm.config import ConfigErrors, load_scenario, to_toml, validate
from abm.config.loader import load_raw
from abm.errors import UserError

FIELD = 'diffusivity_marrow_um2_per_s = 10.0\ndiffusivity_bone_um2_per_s = 0.1\ndecay_per_s = 1e-3\n'
# the fields every scenario needs (the signalling modules read them)
REQUIRED = "".join(f"[fields.{name}]\n{FIELD}" for name in ("rankl", "opg", "tgf_beta"))


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def errors_of(data) -> list[str]:
    with pytest.raises(ConfigErrors) as info:
        validate(data)
    return info.value.lines


def test_baseline_is_valid(baseline_path):
    scenario = load_scenario(baseline_path)
    assert scenario.geometry.shape_voxels == [100, 100, 100]
    assert scenario.fields["glucose"].boundary.x_min == 5.0
    assert scenario.fields["rankl"].boundary.x_min == "zero_flux"


def test_unknown_key_suggests_the_near_one():
    assert errors_of({"time": {"dt_hour": 2}}) == [
        "time.dt_hour: unknown key, did you mean 'dt_hours'? (got 2, allowed keys: dt_hours, field_dt_hours, days, spinup_days)"
    ]


def test_unknown_key_inside_a_named_field_suggests_from_the_field_schema():
    data = {"fields": {"glucose": {**_field(), "decay_per_sec": 1e-4}}}
    (line,) = errors_of(data)
    assert line.startswith("fields.glucose.decay_per_sec: unknown key, did you mean 'decay_per_s'? (got 0.0001,")


def test_out_of_range_names_the_range():
    assert errors_of({"time": {"dt_hours": -1}}) == [
        "time.dt_hours: out of range (got -1, allowed a number > 0 and <= 24)"
    ]


def test_wrong_type_and_list_element_range():
    lines = errors_of({"seed": "one", "geometry": {"shape_voxels": [100, 3, 100]}})
    assert lines == [
        "seed: Input should be a valid integer, unable to parse string as an integer (got 'one', allowed an integer >= 0)",
        "geometry.shape_voxels.1: out of range (got 3, allowed an integer >= 8 and <= 1024)",
    ]


def test_every_error_is_reported_once():
    lines = errors_of({"seed": -1, "time": {"days": -2, "dt_hours": 100}, "solver": {"dtype": "float16"}})
    assert [line.split(":")[0] for line in lines] == ["seed", "time.dt_hours", "time.days", "solver.dtype"]
    assert lines[-1] == "solver.dtype: Input should be 'float32' or 'float64' (got 'float16', allowed one of 'float32', 'float64')"


def test_boundary_accepts_zero_flux_or_a_non_negative_value():
    ok = validate({"fields": {**_required(), "g": {**_field(), "boundary": {"x_min": 5, "z_max": "zero_flux"}}}})
    assert ok.fields["g"].boundary.fixed_values() == {
        "x_min": 5.0, "x_max": None, "y_min": None, "y_max": None, "z_min": None, "z_max": None,
    }
    (line,) = errors_of({"fields": {"g": {**_field(), "boundary": {"x_min": "open"}}}})
    assert line.startswith("fields.g.boundary.x_min: must be 'zero_flux' or a fixed concentration >= 0 (got 'open',")


def test_missing_required_key():
    (line,) = errors_of({"fields": {"g": {"diffusivity_marrow_um2_per_s": 1, "diffusivity_bone_um2_per_s": 0}}})
    assert line == "fields.g.decay_per_s: required key is missing (allowed a number >= 0 and <= 10)"


def test_microct_kind_needs_its_section():
    assert errors_of({"geometry": {"kind": "microct"}}) == [
        "geometry: kind = 'microct' needs a [geometry.microct] section with a path"
    ]


def test_extends_overrides_only_what_differs(tmp_path):
    write(tmp_path, "base.toml", f'name = "base"\n[time]\ndays = 30\ndt_hours = 2\nfield_dt_hours = 6\n[fields.a]\n{FIELD}{REQUIRED}')
    child = write(tmp_path, "child.toml", 'extends = "base.toml"\nname = "child"\n[time]\ndays = 5\n')
    scenario = load_scenario(child)
    assert (scenario.name, scenario.time.days, scenario.time.dt_hours) == ("child", 5.0, 2.0)
    assert scenario.fields["a"].decay_per_s == 1e-3


def test_extends_chain_from_another_folder_and_microct_path_anchoring(tmp_path):
    (tmp_path / "arms").mkdir()
    write(tmp_path, "base.toml", '[geometry]\nkind = "microct"\n[geometry.microct]\npath = "data/ct.npy"\n' + REQUIRED)
    child = write(tmp_path / "arms", "child.toml", 'extends = "../base.toml"\nseed = 4\n')
    scenario = load_scenario(child)
    assert scenario.seed == 4
    assert scenario.geometry.microct.path == str(tmp_path / "data" / "ct.npy")


def test_extends_cycle_is_an_error(tmp_path):
    write(tmp_path, "a.toml", 'extends = "b.toml"\n')
    write(tmp_path, "b.toml", 'extends = "a.toml"\n')
    with pytest.raises(UserError, match=r"extends forms a cycle \(a.toml -> b.toml -> a.toml\)"):
        load_raw(tmp_path / "a.toml")


def test_missing_file_and_bad_toml(tmp_path):
    with pytest.raises(UserError, match="nope.toml: config file not found"):
        load_scenario(tmp_path / "nope.toml")
    bad = write(tmp_path, "bad.toml", "[time\ndays = 3\n")
    with pytest.raises(UserError, match="bad.toml: invalid TOML: "):
        load_scenario(bad)


def test_overrides_parse_toml_values_and_bare_strings(baseline_path):
    scenario = load_scenario(
        baseline_path,
        [
            "fields.glucose.decay_per_s=1e-4",
            "geometry.shape_voxels=[32, 40, 48]",
            "name=arm_b",
            "fields.rankl.boundary.x_min=2.5",
        ],
    )
    assert scenario.fields["glucose"].decay_per_s == 1e-4
    assert scenario.geometry.shape_voxels == [32, 40, 48]
    assert scenario.name == "arm_b"
    assert scenario.fields["rankl"].boundary.x_min == 2.5


def test_override_of_unknown_key_is_caught_by_the_schema(baseline_path):
    with pytest.raises(ConfigErrors) as info:
        load_scenario(baseline_path, ["time.dayz=3"])
    assert info.value.lines[0].startswith("time.dayz: unknown key, did you mean 'days'?")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("time.days", "--set 'time.days': expected KEY.PATH=VALUE"),
        ("seed.x=1", "--set 'seed.x=1': seed is a value, not a table"),
    ],
)
def test_malformed_overrides(baseline_path, override, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(".", r"\.")):
        load_scenario(baseline_path, [override])


def test_resolved_config_round_trips(baseline_path, tmp_path):
    scenario = load_scenario(baseline_path, ["seed=7"])
    again = load_scenario(write(tmp_path, "resolved.toml", to_toml(scenario)))
    assert again == scenario


def _required() -> dict:
    return {name: _field() for name in ("rankl", "opg", "tgf_beta")}


def test_scenario_without_the_signalling_fields_names_each():
    assert errors_of({}) == [
        f"fields.{name}: required by the signalling modules (define a [fields.{name}] table)"
        for name in ("rankl", "opg", "tgf_beta")
    ]


def test_rules_must_name_known_signals_and_behaviours(baseline_path):
    with pytest.raises(ConfigErrors) as info:
        load_scenario(baseline_path, ['rules.osteoclast=[{signal="tgfb", direction="increases", '
                                      'behaviour="speed", half_max=1.0, saturation=1.0}]'])
    assert info.value.lines[0].startswith("rules.osteoclast.0.signal: unknown signal (got 'tgfb', allowed one of 'rankl',")
    assert info.value.lines[1] == (
        "rules.osteoclast.0.behaviour: not a behaviour of osteoclast (got 'speed', allowed one of "
        "'apoptosis_per_day', 'erosion_um_per_day')"
    )


def test_a_ferroptotic_release_must_name_fields_of_the_scenario(baseline_path):
    """A misspelt field used to be skipped in silence (the default named 'il_1beta', no field)."""
    with pytest.raises(ConfigErrors) as info:
        load_scenario(baseline_path, ['redox.ferroptosis.inflammatory_fields=["il_1beta"]'])
    assert info.value.lines == [
        "redox.ferroptosis.inflammatory_fields: unknown field (got 'il_1beta', allowed one of "
        "'rankl', 'opg', 'tgf_beta', 'wnt', 'glucose')"
    ]


def _field() -> dict:
    return {"diffusivity_marrow_um2_per_s": 10.0, "diffusivity_bone_um2_per_s": 0.1, "decay_per_s": 1e-3}


def test_rules_of_one_behaviour_and_direction_must_share_a_saturation(baseline_path):
    """The engine uses one saturation per behaviour and direction; a second one would be ignored silently."""
    rule = '{{signal="{s}", direction="{d}", behaviour="apoptosis_per_day", half_max=1.0, saturation={v}}}'
    rules = ", ".join(rule.format(s=s, d=d, v=v) for s, d, v in [
        ("tgf_beta", "increases", 0.05), ("rankl", "decreases", 0.0), ("opg", "increases", 0.01),
        ("opg", "decreases", 0.0), ("rankl", "increases", 0.05)])
    with pytest.raises(ConfigErrors) as info:
        load_scenario(baseline_path, [f"rules.osteoclast=[{rules}]"])
    assert info.value.lines == [
        "rules.osteoclast.2.saturation: rules that increase apoptosis_per_day share one saturation (got 0.01,"
        " rules.osteoclast.0 has 0.05); set a rule's strength with half_max"
    ]
