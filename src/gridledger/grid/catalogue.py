"""Named feeders, prepared once for fast repeated power flows.

``load_feeder(name)`` returns a :class:`Feeder`: the pandapower net plus the
arrays the market and the security check need, indexed by *market bus*
(position in ``Feeder.bus_ids``; position 0 is the slack/substation bus) and by
line (position in ``Feeder.line_ids``).

Shipped feeders (details and justification in docs/grid.md):

- ``ieee33``: Baran & Wu 33-bus 12.66 kV feeder (``pandapower.networks.case33bw``),
  tie lines dropped; thermal ratings and line lengths set by gridledger from a
  graded ACSR conductor design (the case itself has neither).
- ``cigre_lv``: residential subnetwork of the CIGRE European LV benchmark
  (``create_cigre_network_lv``), 20 kV slack bus + 0.5 MVA transformer.
- ``cigre_lv_full``: the whole CIGRE LV benchmark (residential, industrial,
  commercial subnetworks behind three transformers).
- ``ieee33_meshed``: ``ieee33`` with its five tie lines closed (five loops; the
  tie lines get the minimum conductor), the small meshed test feeder.
- SimBench codes such as ``1-LV-rural1--0-sw``, ``1-MV-rural--0-sw`` or
  ``1-MVLV-semiurb-5.220-0-sw`` when the optional ``simbench`` package is
  installed (``pip install gridledger[simbench]``).

Preparation: closed bus-bus switches are fused, out-of-service and open-switched
branches dropped, buses no longer supplied from the external grid dropped (a
note says so); radial and meshed (closed-loop) feeders are both accepted, with
exactly one external grid. The original loads and generators are recorded as
the base case (per bus, and per load element for ``members.from_loads``) and
replaced by exactly one load and one static generator per market bus, whose
p/q the power flow overwrites. What cannot be modelled raises
:class:`FeederUnsupported` naming the reason.
"""

from __future__ import annotations

import copy
import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandapower as pp
import pandapower.networks as pn
import pandapower.toolbox as pptb

from gridledger.errors import GridError
from gridledger.grid.topology import Tree, branch_ids_of_buses, build_tree, tree_layout

__all__ = [
    "IEEE33_CONDUCTORS",
    "IEEE33_DESIGN_LOADING",
    "Conductor",
    "Feeder",
    "FeederUnsupported",
    "known_feeders",
    "load_feeder",
    "prepare_feeder",
]

log = logging.getLogger(__name__)

SQRT3 = math.sqrt(3.0)


@dataclass(frozen=True)
class Conductor:
    """An overhead conductor: pandapower standard-type name, resistance, ampacity."""

    name: str
    r_ohm_per_km: float
    max_i_ka: float


# Standard ACSR conductors of pandapower's line library (EN 50182 sizes), smallest
# first. Their ampacity sets a line's rating; their ohm/km turns the case's line
# resistance into a length.
IEEE33_CONDUCTORS: tuple[Conductor, ...] = (
    Conductor("34-AL1/6-ST1A", 0.8342, 0.170),
    Conductor("48-AL1/8-ST1A", 0.5939, 0.210),
    Conductor("70-AL1/11-ST1A", 0.4132, 0.290),
    Conductor("94-AL1/15-ST1A", 0.3060, 0.350),
    Conductor("122-AL1/20-ST1A", 0.2376, 0.410),
    Conductor("149-AL1/24-ST1A", 0.1940, 0.470),
    Conductor("184-AL1/30-ST1A", 0.1571, 0.535),
    Conductor("243-AL1/39-ST1A", 0.1188, 0.645),
)
# Planning rule: each segment gets the smallest conductor that carries the
# original case's peak current at <= 75 % of its ampacity (34 mm2 minimum).
IEEE33_DESIGN_LOADING = 0.75

