"""Linear screening for the security check: PTDF line flows and LinDistFlow voltages.

Line flows (radial feeder, losses neglected): ``P_l = PTDF[l, :] @ p``, same for Q;
the PTDF entry is -1/+1/0 (bus below the line / orientation / not below).

Voltages (LinDistFlow, Baran & Wu 1989, linearised around V0 = slack voltage):

    V_j ~ V0 + (1 / V0) * sum_k (R_jk p_k + X_jk q_k)

with injections p, q in p.u. (positive = generation) and R_jk (X_jk) the sum of
branch resistances (reactances) in p.u. over the shared part of the paths from
the substation to j and k. Hence ``dv_dp[j, k] = R_jk / (V0 S_base)`` p.u. per kW.

Meshed feeders (loops, parallel transformers): the same formulas with the
bus impedance matrix ``Z = R + jX`` (inverse of the slack-reduced admittance
matrix) in place of the shared path sums, and the PTDF from ``Z`` (fractions
around loops); :mod:`gridledger.grid.meshed`. On a radial feeder the two agree;
the radial path model is kept there (exact integers in the PTDF).

Accuracy (measured, see tests/grid/test_sensitivities.py and docs/grid.md):
the sensitivities equal the AC power flow's finite differences around the
no-load operating point to < 1e-4 (they are its exact linearisation there); at
the ieee33 base-case peak load they are within 14 % (max-norm) of the local AC
finite differences, and the screened voltages are within 0.007 p.u. of AC.
Screening is a filter, the AC power flow is the verdict.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gridledger.grid.catalogue import Feeder
from gridledger.grid.distances import branch_impedances, line_ptdf, meshed_ptdf, shared_path
from gridledger.grid.meshed import bus_impedance_matrix
from gridledger.grid.powerflow import default_q_kvar

__all__ = ["ScreenResult", "Sensitivities", "screen", "sensitivities"]

SQRT3 = math.sqrt(3.0)


@dataclass(frozen=True, eq=False)
class Sensitivities:
    """Linear sensitivities of a feeder (per kW / kvar of net injection)."""

    v0_pu: float
    dv_dp: np.ndarray  # (B, B) p.u. per kW
    dv_dq: np.ndarray  # (B, B) p.u. per kvar
    ptdf_line: np.ndarray  # (L, B) kW on line (from->to) per kW injected
    ptdf_trafo: np.ndarray  # (T, B) kW through transformer (hv->lv) per kW injected
    line_from: np.ndarray
    line_to: np.ndarray
    line_limit_ka: np.ndarray
    line_vn_kv: np.ndarray
    trafo_lv: np.ndarray
    trafo_sn_kva: np.ndarray
    q_per_p_load: np.ndarray


@dataclass(frozen=True, eq=False)
class ScreenResult:
    """Linear estimate of one interval's voltages and branch loadings."""

    v_pu: np.ndarray
    line_p_kw: np.ndarray
    line_q_kvar: np.ndarray
    line_loading_pct: np.ndarray
    trafo_loading_pct: np.ndarray


def sensitivities(feeder: Feeder) -> Sensitivities:
    """LinDistFlow voltage sensitivities and PTDFs of ``feeder`` (compute once).

    Radial: shared path sums; meshed: the bus impedance matrix (module docstring).
    """
    imp = branch_impedances(feeder)
    tree = feeder.tree
    if tree.meshed:
        z_bus = bus_impedance_matrix(
            tree.n_buses, tree.edge_from, tree.edge_to, imp.r_pu + 1j * imp.x_pu
        )
        r_shared = np.ascontiguousarray(z_bus.real)
        x_shared = np.ascontiguousarray(z_bus.imag)
        ptdf_line, ptdf_trafo = meshed_ptdf(feeder, imp)
    else:
        path_edges = tree.path_edges().astype(float)
        r_shared = shared_path(path_edges, imp.r_pu)
        x_shared = shared_path(path_edges, imp.x_pu)
        ptdf_line, ptdf_trafo = line_ptdf(feeder)
    v0 = float(feeder.net.ext_grid.vm_pu.iloc[0])
    s_base_kw = float(feeder.net.sn_mva) * 1000.0
    return Sensitivities(
        v0_pu=v0,
        dv_dp=r_shared / (v0 * s_base_kw),
        dv_dq=x_shared / (v0 * s_base_kw),
        ptdf_line=ptdf_line,
        ptdf_trafo=ptdf_trafo,
        line_from=feeder.line_from,
        line_to=feeder.line_to,
        line_limit_ka=feeder.line_max_i_ka,
        line_vn_kv=feeder.line_vn_kv,
        trafo_lv=feeder.trafo_to,
        trafo_sn_kva=feeder.trafo_sn_kva,
        q_per_p_load=feeder.q_per_p_load,
    )


def screen(
    feeder: Feeder,
    sens: Sensitivities,
    p_inj_kw: np.ndarray,
    q_inj_kvar: np.ndarray | None = None,
) -> ScreenResult:
    """Estimate voltages, line/transformer flows and loadings from net injections.

    ``q_inj_kvar`` defaults to the same load power factor rule as ``run_ac``.
    Loading uses the current |S| / (sqrt(3) V_n V) at the lower of the line's two
    estimated end voltages (transformers: at the LV side), so it tracks
    pandapower's current-based loading.
    """
    p = np.asarray(p_inj_kw, dtype=float)
    q = default_q_kvar(feeder, p) if q_inj_kvar is None else np.asarray(q_inj_kvar, dtype=float)
    v = sens.v0_pu + sens.dv_dp @ p + sens.dv_dq @ q
    line_p = sens.ptdf_line @ p
    line_q = sens.ptdf_line @ q
    v_end = np.minimum(v[sens.line_from], v[sens.line_to])
    i_ka = np.hypot(line_p, line_q) / (SQRT3 * sens.line_vn_kv * v_end) / 1000.0
    line_loading = 100.0 * i_ka / sens.line_limit_ka
    if sens.ptdf_trafo.shape[0]:
        t_s = np.hypot(sens.ptdf_trafo @ p, sens.ptdf_trafo @ q)
        trafo_loading = 100.0 * t_s / (sens.trafo_sn_kva * v[sens.trafo_lv])
    else:
        trafo_loading = np.zeros(0)
    return ScreenResult(v, line_p, line_q, line_loading, trafo_loading)
