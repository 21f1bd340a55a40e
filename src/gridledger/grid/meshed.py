"""Linear model of a meshed (or closed-loop) feeder, from the bus impedance matrix.

A radial feeder's sensitivities come from its tree (shared path impedances,
PTDF entries -1/0/+1; :mod:`gridledger.grid.distances`). When a feeder has
loops (closed tie switches, parallel transformers, SimBench MV rings) those
formulas no longer hold; this module gives their generalisation:

- ``Y`` = bus admittance matrix of the series impedances of every branch, in
  p.u. on ``net.sn_mva`` (line shunt capacitance and transformer magnetising
  branches neglected, nominal ratios), and ``Z = Y_red^-1`` with the slack row
  and column removed (zero there). On a radial feeder ``Z[j, k]`` is exactly
  the impedance of the shared part of the substation paths of j and k, so
  everything below reduces to the radial formulas.
- Voltages (fixed-point linearisation at flat voltage V0, as LinDistFlow):
  ``V_j ~ V0 + (1/V0) sum_k (R_jk p_k + X_jk q_k)`` with ``Z = R + jX``.
- Branch flows: a current injected at k (and withdrawn at the slack) flows on
  branch l (from -> to) as ``c[l, k] = (Z[f, k] - Z[t, k]) / z_l``; the active
  flow per kW injected is ``Re c`` (the PTDF; exactly -1/0/+1 on a radial
  feeder, fractions in a loop). The reactive term ``Im c`` is dropped
  (``|Im c| / |Re c|`` is small where r/x is similar around a loop).
- Distances on the meshed graph are shortest paths (Dijkstra; parallel
  branches count with their smallest weight).
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import shortest_path

__all__ = ["branch_ptdf", "bus_impedance_matrix", "shortest_paths"]


def bus_impedance_matrix(
    n_buses: int, edge_from: np.ndarray, edge_to: np.ndarray, z_pu: np.ndarray
) -> np.ndarray:
    """``Z`` (B, B) complex p.u.: the inverse of the slack-reduced bus admittance matrix."""
    y_series = 1.0 / z_pu
    y_bus = np.zeros((n_buses, n_buses), dtype=complex)
    np.add.at(y_bus, (edge_from, edge_from), y_series)
    np.add.at(y_bus, (edge_to, edge_to), y_series)
    np.add.at(y_bus, (edge_from, edge_to), -y_series)
    np.add.at(y_bus, (edge_to, edge_from), -y_series)
    z_bus = np.zeros((n_buses, n_buses), dtype=complex)
    z_bus[1:, 1:] = np.linalg.inv(y_bus[1:, 1:])
    z_bus = 0.5 * (z_bus + z_bus.T)  # symmetric up to round-off
    return z_bus


def branch_ptdf(
    z_bus: np.ndarray, edge_from: np.ndarray, edge_to: np.ndarray, z_pu: np.ndarray
) -> np.ndarray:
    """Active-power PTDF (E, B) of every branch, from -> to, slack as withdrawal point."""
    ptdf_c = (z_bus[edge_from] - z_bus[edge_to]) / z_pu[:, None]
    ptdf = np.real(ptdf_c)
    ptdf[:, 0] = 0.0
    return np.asarray(ptdf, dtype=float)


def shortest_paths(
    n_buses: int, edge_from: np.ndarray, edge_to: np.ndarray, weight: np.ndarray
) -> np.ndarray:
    """All-pairs shortest path lengths (B, B) over non-negative edge weights.

    Zero-weight edges (transformers measured in km) stay edges: every weight is
    raised by 1e-9 of the smallest positive one, and that much per hop is left
    in the result (relative error below 1e-9 x hops).
    """
    best: dict[tuple[int, int], float] = {}
    for a, b, w in zip(edge_from.tolist(), edge_to.tolist(), weight.tolist(), strict=True):
        key = (min(a, b), max(a, b))
        best[key] = min(best.get(key, np.inf), float(w))
    if not best:
        return np.zeros((n_buses, n_buses))
    rows = np.array([k[0] for k in best])
    cols = np.array([k[1] for k in best])
    vals = np.array(list(best.values()))
    positive = vals[vals > 0]
    hop = (float(positive.min()) if positive.size else 1.0) * 1e-9
    graph = coo_matrix((vals + hop, (rows, cols)), shape=(n_buses, n_buses)).tocsr()
    out = np.array(shortest_path(graph, method="D", directed=False), dtype=float)
    np.fill_diagonal(out, 0.0)
    return np.asarray(0.5 * (out + out.T), dtype=float)
