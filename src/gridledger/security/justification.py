"""Curtailments the chain can check: the committed network and justified cuts.

The DSO commits, once per feeder, a static linearised network
(:func:`linear_network`, a :class:`~gridledger.market.justification.LinearNetwork`): for
each row a cut of generation can relieve,

- the upper voltage bound of every non-slack bus: LinDistFlow ``dv_dp`` at the slack
  voltage (its exact linearisation at no load, :mod:`gridledger.grid.sensitivities`);
- the upward (towards the substation) loading of every line and transformer: the PTDF
  magnitude over the branch rating (``sqrt(3) V_n I_max`` at 1 p.u., transformers ``S_n``);

the integer margin gained per Wh cut from a seller at each bus within one interval, in
nano-percent (1e-9 %) of the limit, rounded to the nearest integer. On a radial feeder both
follow from the tree (a bus row's entry is a value of the lowest common ancestor, a branch
row's is one value below the branch), so the network is built from one integer per bus and
per branch (:class:`~gridledger.market.radial.RadialTree`), which the chain can hold for
1,754 buses. Per interval the AC
power flow gives each row's margin (:func:`row_margins_npct`, floored) and
:func:`justify` chooses cuts with the congestion rule on that integer model, repairs them
to exact integer feasibility and names, for each cut trade, the violated row it relieves
most. The lp rule also returns its integer dual certificate. The outcome passes
:func:`gridledger.market.justification.check_curtailments` (checked before returning).

A violated row that no cut can fix (more relief needed than cutting every trade that loads
it gives) gets no curtailment and is reported as unresolvable: the verdict lists only cuts
the chain can justify.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from gridledger.errors import SecurityError
from gridledger.grid.catalogue import Feeder
from gridledger.grid.powerflow import PowerFlowResult
from gridledger.grid.sensitivities import Sensitivities, sensitivities
from gridledger.market.justification import (
    DUAL_SCALE,
    NPCT_PER_PCT,
    LinearNetwork,
    RowMargin,
    UnjustifiedCurtailment,
    check_curtailments,
    linear_network_from_tree,
    lp_weight,
)
from gridledger.market.loops import DENSE_MESHED_MAX_BUSES
from gridledger.market.orders import Curtailment, Trade
from gridledger.market.radial import RadialTree
from gridledger.security.curtailment import LinearLimits, curtail, least_cost_cuts
from gridledger.security.meshed_network import looped_network
from gridledger.world import World

__all__ = [
    "NETWORK_FORMS",
    "Justified",
    "committed_network",
    "justify",
    "linear_network",
    "relief_columns",
    "row_margins_npct",
]

SQRT3 = math.sqrt(3.0)


NETWORK_FORMS = ("auto", "dense", "loops")


def linear_network(
    feeder: Feeder, sens: Sensitivities, interval_h: float, form: str = "auto"
) -> LinearNetwork:
    """The feeder's committed linearised network (npct per Wh cut, see the module docstring).

    A meshed feeder's ``form``: ``"dense"`` (one integer per row and bus), ``"loops"``
    (spanning tree plus loop correction, :mod:`gridledger.security.meshed_network`) or
    ``"auto"``: dense up to :data:`~gridledger.market.loops.DENSE_MESHED_MAX_BUSES` buses,
    loops beyond. A radial feeder always has its tree form.
    """
    if interval_h <= 0:
        msg = f"linear_network: interval_h must be positive, got {interval_h}"
        raise SecurityError(msg)
    if form not in NETWORK_FORMS:
        msg = f"linear_network: form {form!r} is not one of {NETWORK_FORMS}"
        raise SecurityError(msg)
    per_wh = 100.0 * NPCT_PER_PCT / (1000.0 * interval_h)  # npct per (pct per kW) per Wh
    interval_s = round(interval_h * 3600.0)
    if not feeder.tree.meshed:
        return _radial_network(feeder, sens, per_wh, interval_s)
    if form == "loops" or (form == "auto" and feeder.n_buses > DENSE_MESHED_MAX_BUSES):
        return looped_network(feeder, sens.v0_pu, per_wh, interval_s)
    bus_rows = sens.dv_dp[1:] * per_wh
    s_line_kva = SQRT3 * feeder.line_vn_kv * feeder.line_max_i_ka * 1000.0
    line_rows = np.abs(sens.ptdf_line) / s_line_kva[:, None] * per_wh
    parts = [bus_rows, line_rows]
    if feeder.n_trafos:
        parts.append(np.abs(sens.ptdf_trafo) / feeder.trafo_sn_kva[:, None] * per_wh)
    relief = np.rint(np.vstack(parts)).astype(np.int64)
    return LinearNetwork(
        n_buses=feeder.n_buses,
        n_bus_rows=feeder.n_buses - 1,
        n_line_rows=feeder.n_lines,
        n_trafo_rows=feeder.n_trafos,
        interval_s=interval_s,
        relief=relief,
    )


def _radial_network(
    feeder: Feeder, sens: Sensitivities, per_wh: float, interval_s: int
) -> LinearNetwork:
    """A radial feeder's network from one integer per bus and per branch (market/radial.py):
    a bus row at bus ``b`` is the value of the lowest common ancestor (LinDistFlow's shared
    resistance, ``dv_dp[v, v]``), a branch row is ``1 / rating`` below the branch."""
    tree = feeder.tree
    parent = np.where(tree.parent < 0, 0, tree.parent).astype(np.int64)
    depth = np.zeros(tree.n_buses, dtype=np.int64)
    for b in range(1, tree.n_buses):
        v, d = b, 0
        while v != 0:
            v, d = int(parent[v]), d + 1
        depth[b] = d
    bus_value = np.rint(np.diag(sens.dv_dp) * per_wh).astype(np.int64)
    below = np.where(parent[tree.edge_to] == tree.edge_from, tree.edge_to, tree.edge_from)
    rating = [SQRT3 * feeder.line_vn_kv * feeder.line_max_i_ka * 1000.0]
    if feeder.n_trafos:
        rating.append(np.asarray(feeder.trafo_sn_kva, dtype=float))
    branch_value = np.rint(per_wh / np.concatenate(rating)).astype(np.int64)
    radial = RadialTree(parent, depth, bus_value, below.astype(np.int64), branch_value)
    return linear_network_from_tree(radial, feeder.n_lines, feeder.n_trafos, interval_s)


def committed_network(world: World) -> LinearNetwork:
    """The network the DSO commits at setup for ``world`` (its feeder and interval length)."""
    return linear_network(
        world.feeder,
        sensitivities(world.feeder),
        world.interval_h,
        world.scenario.security.network_form,
    )


def row_margins_npct(
    feeder: Feeder,
    sens: Sensitivities,
    result: PowerFlowResult,
    p_inj_kw: np.ndarray,
    v_max_pu: float,
    thermal_limit_pct: float,
) -> np.ndarray:
    """AC margin of every committed row (npct, floored; < 0 violated).

    Bus rows: ``v_max - v``. Branch rows: ``limit - loading`` when the branch's active
    power flows upwards, ``limit + loading`` otherwise (the upward row is then not loaded).
    Lines take the direction from the AC flow, transformers from the PTDF estimate.
    """
    upward_line = np.sign(sens.ptdf_line.sum(axis=1)) * result.line_p_from_kw > 0
    parts = [
        100.0 * (v_max_pu - result.v_pu[1:]),
        thermal_limit_pct - np.where(upward_line, 1.0, -1.0) * result.line_loading_pct,
    ]
    if feeder.n_trafos:
        upward_trafo = np.abs(sens.ptdf_trafo) @ np.asarray(p_inj_kw, dtype=float) > 0
        parts.append(
            thermal_limit_pct - np.where(upward_trafo, 1.0, -1.0) * result.trafo_loading_pct
        )
    return np.floor(np.concatenate(parts) * NPCT_PER_PCT).astype(np.int64)


def relief_columns(net: LinearNetwork, trades: Sequence[Trade]) -> np.ndarray:
    """``(R, n_trades)`` relief of each row per Wh cut of each trade (0 off the network)."""
    out = np.zeros((net.n_rows, len(trades)), dtype=np.int64)
    for t, trade in enumerate(trades):
        if 0 <= trade.seller_bus < net.n_buses:
            out[:, t] = net.relief[:, trade.seller_bus]
    return out


@dataclass(frozen=True)
class Justified:
    """Cuts the chain accepts: records, totals, the DSO's margins and the lp certificate."""

    curtailments: tuple[Curtailment, ...]
    cut_wh: tuple[int, ...]
    margins: tuple[RowMargin, ...]
    certificate: tuple[int, ...]
    unresolvable: tuple[int, ...]
    """Violated rows no cut can fix (committed row numbers)."""

    @property
    def curtailed_wh(self) -> int:
        return sum(self.cut_wh)