# CIGRE LV benchmark conductor codes -> ampacity (kA). The benchmark gives only
# impedances (pandapower stores a 1 kA placeholder). Each code's resistance is
# that of a standard aluminium conductor at operating temperature; the rating is
# that conductor's ampacity (NAYY cables in ground per VDE 0276-603, ACSR from
# pandapower's line library). Details in docs/grid.md.
CIGRE_LV_AMPACITY_KA: dict[str, float] = {
    "UG1": 0.357,  # r 0.162 ohm/km = Al 240 mm2 at 90 C (0.125 at 20 C): NAYY 4x240
    "UG2": 0.275,  # r 0.265 ohm/km = Al 150 mm2 at 90 C (0.206 at 20 C): NAYY 4x150
    "UG3": 0.142,  # r 0.822 ohm/km = Al 50 mm2 at 90 C (0.642 at 20 C): NAYY 4x50
    "OH1": 0.290,  # r 0.492 ohm/km ~ Al 70 mm2 warm (0.413 at 20 C): 70-AL1/11-ST1A
    "OH2": 0.140,  # r 1.321 ohm/km ~ Al 25 mm2 warm (1.201 at 20 C): 24-AL1/4-ST1A
    "OH3": 0.105,  # r 2.017 ohm/km ~ Al 16 mm2 warm (1.877 at 20 C): 15-AL1/3-ST1A
}


class FeederUnsupported(GridError):
    """A feeder has elements or a structure gridledger cannot model (the message says why)."""


DEFAULT_V_MIN_PU = 0.95
DEFAULT_V_MAX_PU = 1.05


@dataclass(eq=False)
class Feeder:
    """A prepared feeder (radial, or meshed when ``tree.meshed``).

    Market bus ``m`` is pandapower bus ``bus_ids[m]``; ``bus_ids[0]`` is the slack.
    Line ``l`` is pandapower line ``line_ids[l]``; transformer ``t`` is
    ``trafo_ids[t]``. Powers: kW / kvar; injection positive (generation minus
    consumption).
    """

    name: str
    net: Any  # pandapowerNet (untyped library)
    bus_ids: list[int]
    v_min_pu: float
    v_max_pu: float
    base_load_p_kw: np.ndarray
    base_load_q_kvar: np.ndarray
    base_gen_p_kw: np.ndarray
    branch_of_bus: np.ndarray
    xy: np.ndarray
    bus_vn_kv: np.ndarray
    parent: np.ndarray
    line_ids: list[int]
    line_from: np.ndarray
    line_to: np.ndarray
    line_length_km: np.ndarray
    line_max_i_ka: np.ndarray
    line_r_ohm: np.ndarray
    line_x_ohm: np.ndarray
    line_vn_kv: np.ndarray
    trafo_ids: list[int]
    trafo_from: np.ndarray
    trafo_to: np.ndarray
    trafo_sn_kva: np.ndarray
    q_per_p_load: np.ndarray
    load_ids: list[int]
    sgen_ids: list[int]
    tree: Tree
    notes: str = ""
    pf_state: dict[str, Any] = field(default_factory=dict)
    load_element_bus: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    """Market bus of each in-service load element of the original case (element order)."""
    load_element_p_kw: np.ndarray = field(default_factory=lambda: np.zeros(0))
    """Active power of each of those load elements (p_mw x scaling, kW)."""

    @property
    def meshed(self) -> bool:
        """Whether the feeder has loops (closed tie lines, parallel transformers, rings)."""
        return self.tree.meshed

    @property
    def n_buses(self) -> int:
        return len(self.bus_ids)

    @property
    def n_lines(self) -> int:
        return len(self.line_ids)

    @property
    def n_trafos(self) -> int:
        return len(self.trafo_ids)

    @property
    def line_rating_kva(self) -> np.ndarray:
        """Thermal rating as apparent power at nominal voltage: sqrt(3) V_n I_max."""
        return SQRT3 * self.line_vn_kv * self.line_max_i_ka * 1000.0

    @property
    def slack_bus(self) -> int:
        return int(self.bus_ids[0])


# --------------------------------------------------------------------------- builders


def _ieee33_raw() -> tuple[Any, str]:
    net = pn.case33bw()
    notes = _ieee33_set_conductors(net)
    return net, notes


