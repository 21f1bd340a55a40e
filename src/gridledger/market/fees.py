"""Use-of-system (network) fee tables, in integer micro-tokens per kWh.

A trade of ``E`` kWh from a seller at bus ``p`` to a buyer at bus ``q`` pays
``fees[p, q] * E`` to the network operator (docs/methods.md §2). The table is
built once per scenario from plain arrays describing the feeder; this module
does not import ``gridledger.grid`` (market/ stays pure).

Methods and parameters (scenario units; ``fee_params`` in the scenario):

========== ======================================== ===============================
method     fee c_pq in tokens/kWh                   parameters
========== ======================================== ===============================
none       0                                        (none)
flat       gamma_u (also for same-bus trades)       gamma_u [tokens/kWh]
zonal      gamma_in if zone[p] == zone[q]           gamma_in, gamma_out [tokens/kWh]
           else gamma_out
distance   gamma_d * d_pq, d_pq from ``metric``:    gamma_d [tokens/kWh per metric
           "km" path_km, "ohm" path_ohm,            unit], metric (default "km")
           "ptdf" ptdf_distance (dimensionless)
mw_mile    sum_l C_l |PTDF[l,p] - PTDF[l,q]| / F_l  cost_per_km_year [tokens/km/year]
           C_l = cost per km per hour * length_l,   or cost_per_km_hour
           F_l = line_rating_kw[l]                  [tokens/km/h] (exactly one)
========== ======================================== ===============================

MW-mile units: a trade of ``P`` kW for ``h`` hours uses the share
``P |dPTDF_l| / F_l`` of line ``l``; charging that share of the line's hourly
cost ``C_l`` gives ``C_l |dPTDF_l| / F_l`` tokens per kWh. ``cost_per_km_year``
is the annualised line cost, divided by 8760 h.

Rounding: the fee in tokens/kWh is computed in float64 on the symmetrised
distance ``(d + d.T) / 2`` (exactly symmetric, since float addition commutes),
then converted to micro-tokens per kWh by round-half-up, ``floor(x * 1e6 + 0.5)``.
The table is therefore int64, symmetric and non-negative.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from gridledger.errors import ClearingError
from gridledger.market.units import MICRO

__all__ = [
    "FEE_METHODS",
    "FeeSpec",
    "check_fee_params",
    "fee_parameter",
    "fee_table",
    "fees_or_zero",
]

HOURS_PER_YEAR = 8760.0
DISTANCE_METRICS = ("km", "ohm", "ptdf")

_PARAMS: dict[str, tuple[str, ...]] = {
    "none": (),
    "flat": ("gamma_u",),
    "zonal": ("gamma_in", "gamma_out"),
    "distance": ("gamma_d", "metric"),
    "mw_mile": ("cost_per_km_year", "cost_per_km_hour"),
}
FEE_METHODS: tuple[str, ...] = tuple(_PARAMS)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class FeeSpec:
    """A fee method and its parameters, as written in a scenario."""

    method: str = "none"
    params: Mapping[str, float | str] = field(default_factory=dict)


def check_fee_params(
    method: str, params: Mapping[str, float | str] | None
) -> dict[str, float | str]:
    """``params`` as a dict, once ``method`` is known and every parameter allowed for it
    (:class:`ClearingError` naming the method and the parameter otherwise)."""
    out = dict(params or {})
    if method not in _PARAMS:
        message = f"network fee method {method!r} is not known; known: {list(FEE_METHODS)}"
        raise ClearingError(message)
    unknown = sorted(set(out) - set(_PARAMS[method]))
    if unknown:
        message = (
            f"network fee {method!r}: unknown parameter(s) {unknown}; "
            f"allowed: {list(_PARAMS[method])}"
        )
        raise ClearingError(message)
    if method == "mw_mile":
        given = [k for k in ("cost_per_km_year", "cost_per_km_hour") if k in out]
        if len(given) != 1:
            message = (
                "network fee 'mw_mile': give exactly one of fee_params.cost_per_km_year "
                f"or fee_params.cost_per_km_hour (given: {given})"
            )
            raise ClearingError(message)
    return out


def fee_parameter(method: str, params: Mapping[str, float | str], key: str) -> float:
    """The numeric parameter ``key`` of ``method``: present, a number, finite and >= 0."""
    if key not in params:
        message = (
            f"network fee {method!r}: missing parameter fee_params.{key} (given: {sorted(params)})"
        )
        raise ClearingError(message)
    raw = params[key]
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        message = f"network fee {method!r}: fee_params.{key} = {raw!r} must be a number"
        raise ClearingError(message)
    value = float(raw)
    if not math.isfinite(value) or value < 0:
        message = f"network fee {method!r}: fee_params.{key} = {raw!r} must be finite and >= 0"
        raise ClearingError(message)
    return value


def _matrix(name: str, array: npt.ArrayLike | None, method: str) -> FloatArray:
    if array is None:
        message = f"network fee {method!r} needs the {name} matrix, which was not given"
        raise ClearingError(message)
    out = np.asarray(array, dtype=np.float64)
    if out.ndim != 2 or out.shape[0] != out.shape[1]:
        message = f"network fee {method!r}: {name} must be square (B, B), got shape {out.shape}"
        raise ClearingError(message)
    if not np.all(np.isfinite(out)) or np.any(out < 0):
        message = f"network fee {method!r}: {name} must be finite and non-negative"
        raise ClearingError(message)
    return out


def _to_micro(fee_per_kwh: FloatArray) -> IntArray:
    sym = 0.5 * (fee_per_kwh + fee_per_kwh.T)
    micro = np.floor(sym * MICRO + 0.5)
    if np.any(micro >= 2.0**48):
        message = (
            f"network fee: largest fee {float(sym.max())} tokens/kWh is too large (>= 2**48 micro)"
        )
        raise ClearingError(message)
    return micro.astype(np.int64)


def _n_buses(*arrays: npt.ArrayLike | None, n_buses: int | None) -> int:
    if n_buses is not None:
        return int(n_buses)
    for array in arrays:
        if array is not None:
            return int(np.shape(array)[-1])
    message = "network fee: cannot tell the number of buses (pass n_buses or a distance matrix)"
    raise ClearingError(message)


def fee_table(
    method: str,
    params: Mapping[str, float | str] | None = None,
    *,
    path_km: npt.ArrayLike | None = None,
    path_ohm: npt.ArrayLike | None = None,
    ptdf_distance: npt.ArrayLike | None = None,
    ptdf: npt.ArrayLike | None = None,
    line_rating_kw: npt.ArrayLike | None = None,
    line_length_km: npt.ArrayLike | None = None,
    zone: npt.ArrayLike | None = None,
    n_buses: int | None = None,
) -> IntArray:
    """Fee table ``fees[p, q]`` in micro-tokens per kWh (int64, symmetric, >= 0).

    Only the inputs the method needs must be given; the number of buses comes
    from ``n_buses`` or the first matrix given. Raises :class:`ClearingError`
    for an unknown method, an unknown, missing, non-numeric or negative
    parameter, or a missing or malformed input array.
    """
    params = check_fee_params(method, params)
    b = _n_buses(path_km, path_ohm, ptdf_distance, zone, ptdf, n_buses=n_buses)
    if method == "none":
        return np.zeros((b, b), dtype=np.int64)
    if method == "flat":
        return _to_micro(np.full((b, b), fee_parameter(method, params, "gamma_u")))
    if method == "zonal":
        gamma_in = fee_parameter(method, params, "gamma_in")
        gamma_out = fee_parameter(method, params, "gamma_out")
        if zone is None:
            message = "network fee 'zonal' needs the zone array (branch id per bus), not given"
            raise ClearingError(message)
        zones = np.asarray(zone)
        if zones.shape != (b,):
            message = f"network fee 'zonal': zone must have shape ({b},), got {zones.shape}"
            raise ClearingError(message)
        same = zones[:, None] == zones[None, :]
        return _to_micro(np.where(same, gamma_in, gamma_out))
    if method == "distance":
        gamma_d = fee_parameter(method, params, "gamma_d")
        metric = params.get("metric", "km")
        sources = {"km": path_km, "ohm": path_ohm, "ptdf": ptdf_distance}
        if metric not in sources:
            message = (
                f"network fee 'distance': fee_params.metric = {metric!r} is not known; "
                f"known: {list(DISTANCE_METRICS)}"
            )
            raise ClearingError(message)
        names = {"km": "path_km", "ohm": "path_ohm", "ptdf": "ptdf_distance"}
        dist = _matrix(names[str(metric)], sources[str(metric)], method)
        return _to_micro(gamma_d * dist)
    # mw_mile
    given = [k for k in ("cost_per_km_year", "cost_per_km_hour") if k in params]
    cost = fee_parameter(method, params, given[0])
    cost_per_km_hour = cost / HOURS_PER_YEAR if given[0] == "cost_per_km_year" else cost
    if ptdf is None or line_rating_kw is None or line_length_km is None:
        message = "network fee 'mw_mile' needs ptdf, line_rating_kw and line_length_km"
        raise ClearingError(message)
    ptdf_arr = np.asarray(ptdf, dtype=np.float64)
    rating = np.asarray(line_rating_kw, dtype=np.float64)
    length = np.asarray(line_length_km, dtype=np.float64)
    n_lines = rating.shape[0] if rating.ndim == 1 else -1
    if ptdf_arr.shape != (n_lines, b) or length.shape != (n_lines,):
        message = (
            f"network fee 'mw_mile': shapes disagree: ptdf {ptdf_arr.shape}, "
            f"line_rating_kw {rating.shape}, line_length_km {length.shape}, buses {b}"
        )
        raise ClearingError(message)
    if np.any(rating <= 0) or np.any(length < 0) or not np.all(np.isfinite(ptdf_arr)):
        message = "network fee 'mw_mile': line ratings must be > 0, lengths >= 0, PTDF finite"
        raise ClearingError(message)
    weight = cost_per_km_hour * length / rating  # tokens/kWh per unit |dPTDF|, per line
    fee = np.zeros((b, b))
    for line in range(n_lines):
        row = ptdf_arr[line]
        fee += weight[line] * np.abs(row[:, None] - row[None, :])
    return _to_micro(fee)


def fees_or_zero(fees: npt.ArrayLike | None, max_bus: int) -> IntArray:
    """Validate a fee table for clearing (or make a zero one) covering buses ``0..max_bus``.

    The table must be square, integer-valued, non-negative and below ``2**48``;
    it need not be symmetric (``fees[seller_bus, buyer_bus]`` is used).
    """
    if fees is None:
        return np.zeros((max_bus + 1, max_bus + 1), dtype=np.int64)
    table = np.asarray(fees)
    if table.ndim != 2 or table.shape[0] != table.shape[1]:
        message = f"fee table must be square (B, B), got shape {table.shape}"
        raise ClearingError(message)
    if table.shape[0] <= max_bus:
        message = f"fee table covers buses 0..{table.shape[0] - 1} but a bid is at bus {max_bus}"
        raise ClearingError(message)
    if table.dtype.kind not in "iu" and (
        not np.all(np.isfinite(table)) or np.any(table != np.round(table))
    ):
        message = "fee table must hold integer micro-tokens per kWh"
        raise ClearingError(message)
    out = table.astype(np.int64, copy=False)
    if out.size and (int(out.min()) < 0 or int(out.max()) >= 2**48):
        message = "fee table entries must be in 0..2**48-1 micro-tokens per kWh"
        raise ClearingError(message)
    return out
