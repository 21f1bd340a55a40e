"""AC power flow of one interval's net injections, and limit violations.

Sign convention (used everywhere in gridledger.grid): a bus's *net injection*
is generation minus consumption, in kW (kvar); positive feeds the grid. The
slack (market bus 0, the substation) balances the feeder. ``slack_p_kw`` is the
power the external grid delivers *into* the feeder (positive = import).

Reactive power: when ``q_inj_kvar`` is not given, a bus that consumes
(``p < 0``) draws ``q = p * q_per_p_load[bus]`` (the case's own Q/P ratio at that
bus, the feeder-wide ratio where the case has no load), and a bus that
generates (``p > 0``) runs at unity power factor (PV inverters, q = 0).

Speed: the feeder's net is prepared once (one load and one sgen per bus);
later calls rewrite their p/q and re-run pandapower's Newton-Raphson with the
internal model recycled (``recycle={"bus_pq": True}``), warm-started from the
previous result, numba on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
import pandapower as pp

from gridledger.errors import GridError
from gridledger.grid.catalogue import Feeder

__all__ = [
    "LimitsView",
    "PowerFlowResult",
    "Violation",
    "default_q_kvar",
    "run_ac",
    "set_injections",
    "violations",
]

log = logging.getLogger(__name__)

_RECYCLE = {"bus_pq": True, "trafo": False, "gen": False}


@dataclass(frozen=True, eq=False)
class PowerFlowResult:
    """AC power flow result, per market bus / line / transformer."""

    v_pu: np.ndarray
    va_degree: np.ndarray
    line_loading_pct: np.ndarray
    line_p_from_kw: np.ndarray
    line_i_ka: np.ndarray
    trafo_loading_pct: np.ndarray
    losses_kw: float
    slack_p_kw: float
    slack_q_kvar: float
    converged: bool
    iterations: int


@dataclass(frozen=True)
class Violation:
    """One limit violation: ``kind`` "bus" (voltage p.u.), "line" or "trafo" (loading %)."""

    kind: Literal["bus", "line", "trafo"]
    index: int
    value: float
    limit: float


def default_q_kvar(feeder: Feeder, p_inj_kw: np.ndarray) -> np.ndarray:
    """Reactive injections implied by the documented load power factor."""
    return np.where(p_inj_kw < 0.0, p_inj_kw * feeder.q_per_p_load, 0.0)


def _check_shape(feeder: Feeder, arr: np.ndarray, what: str) -> np.ndarray:
    out = np.asarray(arr, dtype=float)
    if out.shape != (feeder.n_buses,):
        msg = f"feeder {feeder.name!r}: {what} has shape {out.shape}, expected ({feeder.n_buses},)"
        raise GridError(msg)
    if not np.all(np.isfinite(out)):
        msg = f"feeder {feeder.name!r}: {what} has non-finite values at {np.flatnonzero(~np.isfinite(out)).tolist()}"
        raise GridError(msg)
    return out


def set_injections(feeder: Feeder, p_inj_kw: np.ndarray, q_inj_kvar: np.ndarray) -> None:
    """Write net injections into the feeder's load/sgen tables (consumption -> load)."""
    net = feeder.net
    net.load["p_mw"] = np.maximum(-p_inj_kw, 0.0) / 1000.0
    net.sgen["p_mw"] = np.maximum(p_inj_kw, 0.0) / 1000.0
    # reactive power follows the sign of q itself
    net.load["q_mvar"] = np.maximum(-q_inj_kvar, 0.0) / 1000.0
    net.sgen["q_mvar"] = np.maximum(q_inj_kvar, 0.0) / 1000.0


def _solve(feeder: Feeder) -> None:
    net = feeder.net
    state = feeder.pf_state
    if state.get("ready"):
        pp.runpp(net, recycle=_RECYCLE)
        if not net.converged:
            raise pp.LoadflowNotConverged("recycled power flow did not converge")
        return
    pp.runpp(
        net,
        init="flat" if state.get("failed") else "auto",
        numba=True,
        calculate_voltage_angles=True,
        check_connectivity=True,
        voltage_depend_loads=False,
    )
    state["ready"] = True
    state["failed"] = False