def _ieee33_set_conductors(net: Any) -> str:
    """Size every in-service line of case33bw and back out its length from r.

    The case stores each line's total impedance in ohm as ``*_ohm_per_km`` with
    length 1 km. We keep the impedances unchanged (so power flows are those of
    the published case) and set length = r_ohm / r_ohm_per_km(conductor).
    """
    work = copy.deepcopy(net)
    pptb.drop_lines(work, work.line.index[~work.line.in_service])
    pp.runpp(work, numba=True)
    peak_i_ka = work.res_line.i_ka
    rows = []
    for idx in work.line.index:
        need_ka = float(peak_i_ka.at[idx]) / IEEE33_DESIGN_LOADING
        conductor = next(
            (c for c in IEEE33_CONDUCTORS if c.max_i_ka >= need_ka), IEEE33_CONDUCTORS[-1]
        )
        r_ohm = float(net.line.at[idx, "r_ohm_per_km"] * net.line.at[idx, "length_km"])
        x_ohm = float(net.line.at[idx, "x_ohm_per_km"] * net.line.at[idx, "length_km"])
        length_km = r_ohm / conductor.r_ohm_per_km
        net.line.at[idx, "length_km"] = length_km
        net.line.at[idx, "r_ohm_per_km"] = r_ohm / length_km
        net.line.at[idx, "x_ohm_per_km"] = x_ohm / length_km
        net.line.at[idx, "max_i_ka"] = conductor.max_i_ka
        net.line.at[idx, "std_type"] = conductor.name
        rows.append(f"{idx}:{conductor.name}")
    return "ieee33 conductors " + " ".join(rows)


def _ieee33_meshed_raw() -> tuple[Any, str]:
    net = pn.case33bw()
    notes = _ieee33_set_conductors(net)
    smallest = IEEE33_CONDUCTORS[0]
    ties = [int(i) for i in net.line.index[~net.line.in_service.astype(bool)]]
    for idx in ties:
        r_ohm = float(net.line.at[idx, "r_ohm_per_km"] * net.line.at[idx, "length_km"])
        x_ohm = float(net.line.at[idx, "x_ohm_per_km"] * net.line.at[idx, "length_km"])
        length_km = r_ohm / smallest.r_ohm_per_km
        net.line.at[idx, "length_km"] = length_km
        net.line.at[idx, "r_ohm_per_km"] = r_ohm / length_km
        net.line.at[idx, "x_ohm_per_km"] = x_ohm / length_km
        net.line.at[idx, "max_i_ka"] = smallest.max_i_ka
        net.line.at[idx, "std_type"] = smallest.name
        net.line.at[idx, "in_service"] = True
    return net, notes + f"; tie lines {ties} closed with {smallest.name}"


def _cigre_lv_raw(residential_only: bool) -> tuple[Any, str]:
    net = pn.create_cigre_network_lv()
    for idx in net.line.index:
        code = str(net.line.at[idx, "std_type"])
        if code not in CIGRE_LV_AMPACITY_KA:
            msg = f"cigre_lv: line {idx} has conductor code {code!r} without a rating"
            raise GridError(msg)
        net.line.at[idx, "max_i_ka"] = CIGRE_LV_AMPACITY_KA[code]
    if residential_only:
        keep = [b for b in net.bus.index if str(net.bus.at[b, "name"]).startswith("Bus R")]
        keep.append(int(net.ext_grid.bus.iloc[0]))
        drop = [b for b in net.bus.index if b not in set(keep)]
        pptb.drop_buses(net, drop, drop_elements=True)
    return net, "cigre_lv: ratings from conductor codes " + json.dumps(CIGRE_LV_AMPACITY_KA)


def _simbench_raw(code: str) -> tuple[Any, str]:
    try:
        import simbench  # lazy: an optional extra (gridledger[simbench]), absent by default
    except ImportError as exc:
        msg = (
            f"feeder {code!r} looks like a SimBench code but the optional package 'simbench' "
            f"is not installed: pip install 'gridledger[simbench]'"
        )
        raise GridError(msg) from exc
    try:
        net = simbench.get_simbench_net(code)
    except Exception as exc:  # simbench raises plain exceptions for bad codes
        msg = f"SimBench could not build feeder {code!r}: {exc}"
        raise GridError(msg) from exc
    return net, f"SimBench {code}"


_BUILDERS: dict[str, Callable[[], tuple[Any, str]]] = {
    "ieee33": _ieee33_raw,
    "cigre_lv": lambda: _cigre_lv_raw(residential_only=True),
    "cigre_lv_full": lambda: _cigre_lv_raw(residential_only=False),
    "ieee33_meshed": _ieee33_meshed_raw,
}


# raw (unprepared) nets already built in this process: building case33bw from its
# JSON takes seconds, a deep copy milliseconds
_RAW_CACHE: dict[str, tuple[Any, str]] = {}


def known_feeders() -> list[str]:
    """Names ``load_feeder`` accepts (SimBench codes come on top, with the extra)."""
    return sorted(_BUILDERS)


