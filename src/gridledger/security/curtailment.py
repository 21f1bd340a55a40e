"""Congestion management rules: which cleared trades to curtail, and by how much.

Pure and deterministic: numpy arrays in, integer :class:`Curtailment` records out.
The physics (power flow, sensitivities) lives in :mod:`gridledger.security.congestion`; this
module only sees a *linearised* picture of the network limits:

- ``LinearLimits``: one row per monitored limit ``i`` (a bus voltage bound, a line
  or transformer loading), its current ``margin_i`` (>= 0 holds, < 0 violated, in
  the limit's own unit: p.u. or %) and ``relief_per_wh[i, t]``, how much the margin
  grows per Wh cut from trade ``t`` (negative: the cut makes that limit worse).
  After cuts ``x`` (Wh) the linearised margin is ``margin + relief_per_wh @ x``.
- ``surplus_per_kwh_micro[t]``: the surplus lost per kWh cut from trade ``t``
  (micro-tokens per kWh). :mod:`gridledger.security.congestion` passes the gains from trade
  at the members' true limits (buyer's value - seller's cost - use-of-system fee,
  clipped at 0), the same quantity :func:`gridledger.world.welfare_micro` sums.

Rules (docs/methods.md §4):

- ``greedy``: violated limits worst first; for each, cut trades in ascending order
  of ``surplus / relief`` until its linearised margin is >= 0. Side effects on other
  limits are not looked at (the AC re-check catches them).
- ``lp``: minimise ``sum_t s_t x_t`` (+ 1 micro-token per kWh to prefer the smallest
  cut among equal-surplus choices) subject to every row's linearised margin >= 0 and
  ``0 <= x_t <= E_t`` (HiGHS). When no cut can satisfy every row (a violation the
  trades do not cause, e.g. under-voltage from load alone), a first LP finds the
  least total shortfall and the second keeps it; those rows are reported as
  unresolved.

Cuts are whole Wh, rounded up from the continuous solution and never more than the
trade's energy, so curtailment never increases a trade and never exceeds it.

:func:`least_cost_cuts` solves the bare LP (no tie-break, no shortfall phase) and returns
its row duals: the security stage uses it on the committed integer network, whose lp
certificate the chain checks (:mod:`gridledger.security.justification`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import highspy
import numpy as np

from gridledger.errors import SecurityError
from gridledger.lp import new_highs
from gridledger.market.orders import Curtailment, Trade
from gridledger.market.units import money_micro

__all__ = [
    "CONGESTION_RULES",
    "CurtailmentPlan",
    "LinearLimits",
    "curtail",
    "curtail_greedy",
    "curtail_lp",
    "least_cost_cuts",
    "lost_surplus_micro",
    "relief_from_bus_sensitivity",
    "remaining_wh",
]

CONGESTION_RULES = ("greedy", "lp")

# relief below this (limit unit per Wh) counts as "this trade does not help"
RELIEF_TOL = 1e-12
# tie-break cost added to every trade's surplus in the LP (micro-tokens per kWh)
LP_TIE_BREAK_PER_KWH_MICRO = 1.0
# a row whose LP shortfall is below this counts as resolved (limit unit)
SHORTFALL_TOL = 1e-9


@dataclass(frozen=True, eq=False)
class LinearLimits:
    """Linearised network limits around an operating point.

    ``element[i]`` is ``"bus"``, ``"line"`` or ``"trafo"`` and ``element_index[i]``
    the market index of the element row ``i`` guards.
    """

    element: tuple[str, ...]
    element_index: np.ndarray
    margin: np.ndarray
    relief_per_wh: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.element)
        if self.element_index.shape != (n,) or self.margin.shape != (n,):
            msg = (
                f"LinearLimits: {n} elements but element_index {self.element_index.shape}, "
                f"margin {self.margin.shape}"
            )
            raise SecurityError(msg)
        if self.relief_per_wh.ndim != 2 or self.relief_per_wh.shape[0] != n:
            msg = f"LinearLimits: relief_per_wh has shape {self.relief_per_wh.shape}, expected ({n}, n_trades)"
            raise SecurityError(msg)
        if not (np.all(np.isfinite(self.margin)) and np.all(np.isfinite(self.relief_per_wh))):
            msg = "LinearLimits: margin or relief_per_wh has non-finite values"
            raise SecurityError(msg)

    @property
    def n_limits(self) -> int:
        return len(self.element)

    @property
    def n_trades(self) -> int:
        return int(self.relief_per_wh.shape[1])

    def violated(self) -> np.ndarray:
        """Indices of rows with a negative margin."""
        return np.flatnonzero(self.margin < 0.0)

    def margin_after(self, cut_wh: np.ndarray) -> np.ndarray:
        """Linearised margins after cutting ``cut_wh`` (Wh per trade)."""
        return self.margin + self.relief_per_wh @ np.asarray(cut_wh, dtype=float)


@dataclass(frozen=True)
class CurtailmentPlan:
    """Outcome of a congestion rule.

    ``cut_wh[t]``: total Wh cut from trade ``t``; ``curtailments``: the same as
    records, one per (trade, element) pair, in trade order; ``unresolved``: rows of
    the limits that no cut within the trades' energy can bring to a margin >= 0.
    """

    curtailments: tuple[Curtailment, ...]
    cut_wh: tuple[int, ...]
    lost_surplus_micro: int
    unresolved: tuple[int, ...]

    @property
    def curtailed_wh(self) -> int:
        return sum(self.cut_wh)


def relief_from_bus_sensitivity(
    dmargin_dp_kw: np.ndarray, seller_bus: np.ndarray, interval_h: float
) -> np.ndarray:
    """Relief per Wh cut of each trade, from per-bus sensitivities of the margins.

    ``dmargin_dp_kw[i, b]``: change of margin ``i`` per kW *more* injection at bus
    ``b``. Cutting ``dE`` Wh from a trade lowers its seller's injection by
    ``dE / (1000 * interval_h)`` kW over the interval, so
    ``relief[i, t] = -dmargin_dp_kw[i, seller_bus[t]] / (1000 * interval_h)``.
    """
    if interval_h <= 0:
        msg = f"interval_h must be positive, got {interval_h}"
        raise SecurityError(msg)
    cols = np.asarray(seller_bus, dtype=np.int64)
    return -np.asarray(dmargin_dp_kw, dtype=float)[:, cols] / (1000.0 * interval_h)


def remaining_wh(trades: Sequence[Trade]) -> np.ndarray:
    """Each trade's energy (Wh), the most a rule may cut from it."""
    return np.array([t.e_wh for t in trades], dtype=np.int64)