def run_ac(
    feeder: Feeder, p_inj_kw: np.ndarray, q_inj_kvar: np.ndarray | None = None
) -> PowerFlowResult:
    """AC power flow (pandapower Newton-Raphson) of per-bus net injections (kW, kvar).

    The slack's own injection entry (index 0) is applied too (normally 0).
    Raises :class:`GridError` with the injections' summary if it does not converge.
    """
    p = _check_shape(feeder, p_inj_kw, "p_inj_kw")
    q = (
        default_q_kvar(feeder, p)
        if q_inj_kvar is None
        else _check_shape(feeder, q_inj_kvar, "q_inj_kvar")
    )
    set_injections(feeder, p, q)
    net = feeder.net
    try:
        _solve(feeder)
    except (pp.LoadflowNotConverged, FloatingPointError, ValueError) as first:
        feeder.pf_state.update(ready=False, failed=True)
        try:
            _solve(feeder)
        except (pp.LoadflowNotConverged, FloatingPointError, ValueError) as exc:
            feeder.pf_state.update(ready=False, failed=True)
            worst = int(np.argmax(np.abs(p)))
            msg = (
                f"feeder {feeder.name!r}: AC power flow did not converge "
                f"(total injection {p.sum():.1f} kW / {q.sum():.1f} kvar, largest |p| "
                f"{p[worst]:.1f} kW at market bus {worst}): {exc or first}"
            )
            raise GridError(msg) from exc
    res_bus = net.res_bus
    bus_ids = feeder.bus_ids
    vm = res_bus["vm_pu"].to_numpy()
    va = res_bus["va_degree"].to_numpy()
    if not feeder.pf_state.get("bus_pos_ok"):
        feeder.pf_state["bus_rows"] = res_bus.index.get_indexer(bus_ids)
        feeder.pf_state["line_rows"] = net.res_line.index.get_indexer(feeder.line_ids)
        feeder.pf_state["trafo_rows"] = net.res_trafo.index.get_indexer(feeder.trafo_ids)
        feeder.pf_state["bus_pos_ok"] = True
    rows = feeder.pf_state["bus_rows"]
    lrows = feeder.pf_state["line_rows"]
    trows = feeder.pf_state["trafo_rows"]
    res_line = net.res_line
    res_trafo = net.res_trafo
    line_pl = res_line["pl_mw"].to_numpy()[lrows]
    trafo_pl = res_trafo["pl_mw"].to_numpy()[trows] if feeder.n_trafos else np.zeros(0)
    ext = net.res_ext_grid
    return PowerFlowResult(
        v_pu=vm[rows].copy(),
        va_degree=va[rows].copy(),
        line_loading_pct=res_line["loading_percent"].to_numpy()[lrows].copy(),
        line_p_from_kw=res_line["p_from_mw"].to_numpy()[lrows] * 1000.0,
        line_i_ka=res_line["i_ka"].to_numpy()[lrows].copy(),
        trafo_loading_pct=(
            res_trafo["loading_percent"].to_numpy()[trows].copy()
            if feeder.n_trafos
            else np.zeros(0)
        ),
        losses_kw=float(line_pl.sum() + trafo_pl.sum()) * 1000.0,
        slack_p_kw=float(ext["p_mw"].to_numpy().sum()) * 1000.0,
        slack_q_kvar=float(ext["q_mvar"].to_numpy().sum()) * 1000.0,
        converged=bool(net.converged),
        iterations=int(net._ppc["iterations"]) if net._ppc is not None else -1,
    )


class LimitsView(Protocol):
    """What :func:`violations` reads: a power flow or a screening result."""

    @property
    def v_pu(self) -> np.ndarray: ...
    @property
    def line_loading_pct(self) -> np.ndarray: ...
    @property
    def trafo_loading_pct(self) -> np.ndarray: ...


def violations(
    result: LimitsView, v_min_pu: float, v_max_pu: float, thermal_limit_pct: float = 100.0
) -> list[Violation]:
    """Voltages outside ``[v_min_pu, v_max_pu]`` and loadings above ``thermal_limit_pct``.

    The one place limits are checked: the security stage and its screening call it.
    Works on a :class:`PowerFlowResult` or a screening result. The slack bus (0) is
    not checked (its voltage is set by the external grid). Order: under-voltages,
    over-voltages, lines, transformers, each by index.
    """
    out: list[Violation] = []
    v = result.v_pu
    for b in np.flatnonzero(v[1:] < v_min_pu) + 1:
        out.append(Violation("bus", int(b), float(v[b]), v_min_pu))
    for b in np.flatnonzero(v[1:] > v_max_pu) + 1:
        out.append(Violation("bus", int(b), float(v[b]), v_max_pu))
    for i in np.flatnonzero(result.line_loading_pct > thermal_limit_pct):
        out.append(Violation("line", int(i), float(result.line_loading_pct[i]), thermal_limit_pct))
    for i in np.flatnonzero(result.trafo_loading_pct > thermal_limit_pct):
        out.append(
            Violation("trafo", int(i), float(result.trafo_loading_pct[i]), thermal_limit_pct)
        )
    return out
