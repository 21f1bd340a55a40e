"""Electrical distances between market buses, computed once per feeder.

Definitions (B buses, L lines, all matrices symmetric, non-negative, zero diagonal):

- ``path_km[p, q]``: sum of line lengths on the tree path between p and q
  (transformers count 0 km); on a meshed feeder the shortest such path;
- ``path_ohm[p, q]``: sum of |z| = sqrt(r^2 + x^2) in ohm over the path's branches;
  a transformer's impedance is referred to its LV side (vk% V_lv^2 / S_n); on a
  meshed feeder the path of least sum |z|;
- ``ptdf[l, p]``: change of the active flow on line l (from_bus -> to_bus, the
  pandapower orientation) per unit injected at bus p and withdrawn at the slack;
- ``ptdf_distance[p, q] = sum_l |ptdf[l, p] - ptdf[l, q]|``: on a radial feeder,
  the number of lines on the path (on a meshed feeder, flows split around
  loops and the entries are fractions, :mod:`gridledger.grid.meshed`);
- ``line_rating_kw[l]``: thermal rating as active power at nominal voltage and
  unity power factor, sqrt(3) V_n I_max;
- ``zone[b]``: the branch (lateral) id of bus b, ``Feeder.branch_of_bus``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from gridledger.grid.catalogue import Feeder
from gridledger.grid.meshed import branch_ptdf, bus_impedance_matrix, shortest_paths

logger = logging.getLogger(__name__)

_SLOW_OPS = 10**10  # about a minute of numpy

__all__ = [
    "BranchImpedances",
    "ElectricalDistances",
    "branch_impedances",
    "electrical_distances",
    "meshed_ptdf",
]


@dataclass(frozen=True, eq=False)
class BranchImpedances:
    """Series impedance of each tree edge (lines first, then transformers)."""

    r_ohm: np.ndarray
    x_ohm: np.ndarray
    r_pu: np.ndarray
    x_pu: np.ndarray
    length_km: np.ndarray
    is_line: np.ndarray


@dataclass(frozen=True, eq=False)
class ElectricalDistances:
    """Per-feeder distance matrices (see module docstring).

    On a meshed feeder ``ptdf_distance`` is computed on first use: it costs
    L x B^2 operations (1.6e11, about 20 min, on a 5,000-bus grid), and only the
    ``ptdf`` distance metric of the network fee needs it.
    """

    path_km: np.ndarray
    path_ohm: np.ndarray
    ptdf: np.ndarray
    line_length_km: np.ndarray
    line_rating_kw: np.ndarray
    zone: np.ndarray
    lines_on_path: np.ndarray | None = None  # radial feeders: ptdf_distance, precomputed

    @cached_property
    def ptdf_distance(self) -> np.ndarray:
        if self.lines_on_path is not None:
            return self.lines_on_path
        n_lines, n_buses = self.ptdf.shape
        if n_lines * n_buses * n_buses > _SLOW_OPS:
            logger.warning(
                "computing the PTDF distance of a meshed feeder: %d lines x %d^2 bus pairs",
                n_lines,
                n_buses,
            )
        return _ptdf_distance(self.ptdf)


def branch_impedances(feeder: Feeder) -> BranchImpedances:
    """Series r/x of every edge, in ohm (LV-referred for transformers) and p.u. on net.sn_mva."""
    net = feeder.net
    s_base_mva = float(net.sn_mva)
    trafo = net.trafo.loc[feeder.trafo_ids] if feeder.n_trafos else net.trafo.iloc[0:0]
    par = trafo.parallel.to_numpy(float)
    sn = trafo.sn_mva.to_numpy(float) * par
    vn_lv = trafo.vn_lv_kv.to_numpy(float)
    z_t_ohm = trafo.vk_percent.to_numpy(float) / 100.0 * vn_lv**2 / sn
    r_t_ohm = trafo.vkr_percent.to_numpy(float) / 100.0 * vn_lv**2 / sn
    x_t_ohm = np.sqrt(np.maximum(z_t_ohm**2 - r_t_ohm**2, 0.0))
    r_ohm = np.concatenate([feeder.line_r_ohm, r_t_ohm])
    x_ohm = np.concatenate([feeder.line_x_ohm, x_t_ohm])
    vn_kv = np.concatenate([feeder.line_vn_kv, feeder.bus_vn_kv[feeder.trafo_to]])
    z_base = vn_kv**2 / s_base_mva
    return BranchImpedances(
        r_ohm=r_ohm,
        x_ohm=x_ohm,
        r_pu=r_ohm / z_base,
        x_pu=x_ohm / z_base,
        length_km=np.concatenate([feeder.line_length_km, np.zeros(feeder.n_trafos)]),
        is_line=np.concatenate([np.ones(feeder.n_lines, bool), np.zeros(feeder.n_trafos, bool)]),
    )


def shared_path(path_edges: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """``W[j, k]`` = sum of ``weight`` over edges on both root paths of j and k."""
    weighted: np.ndarray = (path_edges * weight) @ path_edges.T
    return weighted


def _pair_path(path_edges: np.ndarray, weight: np.ndarray) -> np.ndarray:
    shared = shared_path(path_edges, weight)
    depth = np.diag(shared)
    out = depth[:, None] + depth[None, :] - 2.0 * shared
    out = np.maximum(out, 0.0)  # clip round-off
    np.fill_diagonal(out, 0.0)
    return 0.5 * (out + out.T)


def meshed_ptdf(feeder: Feeder, imp: BranchImpedances) -> tuple[np.ndarray, np.ndarray]:
    """PTDF of lines and transformers from the bus impedance matrix (any topology)."""
    tree = feeder.tree
    z_pu = imp.r_pu + 1j * imp.x_pu
    z_bus = bus_impedance_matrix(tree.n_buses, tree.edge_from, tree.edge_to, z_pu)
    ptdf_all = branch_ptdf(z_bus, tree.edge_from, tree.edge_to, z_pu)
    return ptdf_all[: feeder.n_lines], ptdf_all[feeder.n_lines :]


def line_ptdf(feeder: Feeder) -> tuple[np.ndarray, np.ndarray]:
    """PTDF of lines (L,B) and transformers (T,B): flow from->to (hv->lv) per unit at bus.

    Radial feeders: from the tree (entries -1/0/+1); meshed: :func:`meshed_ptdf`.
    """
    tree = feeder.tree
    if tree.meshed:
        return meshed_ptdf(feeder, branch_impedances(feeder))
    sub = tree.subtree_matrix().astype(float)
    parent = tree.parent
    edge_from = tree.edge_from
    n_lines = feeder.n_lines
    # flow from->to of edge e = -(injections below) if from is the parent, + otherwise
    sign = np.where(parent[tree.edge_to] == edge_from, -1.0, 1.0)
    ptdf_all = sub * sign[:, None]
    return ptdf_all[:n_lines], ptdf_all[n_lines:]


def _ptdf_distance(ptdf: np.ndarray) -> np.ndarray:
    """``sum_l |ptdf[l, p] - ptdf[l, q]|``, one line at a time (memory O(B^2))."""
    n = ptdf.shape[1]
    out = np.zeros((n, n))
    for row in ptdf:
        out += np.abs(row[:, None] - row[None, :])
    return out


def electrical_distances(feeder: Feeder) -> ElectricalDistances:
    """Compute the distance matrices of ``feeder`` (radial: O(B^2 E); meshed: O(B^3 + B^2 L)).

    Radial: sums along the tree path; ``ptdf_distance`` is then the number of
    lines on the path. Meshed: shortest paths on the graph and the meshed PTDF.
    """
    imp = branch_impedances(feeder)
    tree = feeder.tree
    if tree.meshed:
        ptdf, _ = meshed_ptdf(feeder, imp)
        n = tree.n_buses
        path_km = shortest_paths(n, tree.edge_from, tree.edge_to, imp.length_km)
        path_ohm = shortest_paths(n, tree.edge_from, tree.edge_to, np.hypot(imp.r_ohm, imp.x_ohm))
        lines_on_path = None
    else:
        path_edges = tree.path_edges().astype(float)
        ptdf, _ = line_ptdf(feeder)
        path_km = _pair_path(path_edges, imp.length_km)
        path_ohm = _pair_path(path_edges, np.hypot(imp.r_ohm, imp.x_ohm))
        # = sum_l |ptdf[l, p] - ptdf[l, q]| with entries -1/0/+1: the lines on the path
        lines_on_path = _pair_path(path_edges, imp.is_line.astype(float))
    return ElectricalDistances(
        path_km=path_km,
        path_ohm=path_ohm,
        ptdf=ptdf,
        line_length_km=feeder.line_length_km.copy(),
        line_rating_kw=feeder.line_rating_kva.copy(),
        zone=feeder.branch_of_bus.copy(),
        lines_on_path=lines_on_path,
    )