def lost_surplus_micro(cut_wh: Sequence[int], surplus_per_kwh_micro: np.ndarray) -> int:
    """Surplus lost by the cuts (micro-tokens), floored per trade like settlement."""
    total = 0
    for cut, s in zip(cut_wh, np.asarray(surplus_per_kwh_micro).tolist(), strict=True):
        if cut > 0 and s > 0:
            total += money_micro(int(cut), int(s))
    return total


def _checked_inputs(
    limits: LinearLimits, cut_max_wh: np.ndarray, surplus_per_kwh_micro: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``cut_max_wh`` and ``surplus_per_kwh_micro`` as int64 arrays, checked against ``limits``."""
    cut_max = np.asarray(cut_max_wh, dtype=np.int64)
    surplus = np.asarray(surplus_per_kwh_micro, dtype=np.int64)
    n = limits.n_trades
    if cut_max.shape != (n,) or surplus.shape != (n,):
        msg = (
            f"congestion: {n} trades in relief_per_wh but cut_max_wh {cut_max.shape}, "
            f"surplus {surplus.shape}"
        )
        raise SecurityError(msg)
    if np.any(cut_max < 0):
        msg = f"congestion: negative cut_max_wh at trades {np.flatnonzero(cut_max < 0).tolist()}"
        raise SecurityError(msg)
    if np.any(surplus < 0):
        msg = f"congestion: negative surplus at trades {np.flatnonzero(surplus < 0).tolist()}"
        raise SecurityError(msg)
    return cut_max, surplus


def _ceil_wh(value: float) -> int:
    """Round a continuous cut up to whole Wh, forgiving float noise of 1e-6 Wh."""
    return max(0, math.ceil(value - 1e-6))


def _plan(
    limits: LinearLimits,
    cut_by_row: dict[tuple[int, int], int],
    surplus: np.ndarray,
    unresolved: Sequence[int],
) -> CurtailmentPlan:
    """Merge per-(trade, row) cuts into records naming the relieved element."""
    cut = [0] * limits.n_trades
    merged: dict[tuple[int, str, int], int] = {}
    for (t, row), wh in sorted(cut_by_row.items()):
        if wh <= 0:
            continue
        cut[t] += wh
        key = (t, limits.element[row], int(limits.element_index[row]))
        merged[key] = merged.get(key, 0) + wh
    records = tuple(Curtailment(t, wh, el, idx) for (t, el, idx), wh in sorted(merged.items()))
    return CurtailmentPlan(
        records, tuple(cut), lost_surplus_micro(cut, surplus), tuple(sorted(unresolved))
    )


def curtail_greedy(
    limits: LinearLimits, cut_max_wh: np.ndarray, surplus_per_kwh_micro: np.ndarray
) -> CurtailmentPlan:
    """Greedy rule: per violated row (worst first), cheapest surplus per unit relief first."""
    cut_max, surplus = _checked_inputs(limits, cut_max_wh, surplus_per_kwh_micro)
    x = np.zeros(limits.n_trades, dtype=np.int64)
    cut_by_row: dict[tuple[int, int], int] = {}
    unresolved: list[int] = []
    relief = limits.relief_per_wh
    for row in sorted(limits.violated().tolist(), key=lambda i: (limits.margin[i], i)):
        margin = float(limits.margin[row] + relief[row] @ x)
        if margin >= 0.0:
            continue
        helpful = [t for t in range(limits.n_trades) if relief[row, t] > RELIEF_TOL]
        helpful.sort(key=lambda t: (surplus[t] / relief[row, t], -relief[row, t], t))
        for t in helpful:
            room = int(cut_max[t] - x[t])
            if room <= 0:
                continue
            wh = min(room, _ceil_wh(-margin / relief[row, t]))
            if wh <= 0:
                continue
            x[t] += wh
            cut_by_row[(t, row)] = cut_by_row.get((t, row), 0) + wh
            margin += float(relief[row, t]) * wh
            if margin >= 0.0:
                break
        if margin < 0.0:
            unresolved.append(row)
    return _plan(limits, cut_by_row, surplus, unresolved)


def _solve_lp(
    cost: np.ndarray,
    col_upper: np.ndarray,
    rows: np.ndarray,
    row_lower: np.ndarray,
) -> tuple[np.ndarray, np.ndarray] | None:
    """min cost @ z  s.t.  rows @ z >= row_lower, 0 <= z <= col_upper (HiGHS).

    Returns the solution and the row duals (>= 0 for binding rows), None if infeasible.
    """
    h = new_highs()
    h.setOptionValue("presolve", "off" if rows.shape[1] < 200 else "choose")
    # the default 1e-7 lets a limit end a few micro-units short; curtailment must hold
    h.setOptionValue("primal_feasibility_tolerance", 1e-10)
    lp = highspy.HighsLp()
    n_cols = int(cost.shape[0])
    n_rows = int(rows.shape[0])
    lp.num_col_ = n_cols
    lp.num_row_ = n_rows
    lp.col_cost_ = cost.astype(float)
    lp.col_lower_ = np.zeros(n_cols)
    lp.col_upper_ = col_upper.astype(float)
    lp.row_lower_ = row_lower.astype(float)
    lp.row_upper_ = np.full(n_rows, highspy.kHighsInf)
    dense = np.asarray(rows, dtype=float)
    # column-wise sparse storage
    starts = [0]
    index: list[int] = []
    value: list[float] = []
    for j in range(n_cols):
        nz = np.flatnonzero(dense[:, j])
        index.extend(nz.tolist())
        value.extend(dense[nz, j].tolist())
        starts.append(len(index))
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = np.asarray(starts, dtype=np.int32)
    lp.a_matrix_.index_ = np.asarray(index, dtype=np.int32)
    lp.a_matrix_.value_ = np.asarray(value, dtype=float)
    h.passModel(lp)
    h.run()
    status = h.getModelStatus()
    if status == highspy.HighsModelStatus.kInfeasible:
        return None
    if status != highspy.HighsModelStatus.kOptimal:
        msg = f"congestion LP: HiGHS ended with status {h.modelStatusToString(status)}"
        raise SecurityError(msg)
    solution = h.getSolution()
    return np.asarray(solution.col_value, dtype=float), np.asarray(solution.row_dual, dtype=float)


def curtail_lp(
    limits: LinearLimits, cut_max_wh: np.ndarray, surplus_per_kwh_micro: np.ndarray
) -> CurtailmentPlan:
    """LP rule: least lost surplus subject to every linearised limit (HiGHS)."""
    cut_max, surplus = _checked_inputs(limits, cut_max_wh, surplus_per_kwh_micro)
    n, m = limits.n_trades, limits.n_limits
    if m == 0 or n == 0 or not np.any(limits.margin < 0.0):
        return _plan(limits, {}, surplus, limits.violated().tolist() if n == 0 else [])
    # scale rows to their violation so p.u. and % rows are comparable in the solver
    scale = 1.0 / np.maximum(np.abs(limits.margin), 1e-6)
    relief = limits.relief_per_wh * scale[:, None]
    # cuts are rounded up to whole Wh; a cut that hurts another row (negative relief)
    # can then cost that row up to |relief| x 1 Wh: reserve that much in advance
    need = -limits.margin * scale + np.maximum(-relief, 0.0).sum(axis=1)
    cost_per_wh = (surplus.astype(float) + LP_TIE_BREAK_PER_KWH_MICRO) / 1000.0
    upper = cut_max.astype(float)
    solved = _solve_lp(cost_per_wh, upper, relief, need)
    unresolved: list[int] = []
    if solved is not None:
        x = solved[0]
    else:
        # phase 1: least total shortfall u >= 0 with relief @ x + u >= need
        rows1 = np.hstack([relief, np.eye(m)])
        solved1 = _solve_lp(
            np.concatenate([np.zeros(n), np.ones(m)]),
            np.concatenate([upper, np.full(m, np.inf)]),
            rows1,
            need,
        )
        if solved1 is None:  # cannot happen: u = need, x = 0 is feasible
            msg = "congestion LP: shortfall problem infeasible"
            raise SecurityError(msg)
        z1 = solved1[0]
        shortfall = z1[n:]
        # phase 2: keep each row's shortfall of phase 1, minimise lost surplus
        allowed = np.where(shortfall > SHORTFALL_TOL, shortfall + 1e-9, 0.0)
        solved2 = _solve_lp(
            np.concatenate([cost_per_wh, np.zeros(m)]),
            np.concatenate([upper, allowed]),
            rows1,
            need,
        )
        x = z1[:n] if solved2 is None else solved2[0][:n]
        unresolved = np.flatnonzero(shortfall > SHORTFALL_TOL).tolist()
    cut = [min(int(cut_max[t]), _ceil_wh(float(x[t]))) for t in range(n)]
    return _plan(limits, _attribute(limits, cut), surplus, unresolved)


def least_cost_cuts(
    relief: np.ndarray, need: np.ndarray, cut_max_wh: np.ndarray, cost: np.ndarray
) -> tuple[np.ndarray, np.ndarray] | None:
    """``min cost @ x`` s.t. ``relief @ x >= need``, ``0 <= x <= cut_max_wh`` (HiGHS).

    The continuous cuts and each row's dual (cost per unit of the row, >= 0); None if
    infeasible. Rows are scaled by their need and costs by their maximum inside the solver.
    """
    need_f = np.asarray(need, dtype=float)
    scale = 1.0 / np.maximum(np.abs(need_f), 1e-6)
    cost_f = np.asarray(cost, dtype=float)
    # HiGHS fails on costs of 1e5 against row entries of 1e-5: solve with costs <= 1
    cost_scale = float(np.abs(cost_f).max()) if cost_f.size and np.abs(cost_f).max() > 0 else 1.0
    solved = _solve_lp(
        cost_f / cost_scale,
        np.asarray(cut_max_wh, dtype=float),
        np.asarray(relief, dtype=float) * scale[:, None],
        need_f * scale,
    )
    if solved is None:
        return None
    x, dual = solved
    return x, np.maximum(dual, 0.0) * scale * cost_scale


def _attribute(limits: LinearLimits, cut: Sequence[int]) -> dict[tuple[int, int], int]:
    """Name, for each cut trade, the violated row it relieves most (share of the violation)."""
    violated = limits.violated()
    out: dict[tuple[int, int], int] = {}
    for t, wh in enumerate(cut):
        if wh <= 0:
            continue
        if violated.size:
            share = limits.relief_per_wh[violated, t] * wh / -limits.margin[violated]
            row = int(violated[int(np.argmax(share))])
        else:
            row = int(np.argmax(limits.relief_per_wh[:, t]))
        out[(t, row)] = wh
    return out


def curtail(
    rule: str,
    limits: LinearLimits,
    cut_max_wh: np.ndarray,
    surplus_per_kwh_micro: np.ndarray,
) -> CurtailmentPlan:
    """Apply the named rule (``greedy`` or ``lp``)."""
    if rule == "greedy":
        return curtail_greedy(limits, cut_max_wh, surplus_per_kwh_micro)
    if rule == "lp":
        return curtail_lp(limits, cut_max_wh, surplus_per_kwh_micro)
    msg = (
        f"security.congestion = {rule!r} is not a curtailment rule; known: {list(CONGESTION_RULES)}"
    )
    raise SecurityError(msg)