def _looks_like_simbench(name: str) -> bool:
    parts = name.split("-")
    return (
        len(parts) >= 5
        and parts[0] in {"1", "2"}
        and parts[1] in {"EHV", "HV", "MV", "LV", "EHVHV", "HVMV", "MVLV"}
    )


# ------------------------------------------------------------------------- preparation


def _clean_topology(net: Any, name: str) -> None:
    """Fuse closed bus-bus switches, drop out-of-service and open-switched branches."""
    sw = net.switch
    bb = sw[(sw.et == "b") & sw.closed.astype(bool)]
    for idx in bb.index:
        a, b = int(sw.at[idx, "bus"]), int(sw.at[idx, "element"])
        if a != b and a in net.bus.index and b in net.bus.index:
            keep, gone = (a, b) if a in set(net.ext_grid.bus) or a < b else (b, a)
            pptb.fuse_buses(net, keep, gone)
    sw = net.switch
    open_lines = sw[(sw.et == "l") & ~sw.closed.astype(bool)].element.unique()
    open_trafos = sw[(sw.et == "t") & ~sw.closed.astype(bool)].element.unique()
    bad_lines = set(net.line.index[~net.line.in_service.astype(bool)]) | set(open_lines)
    if bad_lines:
        pptb.drop_lines(net, sorted(int(i) for i in bad_lines if i in net.line.index))
    bad_trafos = set(net.trafo.index[~net.trafo.in_service.astype(bool)]) | set(open_trafos)
    if bad_trafos:
        pptb.drop_elements(net, "trafo", sorted(int(i) for i in bad_trafos))
    if len(net.trafo3w):
        msg = (
            f"feeder {name!r} has {len(net.trafo3w)} three-winding transformer(s), which "
            f"gridledger does not model (two-winding transformers and lines only)"
        )
        raise FeederUnsupported(msg)
    for tab in ("impedance", "dcline", "xward", "ward", "shunt", "storage", "gen"):
        if tab in net and len(net[tab]):
            log.info("feeder %s: dropping %d %s element(s)", name, len(net[tab]), tab)
            net[tab] = net[tab].iloc[0:0]
    if len(net.switch):
        net.switch = net.switch.iloc[0:0]
    ext = net.ext_grid[net.ext_grid.in_service.astype(bool)]
    if len(ext) != 1:
        msg = (
            f"feeder {name!r} has {len(ext)} in-service external grids; gridledger models "
            f"one substation (the slack) per feeder"
        )
        raise FeederUnsupported(msg)
    _drop_unsupplied(net, name, int(ext.bus.iloc[0]))


def _drop_unsupplied(net: Any, name: str, slack: int) -> None:
    """Drop buses no in-service branch connects to the slack (islanded by open switches)."""
    adj: dict[int, list[int]] = {int(b): [] for b in net.bus.index}
    for a, b in zip(
        [*net.line.from_bus.tolist(), *net.trafo.hv_bus.tolist()],
        [*net.line.to_bus.tolist(), *net.trafo.lv_bus.tolist()],
        strict=True,
    ):
        adj[int(a)].append(int(b))
        adj[int(b)].append(int(a))
    seen = {slack}
    stack = [slack]
    while stack:
        for v in adj[stack.pop()]:
            if v not in seen:
                seen.add(v)
                stack.append(v)
    gone = sorted(set(adj) - seen)
    if gone:
        loads = int(net.load.bus.isin(gone).sum())
        log.warning(
            "feeder %s: dropping %d bus(es) not supplied in this switch state (%d load(s))",
            name,
            len(gone),
            loads,
        )
        pptb.drop_buses(net, gone, drop_elements=True)


def _bus_geo(net: Any, bus_ids: list[int]) -> np.ndarray | None:
    if "geo" not in net.bus.columns:
        return None
    out = np.zeros((len(bus_ids), 2))
    for m, b in enumerate(bus_ids):
        geo = net.bus.at[b, "geo"]
        if not isinstance(geo, str) or not geo:
            return None
        try:
            coords = json.loads(geo)["coordinates"]
            out[m] = (float(coords[0]), float(coords[1]))
        except (ValueError, KeyError, TypeError, IndexError):
            return None
    # geodata with stacked buses is useless for a map
    if len({(round(x, 6), round(y, 6)) for x, y in out}) < len(bus_ids):
        return None
    return out


