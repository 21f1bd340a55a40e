"""Linear screening vs the AC power flow.

Stated tolerances (measured values in docs/grid.md):
- around no load, LinDistFlow is the exact linearisation of the AC power flow:
  dv_dp and dv_dq match central finite differences of run_ac to 1e-3 (relative,
  max-norm);
- at the ieee33 base-case peak (V down to 0.913 p.u.) they match to 20 %;
- screened voltages at the base-case peak are within 0.01 p.u. of AC and screened
  line/transformer loadings within 6 percentage points.
"""

from __future__ import annotations

import numpy as np
import pytest

from gridledger.grid import Feeder, run_ac, screen, sensitivities

SHIPPED = ("ieee33", "cigre_lv", "cigre_lv_full")


def _fd(f: Feeder, p0: np.ndarray, q0: np.ndarray, h: float) -> tuple[np.ndarray, np.ndarray]:
    b = f.n_buses
    jp = np.zeros((b, b))
    jq = np.zeros((b, b))
    for k in range(1, b):
        e = np.zeros(b)
        e[k] = h
        jp[:, k] = (run_ac(f, p0 + e, q0).v_pu - run_ac(f, p0 - e, q0).v_pu) / (2 * h)
        jq[:, k] = (run_ac(f, p0, q0 + e).v_pu - run_ac(f, p0, q0 - e).v_pu) / (2 * h)
    return jp, jq


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


@pytest.mark.parametrize("name", ["ieee33", "cigre_lv"])
def test_exact_at_no_load(feeders: dict[str, Feeder], name: str) -> None:
    f = feeders[name]
    s = sensitivities(f)
    zero = np.zeros(f.n_buses)
    jp, jq = _fd(f, zero, zero, h=1.0)
    assert _rel(s.dv_dp, jp) < 1e-3
    assert _rel(s.dv_dq, jq) < 1e-3


def test_close_at_peak_load(ieee33: Feeder) -> None:
    s = sensitivities(ieee33)
    jp, jq = _fd(ieee33, -ieee33.base_load_p_kw, -ieee33.base_load_q_kvar, h=5.0)
    assert _rel(s.dv_dp, jp) < 0.20
    assert _rel(s.dv_dq, jq) < 0.20


@pytest.mark.parametrize("name", SHIPPED)
def test_screen_vs_ac_at_peak(feeders: dict[str, Feeder], name: str) -> None:
    f = feeders[name]
    s = sensitivities(f)
    p, q = -f.base_load_p_kw, -f.base_load_q_kvar
    ac = run_ac(f, p, q)
    est = screen(f, s, p, q)
    assert np.abs(est.v_pu - ac.v_pu).max() < 0.01
    assert np.abs(est.line_loading_pct - ac.line_loading_pct).max() < 6.0
    assert np.abs(est.trafo_loading_pct - ac.trafo_loading_pct).max(initial=0.0) < 6.0


def test_screen_symmetric_and_signs(ieee33: Feeder) -> None:
    s = sensitivities(ieee33)
    np.testing.assert_allclose(s.dv_dp, s.dv_dp.T)
    assert np.all(s.dv_dp >= 0) and np.all(s.dv_dp[0] == 0)
    # injection raises voltage, withdrawal lowers it
    up = screen(ieee33, s, np.eye(33)[17] * 100.0, np.zeros(33))
    assert up.v_pu[17] > s.v0_pu and up.line_p_kw[16] < 0  # flows back towards 16