def _repair(
    relief: np.ndarray, need: np.ndarray, energy: np.ndarray, weight: np.ndarray, cut: np.ndarray
) -> np.ndarray:
    """Raise ``cut`` in place towards ``relief @ cut >= need`` (integer); the rows still short.

    Rows are visited in order, cheapest relief first; a few passes settle rows that a later
    cut made worse (negative relief, not seen on radial feeders).
    """
    for _ in range(4):
        short_rows = relief @ cut < need
        if not short_rows.any():
            break
        for k in np.flatnonzero(short_rows).tolist():
            short = int(need[k] - relief[k] @ cut)
            helpful = [t for t in range(relief.shape[1]) if relief[k, t] > 0 and cut[t] < energy[t]]
            helpful.sort(key=lambda t: (weight[t] / relief[k, t], t))
            for t in helpful:
                if short <= 0:
                    break
                wh = min(int(energy[t] - cut[t]), -(-short // int(relief[k, t])))
                cut[t] += wh
                short -= wh * int(relief[k, t])
    return np.flatnonzero(relief @ cut < need)


def _round_lp(
    relief: np.ndarray, need: np.ndarray, energy: np.ndarray, weight: np.ndarray, x: np.ndarray
) -> np.ndarray:
    """Integer cuts near the LP optimum ``x`` whose cost the dual certificate covers.

    A basic optimum has at most one fractional cut per row. Rounding every fractional cut
    up costs at most one Wh of weight per cut trade, the slack the on-chain bound allows,
    and is feasible when every relief is >= 0. Where a cut loads another row (negative
    relief) rounding up may break that row, so every floor/ceiling choice of the fractional
    cuts (at most 2**12) is tried and the cheapest feasible one kept; failing that, rounding
    up and :func:`_repair`.
    """
    floor = np.minimum(energy, np.floor(x + 1e-9)).astype(np.int64)
    ceil = np.minimum(energy, np.ceil(x - 1e-9)).astype(np.int64)
    frac = np.flatnonzero(ceil > floor)
    if frac.size == 0 or frac.size > 12 or np.all(relief[:, frac] >= 0):
        return ceil
    best: np.ndarray | None = None
    best_cost = 0
    for mask in range(1 << frac.size):
        up = np.array([(mask >> i) & 1 for i in range(frac.size)], dtype=bool)
        cut = floor.copy()
        cut[frac[up]] = ceil[frac[up]]
        if np.all(relief @ cut >= need):
            cost = int(weight @ cut)
            if best is None or cost < best_cost:
                best, best_cost = cut, cost
    return ceil if best is None else best


def _attribute(
    rows: Sequence[int], relief: np.ndarray, need: np.ndarray, cut: np.ndarray
) -> dict[int, int]:
    """For each cut trade, the position (in ``rows``) of the row it relieves most (share of need)."""
    out: dict[int, int] = {}
    for t in np.flatnonzero(cut).tolist():
        best: int | None = None
        for k in range(len(rows)):
            if relief[k, t] <= 0:
                continue
            if best is None or relief[k, t] * need[best] > relief[best, t] * need[k]:
                best = k
        if best is not None:
            out[t] = best
    return out


def justify(
    rule: str,
    net: LinearNetwork,
    trades: Sequence[Trade],
    margin_npct: np.ndarray,
    allowance_npct: np.ndarray,
) -> Justified:
    """Cuts by ``rule`` on the committed model that :func:`check_curtailments` accepts.

    ``margin_npct``: AC margin of every committed row; ``allowance_npct`` (>= 0): how much
    more relief than the model says the DSO asks of each row (capped so the row stays
    fixable). Rows with a margin >= 0 are ignored.
    """
    margin = np.asarray(margin_npct, dtype=np.int64)
    allowance = np.asarray(allowance_npct, dtype=np.int64)
    if margin.shape != (net.n_rows,) or allowance.shape != (net.n_rows,) or np.any(allowance < 0):
        msg = f"justify: need {net.n_rows} margins and allowances >= 0, got {margin.shape}, {allowance.shape}"
        raise SecurityError(msg)
    columns = relief_columns(net, trades)
    energy = np.array([t.e_wh for t in trades], dtype=np.int64)
    capacity = np.maximum(columns, 0) @ energy
    violated = np.flatnonzero(margin < 0).tolist()
    dropped = {r for r in violated if capacity[r] + margin[r] < 0}
    while True:
        fixable = [r for r in violated if r not in dropped]
        if not fixable or not trades:
            return Justified((), (0,) * len(trades), (), (), tuple(violated))
        out, short = _attempt(rule, net, trades, columns, fixable, margin, allowance)
        if out is not None:
            return dataclasses.replace(out, unresolvable=tuple(sorted(dropped)))
        dropped.update(short)


def _attempt(
    rule: str,
    net: LinearNetwork,
    trades: Sequence[Trade],
    columns: np.ndarray,
    fixable: list[int],
    margin: np.ndarray,
    allowance: np.ndarray,
) -> tuple[Justified | None, list[int]]:
    """Cuts for the ``fixable`` rows; (None, rows left short) if they cannot all be met."""
    energy = np.array([t.e_wh for t in trades], dtype=np.int64)
    weight = np.array([lp_weight(t) for t in trades], dtype=np.int64)
    capacity = np.maximum(columns, 0) @ energy
    rows = np.array(fixable, dtype=np.int64)
    allow = np.minimum(allowance[rows], capacity[rows] + margin[rows])
    need = allow - margin[rows]
    relief = columns[rows]
    limits = LinearLimits(
        element=tuple(net.element_of(int(r))[0] for r in rows),
        element_index=np.array([net.element_of(int(r))[1] for r in rows], dtype=np.int64),
        margin=-need.astype(float),
        relief_per_wh=relief.astype(float),
    )
    certificate: tuple[int, ...] = ()
    if rule == "lp":
        # the chain's LP exactly: least sum of weight x cut over the integer model
        solved = least_cost_cuts(relief, need, energy, weight)
        if solved is None:  # not jointly fixable (negative relief): drop the worst rows
            plan = curtail(rule, limits, energy, weight - 1)
            return None, [int(rows[k]) for k in plan.unresolved] or [int(rows[-1])]
        x, dual = solved
        cut = _round_lp(relief, need, energy, weight, x)
        certificate = tuple(math.floor(y * DUAL_SCALE) for y in dual.tolist())
    else:
        # the rules add 1 micro-token per kWh to each trade's cost: weight - 1 = seller price
        cut = np.array(curtail(rule, limits, energy, weight - 1).cut_wh, dtype=np.int64)
    short = _repair(relief, need, energy, weight, cut)
    if short.size:
        return None, [int(rows[k]) for k in short]
    owner = _attribute(rows.tolist(), relief, need, cut)
    for t in np.flatnonzero(cut).tolist():
        if t not in owner:  # loads no violated row: not justifiable, not needed
            cut[t] = 0
    records = tuple(
        Curtailment(t, int(cut[t]), limits.element[k], int(limits.element_index[k]))
        for t, k in sorted(owner.items())
        if cut[t] > 0
    )
    margins = tuple(
        RowMargin(limits.element[k], int(limits.element_index[k]), int(margin[r]), int(allow[k]))
        for k, r in enumerate(rows.tolist())
    )
    out = Justified(records, tuple(cut.tolist()), margins, certificate, ())
    try:
        check_curtailments(net, rule, trades, records, margins, certificate)
    except UnjustifiedCurtailment as error:
        if error.error == "NotRelieved":
            return None, [int(rows[error.args_[0]])]
        if error.error == "BadCurtailmentCertificate":
            # no integer rounding within the dual bound's slack (possible only where a cut
            # loads another violated row): leave the row that cut loads most unresolved
            return None, [int(rows[int(np.argmin(relief.min(axis=1)))])]
        msg = f"justify: the {rule} cuts fail the on-chain check: {error}"
        raise SecurityError(msg) from error
    return out, []