def _prepare(net: Any, name: str, v_min_pu: float, v_max_pu: float, notes: str) -> Feeder:
    _clean_topology(net, name)
    slack = int(net.ext_grid.bus[net.ext_grid.in_service.astype(bool)].iloc[0])
    others = sorted(int(b) for b in net.bus.index if int(b) != slack)
    bus_ids = [slack, *others]
    pos = {b: m for m, b in enumerate(bus_ids)}
    n = len(bus_ids)

    def bus_sum(table: Any, column: str) -> np.ndarray:
        out = np.zeros(n)
        if len(table):
            active = table[table.in_service.astype(bool)]
            vals = active[column].to_numpy(float) * active["scaling"].to_numpy(float)
            for b, v in zip(active.bus.to_numpy(int), vals, strict=True):
                out[pos[int(b)]] += v * 1000.0
        return out

    live_loads = net.load[net.load.in_service.astype(bool)] if len(net.load) else net.load
    load_element_bus = np.array([pos[int(b)] for b in live_loads.bus], dtype=np.int64)
    load_element_p = (
        live_loads.p_mw.to_numpy(float) * live_loads.scaling.to_numpy(float) * 1000.0
        if len(live_loads)
        else np.zeros(0)
    )
    base_p = bus_sum(net.load, "p_mw")
    base_q = bus_sum(net.load, "q_mvar")
    base_gen = bus_sum(net.sgen, "p_mw")
    total_p = float(base_p.sum())
    default_ratio = float(base_q.sum()) / total_p if total_p > 0 else 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        q_per_p = np.where(base_p > 0, base_q / np.where(base_p > 0, base_p, 1.0), default_ratio)

    # replace all injections by one load + one sgen per market bus (in market order)
    net.load = net.load.iloc[0:0]
    net.sgen = net.sgen.iloc[0:0]
    for tab in ("controller", "measurement", "poly_cost", "pwl_cost", "profiles"):
        if tab in net and hasattr(net[tab], "iloc") and len(net[tab]):
            net[tab] = net[tab].iloc[0:0]
    zeros = np.zeros(len(bus_ids))
    load_names = [f"gl_load_{m}" for m in range(len(bus_ids))]
    sgen_names = [f"gl_sgen_{m}" for m in range(len(bus_ids))]
    # one call per table: creating 5,000 elements one at a time takes about 30 s
    load_ids = [int(i) for i in pp.create_loads(net, bus_ids, zeros, q_mvar=zeros, name=load_names)]
    sgen_ids = [int(i) for i in pp.create_sgens(net, bus_ids, zeros, q_mvar=zeros, name=sgen_names)]

    line_ids = [int(i) for i in net.line.index]
    trafo_ids = [int(i) for i in net.trafo.index]
    line = net.line
    line_from = np.array([pos[int(b)] for b in line.from_bus], dtype=np.int64)
    line_to = np.array([pos[int(b)] for b in line.to_bus], dtype=np.int64)
    par = line.parallel.to_numpy(float)
    length = line.length_km.to_numpy(float)
    max_i = line.max_i_ka.to_numpy(float) * line.df.to_numpy(float) * par
    if not np.all(np.isfinite(max_i)) or np.any(max_i <= 0) or np.any(max_i >= 1000):
        msg = f"feeder {name!r}: lines without a thermal rating (max_i_ka): {max_i.tolist()}"
        raise GridError(msg)
    r_ohm = line.r_ohm_per_km.to_numpy(float) * length / par
    x_ohm = line.x_ohm_per_km.to_numpy(float) * length / par
    zero = np.flatnonzero(np.hypot(r_ohm, x_ohm) <= 0)
    if zero.size:
        msg = (
            f"feeder {name!r}: line(s) {[line_ids[i] for i in zero[:10]]} have zero impedance; "
            f"gridledger needs every branch to have an impedance (model a closed switch instead)"
        )
        raise FeederUnsupported(msg)
    vn = net.bus.vn_kv.to_dict()
    line_vn = np.array([float(vn[int(b)]) for b in line.from_bus])
    bus_vn = np.array([float(vn[b]) for b in bus_ids])
    trafo = net.trafo
    trafo_from = np.array([pos[int(b)] for b in trafo.hv_bus], dtype=np.int64)
    trafo_to = np.array([pos[int(b)] for b in trafo.lv_bus], dtype=np.int64)
    trafo_sn = trafo.sn_mva.to_numpy(float) * trafo.parallel.to_numpy(float) * 1000.0

    tree = build_tree(
        n, np.concatenate([line_from, trafo_from]), np.concatenate([line_to, trafo_to]), name
    )
    # distance from the root in km along the tree (transformers count 0 km)
    edge_km = np.concatenate([length, np.zeros(len(trafo_ids))])
    dist = np.zeros(n)
    for b in tree.order[1:]:
        dist[b] = dist[tree.parent[b]] + edge_km[tree.parent_edge[b]]
    branch = branch_ids_of_buses(tree, dist)
    xy = _bus_geo(net, bus_ids)
    if xy is None:
        xy = tree_layout(tree)

    net.bus["min_vm_pu"] = v_min_pu
    net.bus["max_vm_pu"] = v_max_pu
    for tab in ("res_bus", "res_line", "res_trafo"):
        if tab in net:
            net[tab] = net[tab].iloc[0:0]
    return Feeder(
        name=name,
        net=net,
        bus_ids=bus_ids,
        v_min_pu=v_min_pu,
        v_max_pu=v_max_pu,
        base_load_p_kw=base_p,
        base_load_q_kvar=base_q,
        base_gen_p_kw=base_gen,
        branch_of_bus=branch,
        xy=xy,
        bus_vn_kv=bus_vn,
        parent=tree.parent.copy(),
        line_ids=line_ids,
        line_from=line_from,
        line_to=line_to,
        line_length_km=length,
        line_max_i_ka=max_i,
        line_r_ohm=r_ohm,
        line_x_ohm=x_ohm,
        line_vn_kv=line_vn,
        trafo_ids=trafo_ids,
        trafo_from=trafo_from,
        trafo_to=trafo_to,
        trafo_sn_kva=trafo_sn,
        q_per_p_load=q_per_p,
        load_ids=load_ids,
        sgen_ids=sgen_ids,
        tree=tree,
        notes=notes,
        load_element_bus=load_element_bus,
        load_element_p_kw=load_element_p,
    )


