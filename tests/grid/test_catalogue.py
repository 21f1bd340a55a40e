from __future__ import annotations

import importlib.util

import numpy as np
import pandapower.networks as pn
import pytest

from gridledger.errors import GridError
from gridledger.grid import Feeder, known_feeders, load_feeder, run_ac
from gridledger.grid.topology import build_tree

SHIPPED = ("ieee33", "cigre_lv", "cigre_lv_full")


def test_known_feeders_lists_shipped() -> None:
    assert set(SHIPPED) <= set(known_feeders())


def test_unknown_feeder_names_known_ones() -> None:
    with pytest.raises(GridError) as info:
        load_feeder("ieee34")
    msg = str(info.value)
    assert "ieee34" in msg
    for name in SHIPPED:
        assert name in msg


@pytest.mark.skipif(importlib.util.find_spec("simbench") is not None, reason="simbench installed")
def test_simbench_without_extra_says_what_to_install() -> None:
    with pytest.raises(GridError, match=r"gridledger\[simbench\]"):
        load_feeder("1-LV-rural1--0-sw")


@pytest.mark.skipif(importlib.util.find_spec("simbench") is None, reason="simbench not installed")
def test_simbench_feeder_builds() -> None:
    feeder = load_feeder("1-LV-rural1--0-sw")
    assert feeder.n_buses > 10
    assert np.all(np.isfinite(feeder.line_max_i_ka))


def test_bad_voltage_band() -> None:
    with pytest.raises(GridError, match="voltage band"):
        load_feeder("ieee33", v_min_pu=1.05, v_max_pu=0.95)


@pytest.mark.parametrize("name", SHIPPED)
def test_ratings_present_and_finite(feeders: dict[str, Feeder], name: str) -> None:
    f = feeders[name]
    assert f.n_lines == len(f.line_max_i_ka) == len(f.line_length_km)
    assert np.all(np.isfinite(f.line_max_i_ka))
    # real conductor ampacities: no 99999 / 1 kA placeholders left
    assert np.all((f.line_max_i_ka > 0.05) & (f.line_max_i_ka < 1.0))
    assert np.all(f.line_length_km > 0) and np.all(f.line_length_km < 5)
    assert np.all(np.isfinite(f.line_rating_kva)) and np.all(f.line_rating_kva > 0)
    assert np.all(np.isfinite(f.trafo_sn_kva)) and np.all(f.trafo_sn_kva > 0)
    assert np.allclose(f.net.line.loc[f.line_ids, "max_i_ka"].to_numpy(), f.line_max_i_ka)


@pytest.mark.parametrize("name", SHIPPED)
def test_structure(feeders: dict[str, Feeder], name: str) -> None:
    f = feeders[name]
    net = f.net
    b = f.n_buses
    assert f.bus_ids[0] == int(net.ext_grid.bus.iloc[0])
    assert sorted(f.bus_ids) == sorted(int(i) for i in net.bus.index)
    assert f.n_lines + f.n_trafos == b - 1  # radial
    assert f.xy.shape == (b, 2) and np.all(np.isfinite(f.xy))
    assert f.branch_of_bus.shape == (b,) and f.branch_of_bus[0] == 0
    assert f.branch_of_bus.min() == 0
    assert set(np.unique(f.branch_of_bus)) == set(range(int(f.branch_of_bus.max()) + 1))
    # one load and one sgen per market bus, in market order
    assert len(net.load) == len(net.sgen) == b
    assert net.load.bus.tolist() == f.bus_ids == net.sgen.bus.tolist()
    assert f.base_load_p_kw.shape == f.base_load_q_kvar.shape == (b,)
    assert f.base_load_p_kw[0] == 0.0


def test_ieee33_base_load_matches_case(ieee33: Feeder) -> None:
    case = pn.case33bw()
    expect_p = np.zeros(33)
    expect_q = np.zeros(33)
    np.add.at(expect_p, case.load.bus.to_numpy(), case.load.p_mw.to_numpy() * 1000)
    np.add.at(expect_q, case.load.bus.to_numpy(), case.load.q_mvar.to_numpy() * 1000)
    assert ieee33.bus_ids == list(range(33))
    np.testing.assert_allclose(ieee33.base_load_p_kw, expect_p)
    np.testing.assert_allclose(ieee33.base_load_q_kvar, expect_q)
    assert ieee33.base_load_p_kw.sum() == pytest.approx(3715.0)
    assert (ieee33.v_min_pu, ieee33.v_max_pu) == (0.95, 1.05)


def test_ieee33_impedances_kept_and_lengths_from_r(ieee33: Feeder) -> None:
    case = pn.case33bw()
    live = case.line[case.line.in_service]
    np.testing.assert_allclose(ieee33.line_r_ohm, live.r_ohm_per_km.to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(ieee33.line_x_ohm, live.x_ohm_per_km.to_numpy(), rtol=1e-12)
    assert ieee33.line_length_km.sum() == pytest.approx(25.75, abs=0.05)


def test_ieee33_trunk_head_loading_at_design_peak(ieee33: Feeder) -> None:
    res = run_ac(ieee33, -ieee33.base_load_p_kw, -ieee33.base_load_q_kvar)
    head = res.line_loading_pct[:5]  # lines 0-1 .. 4-5: the trunk up to the third lateral
    assert np.all((head >= 58.0) & (head <= 80.0)), head
    assert res.line_loading_pct.max() <= 75.0 + 1e-6  # design rule: <= 75 % at peak


def test_ieee33_branches(ieee33: Feeder) -> None:
    br = ieee33.branch_of_bus
    assert set(np.flatnonzero(br == 0)) == set(range(18))  # trunk 0..17
    assert set(np.flatnonzero(br == 1)) == {18, 19, 20, 21}
    assert set(np.flatnonzero(br == 2)) == {22, 23, 24}
    assert set(np.flatnonzero(br == 3)) == set(range(25, 33))


def test_cigre_lv_residential(feeders: dict[str, Feeder]) -> None:
    f = feeders["cigre_lv"]
    assert f.n_buses == 19 and f.n_trafos == 1 and f.trafo_sn_kva[0] == pytest.approx(500.0)
    assert f.base_load_p_kw.sum() == pytest.approx(383.8, abs=0.1)
    assert f.bus_vn_kv[0] == 20.0 and np.all(f.bus_vn_kv[1:] == 0.4)


def test_islanded_rejected() -> None:
    """Loops are accepted (tests/grid/test_meshed.py); unreachable buses are not."""
    with pytest.raises(GridError, match="not connected"):
        build_tree(4, np.array([0, 0, 2]), np.array([1, 1, 3]), "island")
