"""Meshed feeders: topology, the bus-impedance linear model, shortest-path distances,
unsupported grids, and (with the simbench extra) SimBench MV and MV/LV feeders.

Stated tolerances:
- at no load the meshed model is the exact linearisation of the AC power flow:
  dv_dp, dv_dq and the line PTDF match central finite differences of run_ac to 1e-3
  (relative, max-norm) on ieee33_meshed;
- on a radial feeder the meshed formulas reproduce the radial ones to 1e-9;
- screened voltages at the base-case peak are within 0.01 p.u. of AC (ieee33_meshed,
  SimBench MV).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandapower.networks as pn
import pytest

from gridledger.errors import GridError
from gridledger.grid import (
    Feeder,
    FeederUnsupported,
    catalogue,
    electrical_distances,
    load_feeder,
    prepare_feeder,
    run_ac,
    screen,
    sensitivities,
)
from gridledger.grid.distances import branch_impedances, line_ptdf, meshed_ptdf
from gridledger.grid.meshed import bus_impedance_matrix, shortest_paths
from gridledger.grid.topology import build_tree
from gridledger.ledger import Ledger
from gridledger.report.folder import run_to_folder
from gridledger.scenario import load_scenario, validate_scenario
from gridledger.security.justification import committed_network
from gridledger.sim.loop import run
from gridledger.sim.runner import audit_folder
from gridledger.world import build_world

HAS_SIMBENCH = importlib.util.find_spec("simbench") is not None
needs_simbench = pytest.mark.skipif(
    not HAS_SIMBENCH, reason="needs the optional simbench extra: pip install -e '.[simbench]'"
)
MV = "1-MV-rural--0-sw"


@pytest.fixture(scope="module")
def meshed() -> Feeder:
    return load_feeder("ieee33_meshed")


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


def test_build_tree_accepts_loops_and_lists_chords() -> None:
    tree = build_tree(3, np.array([0, 1, 2]), np.array([1, 2, 0]), "loop")
    assert tree.meshed and tree.chords() == [1]  # BFS from 0 takes edges 0 and 2
    radial = build_tree(3, np.array([0, 1]), np.array([1, 2]), "line")
    assert not radial.meshed and radial.chords() == []
    with pytest.raises(GridError, match="not connected"):
        build_tree(4, np.array([0, 0, 2]), np.array([1, 1, 3]), "island")


def test_ieee33_meshed_structure(meshed: Feeder, ieee33: Feeder) -> None:
    assert meshed.meshed and not ieee33.meshed
    assert meshed.n_buses == 33 and meshed.n_lines == 37
    assert len(meshed.tree.chords()) == 5
    np.testing.assert_array_equal(meshed.base_load_p_kw, ieee33.base_load_p_kw)
    # loops relieve the feeder end: the published 0.913 p.u. rises
    assert run_ac(meshed, -meshed.base_load_p_kw, -meshed.base_load_q_kvar).v_pu.min() > 0.95


@pytest.mark.parametrize("name", ["ieee33", "cigre_lv", "cigre_lv_full"])
def test_meshed_formulas_reduce_to_radial(feeders: dict[str, Feeder], name: str) -> None:
    f = feeders[name]
    imp = branch_impedances(f)
    z = bus_impedance_matrix(f.n_buses, f.tree.edge_from, f.tree.edge_to, imp.r_pu + 1j * imp.x_pu)
    s = sensitivities(f)
    scale = s.v0_pu * float(f.net.sn_mva) * 1000.0
    np.testing.assert_allclose(z.real / scale, s.dv_dp, atol=1e-9 * np.abs(s.dv_dp).max())
    np.testing.assert_allclose(z.imag / scale, s.dv_dq, atol=1e-9 * np.abs(s.dv_dq).max())
    ptdf_l, ptdf_t = meshed_ptdf(f, imp)
    radial_l, radial_t = line_ptdf(f)
    np.testing.assert_allclose(ptdf_l, radial_l, atol=1e-9)
    np.testing.assert_allclose(ptdf_t, radial_t, atol=1e-9)
    d = electrical_distances(f)
    sp = shortest_paths(f.n_buses, f.tree.edge_from, f.tree.edge_to, imp.length_km)
    np.testing.assert_allclose(sp, d.path_km, atol=1e-6)


@pytest.mark.parametrize("name", ["ieee33", "cigre_lv", "cigre_lv_full"])
def test_radial_ptdf_distance_unchanged(feeders: dict[str, Feeder], name: str) -> None:
    """The radial shortcut (lines on the path) equals the PTDF formula exactly."""
    d = electrical_distances(feeders[name])
    old = np.abs(d.ptdf[:, :, None] - d.ptdf[:, None, :]).sum(axis=0)
    np.testing.assert_array_equal(d.ptdf_distance, old)


def _fd(f: Feeder, h: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    b = f.n_buses
    zero = np.zeros(b)
    jp, jq = np.zeros((b, b)), np.zeros((b, b))
    jl = np.zeros((f.n_lines, b))
    for k in range(1, b):
        e = np.zeros(b)
        e[k] = h
        up, down = run_ac(f, e, zero), run_ac(f, -e, zero)
        jp[:, k] = (up.v_pu - down.v_pu) / (2 * h)
        jl[:, k] = (up.line_p_from_kw - down.line_p_from_kw) / (2 * h)
        jq[:, k] = (run_ac(f, zero, e).v_pu - run_ac(f, zero, -e).v_pu) / (2 * h)
    return jp, jq, jl


def test_meshed_model_exact_at_no_load(meshed: Feeder) -> None:
    s = sensitivities(meshed)
    jp, jq, jl = _fd(meshed, h=1.0)
    assert _rel(s.dv_dp, jp) < 1e-3
    assert _rel(s.dv_dq, jq) < 1e-3
    assert _rel(s.ptdf_line, jl) < 1e-3
    # a loop splits the flow: fractional entries
    assert np.any((np.abs(s.ptdf_line) > 0.05) & (np.abs(s.ptdf_line) < 0.95))


def test_meshed_screen_vs_ac_at_peak(meshed: Feeder) -> None:
    s = sensitivities(meshed)
    p, q = -meshed.base_load_p_kw, -meshed.base_load_q_kvar
    ac = run_ac(meshed, p, q)
    est = screen(meshed, s, p, q)
    assert np.abs(est.v_pu - ac.v_pu).max() < 0.01
    assert np.abs(est.line_loading_pct - ac.line_loading_pct).max() < 6.0


def test_meshed_distances_are_shortest_paths(meshed: Feeder, ieee33: Feeder) -> None:
    d = electrical_distances(meshed)
    radial = electrical_distances(ieee33)
    for m in (d.path_km, d.path_ohm, d.ptdf_distance):
        assert m.shape == (33, 33)
        np.testing.assert_allclose(m, m.T)
        assert np.all(m >= 0) and np.all(np.diag(m) == 0)
    # a closed tie line is a shortcut: never longer, and strictly shorter somewhere
    assert np.all(d.path_km <= radial.path_km + 1e-6)
    assert np.any(d.path_km < radial.path_km - 0.1)
    # triangle inequality
    km = d.path_km
    assert np.all(km[:, :, None] <= km[:, None, :] + km.T[None, :, :] + 1e-9)
    assert d.ptdf.shape == (meshed.n_lines, 33) and np.all(d.ptdf[:, 0] == 0)


def test_dropped_unsupplied_buses() -> None:
    net = pn.case33bw()
    net.line.loc[net.line.index[~net.line.in_service], "in_service"] = False
    net.line["max_i_ka"] = 0.2
    cut = int(net.line.index[(net.line.from_bus == 16) & (net.line.to_bus == 17)][0])
    net.line.at[cut, "in_service"] = False
    f = prepare_feeder(net, "ieee33_cut")
    assert f.n_buses == 32 and 17 not in f.bus_ids and not f.meshed


def test_unsupported_grids_are_named() -> None:
    net = pn.case33bw()
    net.line["max_i_ka"] = 0.2
    net.ext_grid.loc[len(net.ext_grid)] = net.ext_grid.iloc[0]
    net.ext_grid.at[len(net.ext_grid) - 1, "bus"] = 17
    with pytest.raises(FeederUnsupported, match="2 in-service external grids"):
        prepare_feeder(net, "two_slacks")
    net = pn.case33bw()
    net.line["max_i_ka"] = 0.2
    net.line.at[3, "r_ohm_per_km"] = 0.0
    net.line.at[3, "x_ohm_per_km"] = 0.0
    with pytest.raises(FeederUnsupported, match="zero impedance"):
        prepare_feeder(net, "short")
    assert issubclass(FeederUnsupported, GridError)


def test_load_elements_recorded(ieee33: Feeder) -> None:
    assert len(ieee33.load_element_bus) == 32
    np.testing.assert_allclose(ieee33.load_element_p_kw.sum(), ieee33.base_load_p_kw.sum())
    per_bus = np.zeros(ieee33.n_buses)
    np.add.at(per_bus, ieee33.load_element_bus, ieee33.load_element_p_kw)
    np.testing.assert_allclose(per_bus, ieee33.base_load_p_kw)


@needs_simbench
def test_simbench_mv_runs_meshed() -> None:
    f = load_feeder(MV)
    raw = catalogue._RAW_CACHE[MV][0]  # the case as SimBench built it (cached, unprepared)
    sw = raw.switch
    open_lines = set(sw[(sw.et == "l") & ~sw.closed.astype(bool)].element)
    assert open_lines  # the ring is operated open
    assert f.n_lines == len(raw.line) - len(open_lines)  # switch states honoured
    assert not set(f.line_ids) & open_lines
    assert f.meshed  # the parallel HV/MV transformers close a loop
    s = sensitivities(f)
    p, q = -f.base_load_p_kw, -f.base_load_q_kvar
    ac = run_ac(f, p, q)
    assert np.abs(screen(f, s, p, q).v_pu - ac.v_pu).max() < 0.01
    d = electrical_distances(f)
    assert np.all(np.isfinite(d.path_km)) and d.path_km.max() > 1.0
    assert len(f.load_element_bus) == len(raw.load)


@needs_simbench
def test_simbench_unsupplied_or_unknown() -> None:
    with pytest.raises(GridError, match="SimBench could not build"):
        load_feeder("1-MV-nowhere--0-sw")


def test_meshed_feeder_runs_with_fee_and_security() -> None:
    """ieee33_meshed end to end off chain: distance fee from shortest paths, the
    congestion stage on the meshed sensitivities, the committed linear network."""
    sc = validate_scenario(
        {
            "seed": 5,
            "network": {"feeder": "ieee33_meshed"},
            "horizon": {"intervals": 4, "first_interval": 46},
            "members": {"pv_buses": [17, 32], "pv_kwp": 400.0, "forecaster": "perfect"},
            "market": {"clearing": "greedy", "network_fee": "distance"},
            "security": {"congestion": "greedy", "v_max_pu": 1.02},
            "chain": {"backend": "none"},
        },
        "test",
    )
    world = build_world(sc)
    assert world.feeder.meshed and world.fees is not None
    radial = build_world(
        sc.model_copy(update={"network": sc.network.model_copy(update={"feeder": "ieee33"})})
    )
    assert radial.fees is not None
    assert np.all(world.fees <= radial.fees) and np.any(world.fees < radial.fees)
    net = committed_network(world)
    assert net.relief.shape == (32 + 37, 33) and np.all(net.relief >= 0)
    result = run(sc, world=world)
    assert len(result.outcomes) == 4
    assert all(o.security is not None for o in result.outcomes)


@needs_simbench
def test_simbench_hv_grid_is_named_unsupported() -> None:
    with pytest.raises(FeederUnsupported, match="3 in-service external grids"):
        load_feeder("1-HV-mixed--0-sw")


@pytest.mark.slow  # fast lane budget: a run on the embedded chain (about 6 s)
@pytest.mark.parametrize(("form", "version"), [("dense", 1), ("loops", 3)])
def test_meshed_curtailments_on_chain_audit_ok(tmp_path: Path, form: str, version: int) -> None:
    """The committed network of a meshed feeder (meshed dv_dp and PTDF), dense or as
    spanning tree plus loop correction, justifies the congestion stage's curtailments on
    chain: the run matches the reference and audits OK."""
    sc = load_scenario(
        "ieee33_stressed",
        [
            'network.feeder="ieee33_meshed"',
            "horizon.intervals=3",
            "horizon.first_interval=50",
            "security.v_max_pu=1.005",
            f'security.network_form="{form}"',
        ],
    )
    out = tmp_path / "run"
    summary = run_to_folder(sc, out)
    assert summary["curtailed_kwh"] > 0
    assert summary["onchain_matches_reference"] is True
    assert audit_folder(out).ok
    ledger = Ledger.connect("embedded", state_dir=out / "chain")
    (configured,) = [e for e in ledger.events() if e.name == "NetworkConfigured"]
    assert bytes(configured.args["table"])[0] == version


def test_meshed_ptdf_distance_is_computed_only_when_asked(meshed: Feeder) -> None:
    """On a meshed feeder the L x B^2 PTDF distance waits for its first use (20 min at
    5,000 buses), and then equals the sum over lines."""
    f = meshed
    d = electrical_distances(f)
    assert f.meshed and "ptdf_distance" not in vars(d)
    expected = np.abs(d.ptdf[:, :, None] - d.ptdf[:, None, :]).sum(axis=0)
    np.testing.assert_allclose(d.ptdf_distance, expected, atol=1e-12)
    assert "ptdf_distance" in vars(d)
