"""run_ac against pandapower's own runpp on a freshly built copy of the case.

Tolerances: voltages 1e-6 p.u., loadings 1e-5 percentage points. Both solvers stop
at a 1e-8 MVA mismatch from different starting points (ours warm-starts from the
previous interval), so agreement is to that tolerance, not bit for bit.
"""

from __future__ import annotations

import copy

import numpy as np
import pandapower as pp
import pandapower.networks as pn
import pandapower.toolbox as pptb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gridledger.errors import GridError
from gridledger.grid import Feeder, default_q_kvar, run_ac, violations

_CASE33 = pn.case33bw()


def _plain_ieee33(feeder: Feeder, p_kw: np.ndarray, q_kvar: np.ndarray) -> pp.pandapowerNet:
    """The reference: plain pandapower on a fresh case33bw with the same injections."""
    net = copy.deepcopy(_CASE33)
    pptb.drop_lines(net, net.line.index[~net.line.in_service])
    net.line["max_i_ka"] = feeder.line_max_i_ka  # same ratings (the case has none)
    net.load["p_mw"] = 0.0
    net.load["q_mvar"] = 0.0
    for bus in range(1, 33):
        pp.create_sgen(net, bus, p_mw=p_kw[bus] / 1000.0, q_mvar=q_kvar[bus] / 1000.0)
    pp.runpp(net)
    return net


injections = st.lists(st.floats(-400.0, 300.0), min_size=32, max_size=32)


@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(p=injections, q_scale=st.floats(-0.6, 0.6))
def test_ieee33_equals_plain_pandapower(ieee33: Feeder, p: list[float], q_scale: float) -> None:
    p_kw = np.array([0.0, *p])
    q_kvar = q_scale * p_kw
    ours = run_ac(ieee33, p_kw, q_kvar)
    ref = _plain_ieee33(ieee33, p_kw, q_kvar)
    np.testing.assert_allclose(ours.v_pu, ref.res_bus.vm_pu.to_numpy(), atol=1e-6)
    np.testing.assert_allclose(
        ours.line_loading_pct, ref.res_line.loading_percent.to_numpy(), atol=1e-5
    )
    assert ours.losses_kw == pytest.approx(ref.res_line.pl_mw.sum() * 1000, abs=1e-3)
    assert ours.slack_p_kw == pytest.approx(ref.res_ext_grid.p_mw.iloc[0] * 1000, abs=1e-3)
    # energy balance: slack import + injections = losses
    assert ours.slack_p_kw + p_kw.sum() == pytest.approx(ours.losses_kw, abs=1e-3)
    assert ours.converged


@pytest.mark.parametrize("name", ["cigre_lv", "cigre_lv_full"])
def test_cigre_equals_plain_pandapower(feeders: dict[str, Feeder], name: str) -> None:
    f = feeders[name]
    rng = np.random.default_rng(7)
    for _ in range(3):
        p_kw = -f.base_load_p_kw * rng.uniform(0.0, 1.1, f.n_buses) + rng.uniform(
            0, 20, f.n_buses
        ) * (f.bus_vn_kv < 1)
        ours = run_ac(f, p_kw)
        ref = copy.deepcopy(f.net)
        # plain pandapower: write the same per-bus powers as one extra sgen per bus
        ref.load = ref.load.iloc[0:0]
        ref.sgen = ref.sgen.iloc[0:0]
        q_kvar = default_q_kvar(f, p_kw)
        for m, bus in enumerate(f.bus_ids):
            pp.create_sgen(ref, bus, p_mw=p_kw[m] / 1000, q_mvar=q_kvar[m] / 1000)
        pp.runpp(ref)
        np.testing.assert_allclose(
            ours.v_pu, ref.res_bus.vm_pu.loc[f.bus_ids].to_numpy(), atol=1e-6
        )
        np.testing.assert_allclose(
            ours.line_loading_pct,
            ref.res_line.loading_percent.loc[f.line_ids].to_numpy(),
            atol=1e-5,
        )
        np.testing.assert_allclose(
            ours.trafo_loading_pct,
            ref.res_trafo.loading_percent.loc[f.trafo_ids].to_numpy(),
            atol=1e-5,
        )


def test_default_q_follows_case_power_factor(ieee33: Feeder) -> None:
    p = -ieee33.base_load_p_kw.copy()
    p[5] = 50.0  # a generating bus runs at unity power factor
    q = default_q_kvar(ieee33, p)
    assert q[5] == 0.0
    np.testing.assert_allclose(q[1:5], -ieee33.base_load_q_kvar[1:5])
    a = run_ac(ieee33, p)
    b = run_ac(ieee33, p, q)
    np.testing.assert_allclose(a.v_pu, b.v_pu)


def test_base_case_undervoltage_reported(ieee33: Feeder) -> None:
    res = run_ac(ieee33, -ieee33.base_load_p_kw, -ieee33.base_load_q_kvar)
    assert res.v_pu.min() == pytest.approx(0.91309, abs=1e-4)  # Baran & Wu's published 0.9131
    assert res.losses_kw == pytest.approx(202.68, abs=0.05)  # published 202.7 kW
    found = violations(res, ieee33.v_min_pu, ieee33.v_max_pu)
    assert {v.kind for v in found} == {"bus"}
    assert all(v.value < v.limit == 0.95 for v in found)
    assert 17 in {v.index for v in found}


def test_thermal_violation_reported(ieee33: Feeder) -> None:
    p = -2.0 * ieee33.base_load_p_kw
    res = run_ac(ieee33, p, 0.0 * p)
    lines = [v for v in violations(res, ieee33.v_min_pu, ieee33.v_max_pu) if v.kind == "line"]
    assert lines and lines[0].index == 0 and lines[0].value > 100.0


def test_wrong_shape_and_nan_rejected(ieee33: Feeder) -> None:
    with pytest.raises(GridError, match="shape"):
        run_ac(ieee33, np.zeros(5))
    bad = np.zeros(33)
    bad[3] = np.nan
    with pytest.raises(GridError, match="non-finite"):
        run_ac(ieee33, bad)


def test_divergence_raises_then_recovers(ieee33: Feeder) -> None:
    with pytest.raises(GridError, match="did not converge"):
        run_ac(ieee33, np.full(33, -1.0e5))
    ok = run_ac(ieee33, -ieee33.base_load_p_kw, -ieee33.base_load_q_kvar)
    assert ok.converged and ok.v_pu.min() == pytest.approx(0.91309, abs=1e-4)


def test_ieee33_warm_starts_over_random_loads(ieee33: Feeder) -> None:
    """Each run warm-starts from the last; all converge (speed: benchmarks/bench_security.py)."""
    base = -ieee33.base_load_p_kw
    run_ac(ieee33, base)
    rng = np.random.default_rng(1)
    for _ in range(30):
        p = base * rng.uniform(0.3, 1.2, 33)
        assert run_ac(ieee33, p).converged
