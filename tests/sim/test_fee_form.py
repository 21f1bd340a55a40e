"""``market.fee_form``: the fee as a table (each pair rounded) or in path form (rounded branch
fees summed along the least path), chosen by the scenario or by the feeder's size.

On ieee33 the path form is within a few micro-tokens of the table; on the meshed ieee33 its
loops become portals and every fee is still the least path fee; a run in path form on the
embedded chain matches the reference and audits OK; a fee with no path form is refused by
name before anything runs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gridledger.errors import ClearingError
from gridledger.report.folder import run_to_folder
from gridledger.scenario import Scenario, load_scenario
from gridledger.sim.runner import audit_folder
from gridledger.world import build_world


def scenario(*sets: str) -> Scenario:
    return load_scenario("ieee33", ["horizon.intervals=2", "horizon.first_interval=50", *sets])


def test_auto_keeps_the_table_on_small_feeders_and_path_gives_nearly_the_same_fees() -> None:
    table = build_world(scenario())
    assert table.fee_paths is None and table.fees is not None
    path = build_world(scenario('market.fee_form="path"'))
    assert path.fee_paths is not None and path.fee_paths.layout.portals.shape == (0,)
    assert np.array_equal(path.fees, path.fee_paths.table)
    gap = np.abs(path.fees - table.fees)
    assert 0 < gap.max() <= 17  # 33 buses: at most half a micro per branch on the path
    assert path.committed_fees is path.fee_paths and table.committed_fees is table.fees


def test_the_meshed_feeder_in_path_form_has_portals_and_least_path_fees() -> None:
    world = build_world(scenario('network.feeder="ieee33_meshed"', 'market.fee_form="path"'))
    paths = world.fee_paths
    assert paths is not None and paths.layout.portals.shape[0] == 10  # 5 tie lines, 10 ends
    table = build_world(scenario('network.feeder="ieee33_meshed"'))
    assert table.fees is not None  # the table rounds the least path's km, the path form each
    assert 0 < np.abs(world.fees - table.fees).max() <= 17  # branch on it: 32 at most


def test_a_fee_without_a_path_form_is_refused_by_name() -> None:
    sc = scenario('market.fee_form="path"', 'market.network_fee="zonal"')
    with pytest.raises(ClearingError, match="zonal is not a sum over the branches"):
        build_world(sc)


@pytest.mark.slow  # about 12 s: a meshed feeder's path form on the embedded chain
def test_a_run_in_path_form_on_a_meshed_feeder_matches_and_audits(tmp_path: Path) -> None:
    sc = scenario('network.feeder="ieee33_meshed"', 'market.fee_form="path"')
    out = tmp_path / "run"
    summary = run_to_folder(sc, out)
    assert summary["onchain_matches_reference"] is True
    assert audit_folder(out).ok