def prepare_feeder(
    net: Any,
    name: str,
    *,
    v_min_pu: float = DEFAULT_V_MIN_PU,
    v_max_pu: float = DEFAULT_V_MAX_PU,
    notes: str = "",
) -> Feeder:
    """A :class:`Feeder` from any pandapower net (prepared in place, see the module docstring).

    Lines need a thermal rating (``max_i_ka``). Used for feeders outside the
    catalogue, such as the synthetic 1,000-bus feeder of the benchmarks.
    """
    if not v_min_pu < v_max_pu:
        msg = f"feeder {name!r}: voltage band v_min_pu={v_min_pu} >= v_max_pu={v_max_pu}"
        raise GridError(msg)
    return _prepare(net, name, v_min_pu, v_max_pu, notes)


def load_feeder(
    name: str, *, v_min_pu: float = DEFAULT_V_MIN_PU, v_max_pu: float = DEFAULT_V_MAX_PU
) -> Feeder:
    """Build the named feeder (``known_feeders()`` or a SimBench code).

    Raises :class:`GridError` for an unknown name, a missing ``simbench`` extra,
    or a network that is not connected / has no thermal ratings, and
    :class:`FeederUnsupported` for elements gridledger cannot model.
    """
    if not v_min_pu < v_max_pu:
        msg = f"feeder {name!r}: voltage band v_min_pu={v_min_pu} >= v_max_pu={v_max_pu}"
        raise GridError(msg)
    if name in _RAW_CACHE:
        cached, notes = _RAW_CACHE[name]
        net = copy.deepcopy(cached)
    elif name in _BUILDERS or _looks_like_simbench(name):
        net, notes = _BUILDERS[name]() if name in _BUILDERS else _simbench_raw(name)
        _RAW_CACHE[name] = (copy.deepcopy(net), notes)
    else:
        msg = (
            f"unknown feeder {name!r}; known feeders: {', '.join(known_feeders())}, "
            f"or a SimBench code such as '1-LV-rural1--0-sw' (needs gridledger[simbench])"
        )
        raise GridError(msg)
    feeder = _prepare(net, name, v_min_pu, v_max_pu, notes)
    log.info(
        "feeder %s: %d buses, %d lines, %d trafos%s",
        name,
        feeder.n_buses,
        feeder.n_lines,
        feeder.n_trafos,
        f", meshed ({len(feeder.tree.chords())} loop(s))" if feeder.meshed else "",
    )
    return feeder
