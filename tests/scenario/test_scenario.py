"""Scenario files: shipped files load, bad files fail with a precise message, overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from gridledger.errors import ScenarioError
from gridledger.scenario import apply_overrides, load_scenario, parse_override

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = sorted((ROOT / "scenarios").glob("*.toml"))


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_shipped_scenarios_load(path: Path) -> None:
    scenario = load_scenario(path)
    assert scenario.horizon.intervals >= 1


def test_main_job_is_a_day_of_ieee33() -> None:
    scenario = load_scenario(ROOT / "scenarios" / "ieee33.toml")
    assert scenario.network.feeder == "ieee33"
    assert scenario.horizon.intervals == 96 and scenario.horizon.interval_min == 15
    assert len(scenario.members.pv_buses) + len(scenario.members.dg_buses) >= 8


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    return path


def test_bad_value_names_file_key_value_and_allowed(tmp_path: Path) -> None:
    path = write(tmp_path, '[market]\nclearing = "magic"\n')
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    message = str(info.value)
    assert str(path) in message
    assert "market.clearing" in message
    assert "'magic'" in message
    assert "uniform" in message and "greedy" in message


def test_unknown_key_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, "[market]\nroundz = 3\n")
    with pytest.raises(ScenarioError, match=r"market\.roundz"):
        load_scenario(path)


def test_out_of_range(tmp_path: Path) -> None:
    path = write(tmp_path, "[market]\nrounds = 0\n")
    with pytest.raises(ScenarioError, match=r"market\.rounds = 0"):
        load_scenario(path)


def test_cross_field_rule(tmp_path: Path) -> None:
    path = write(tmp_path, "[market]\nretail_per_kwh = 0.1\nfeed_in_per_kwh = 0.2\n")
    with pytest.raises(ScenarioError, match="feed_in_per_kwh"):
        load_scenario(path)


def test_not_toml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="not valid TOML"):
        load_scenario(write(tmp_path, "[market\n"))
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenario(tmp_path / "nope.toml")


def test_overrides_are_validated_like_the_file() -> None:
    path = ROOT / "scenarios" / "ieee33.toml"
    scenario = load_scenario(path, ["market.rounds=7", "chain.backend=none", "horizon.intervals=4"])
    assert scenario.market.rounds == 7
    assert scenario.chain.backend == "none"
    assert scenario.horizon.intervals == 4
    with pytest.raises(ScenarioError) as info:
        load_scenario(path, ["market.rounds=-2"])
    assert "--set market.rounds=-2" in str(info.value)
    assert "market.rounds = -2" in str(info.value)
    with pytest.raises(ScenarioError, match=r"chain\.backend"):
        load_scenario(path, ["chain.backend=ftp://x"])


def test_parse_override_forms() -> None:
    assert parse_override("a.b=3") == (["a", "b"], 3)
    assert parse_override("a=[1, 2]") == (["a"], [1, 2])
    assert parse_override("a=hello") == (["a"], "hello")
    with pytest.raises(ScenarioError, match=r"KEY\.PATH=VALUE"):
        parse_override("novalue")
    with pytest.raises(ScenarioError, match="not a table"):
        apply_overrides({"seed": 1}, ["seed.x=2"])


@pytest.mark.parametrize(
    ("members", "key", "why"),
    [
        ("per_load_bus = 0", r"members\.per_load_bus = 0", "greater than or equal to 1"),
        ("per_load_bus = 1001", r"members\.per_load_bus = 1001", "less than or equal to 1000"),
        ("from_loads = 3", r"members\.from_loads = 3", "boolean"),
        ("pv_share = 1.5", r"members\.pv_share = 1\.5", "less than or equal to 1"),
        ("household_pv_kwp = [9.0, 3.0]", r"members\.household_pv_kwp", "low <= high"),
        ("pv_tilt_deg = [10.0, 95.0]", r"members\.pv_tilt_deg", r"<= 90"),
        ("pv_azimuth_deg = [-10.0, 90.0]", r"members\.pv_azimuth_deg", r"0 <= low"),
        (
            "per_load_bus = 4\nfrom_loads = true",
            r"members\.per_load_bus = 4",
            "cannot be combined with from_loads",
        ),
    ],
)
def test_members_at_scale_keys_are_validated(
    tmp_path: Path, members: str, key: str, why: str
) -> None:
    path = write(tmp_path, f"[members]\n{members}\n")
    with pytest.raises(ScenarioError, match=key) as info:
        load_scenario(path)
    assert why in str(info.value)
    assert str(path) in str(info.value)


def test_members_at_scale_keys_default_and_override() -> None:
    default = load_scenario(ROOT / "scenarios" / "ieee33.toml")
    assert default.members.per_load_bus == 1 and not default.members.from_loads
    assert default.members.pv_azimuth_deg is None
    scaled = load_scenario(
        ROOT / "scenarios" / "ieee33.toml",
        ["members.per_load_bus=32", "members.pv_share=0.25", "members.pv_azimuth_deg=[120, 240]"],
    )
    assert scaled.members.per_load_bus == 32 and scaled.members.pv_share == 0.25
    assert scaled.members.pv_azimuth_deg == (120.0, 240.0)
    with pytest.raises(ScenarioError, match=r"members\.per_load_bus"):
        load_scenario(ROOT / "scenarios" / "ieee33.toml", ["members.per_load_bus=-2"])
