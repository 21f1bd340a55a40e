"""Shipped scenarios: in the package, loadable by name, the clone's scenarios/ links to them."""

from __future__ import annotations

from pathlib import Path

import pytest

from gridledger.errors import ScenarioError
from gridledger.scenario import SHIPPED_DIR, load_scenario, shipped_scenarios

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_scenarios_live_in_the_package() -> None:
    assert SHIPPED_DIR.parent.name == "gridledger"
    assert shipped_scenarios() == ["cigre_lv", "ieee33", "ieee33_stressed", "simbench_mv"]


@pytest.mark.parametrize("name", ["cigre_lv", "ieee33", "ieee33_stressed", "simbench_mv"])
def test_a_shipped_name_loads_the_same_scenario_as_its_file(name: str) -> None:
    by_name = load_scenario(name)
    by_file = load_scenario(ROOT / "scenarios" / f"{name}.toml")
    assert by_name == by_file
    assert by_name.name == name


def test_the_clone_scenarios_folder_is_the_package_one() -> None:
    assert (ROOT / "scenarios").resolve() == SHIPPED_DIR.resolve()


def test_an_unknown_name_lists_the_shipped_ones() -> None:
    with pytest.raises(
        ScenarioError, match="shipped scenarios: cigre_lv, ieee33, ieee33_stressed, simbench_mv"
    ):
        load_scenario("ieee34")


def test_a_local_file_wins_over_a_shipped_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "ieee33").write_text('name = "mine"\n[horizon]\nintervals = 2\n')
    monkeypatch.chdir(tmp_path)
    assert load_scenario("ieee33").name == "mine"
