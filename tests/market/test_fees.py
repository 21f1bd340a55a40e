"""Use-of-system fee tables: values per method, symmetry, sign, rounding, errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.conftest import fee_networks

from gridledger.errors import ClearingError
from gridledger.market.fees import FEE_METHODS, fee_table, fees_or_zero


def radial_chain(n_buses: int, length_km: float = 0.5, rating_kw: float = 1000.0) -> dict:
    """A chain feeder 0-1-2-...: line l joins bus l and l+1; slack at bus 0."""
    n_lines = n_buses - 1
    # PTDF of line l for an injection at bus p withdrawn at the slack: -1 if l is on 0..p
    ptdf = np.array(
        [[-1.0 if p > line else 0.0 for p in range(n_buses)] for line in range(n_lines)]
    )
    ptdf_distance = np.abs(ptdf[:, :, None] - ptdf[:, None, :]).sum(axis=0)
    hops = np.abs(np.arange(n_buses)[:, None] - np.arange(n_buses)[None, :]).astype(float)
    return {
        "path_km": hops * length_km,
        "path_ohm": hops * 0.3,
        "ptdf_distance": ptdf_distance,
        "ptdf": ptdf,
        "line_rating_kw": np.full(n_lines, rating_kw),
        "line_length_km": np.full(n_lines, length_km),
        "zone": np.array([0] + [1 + (p > n_buses // 2) for p in range(1, n_buses)]),
    }


PARAMS = {
    "none": {},
    "flat": {"gamma_u": 0.02},
    "zonal": {"gamma_in": 0.01, "gamma_out": 0.04},
    "distance": {"gamma_d": 0.013, "metric": "km"},
    "mw_mile": {"cost_per_km_year": 8760.0 * 3.0},
}


def test_values_on_a_chain() -> None:
    net = radial_chain(5)
    assert np.all(fee_table("none", {}, **net) == 0)
    assert np.all(fee_table("flat", {"gamma_u": 0.02}, **net) == 20_000)
    zonal = fee_table("zonal", {"gamma_in": 0.01, "gamma_out": 0.04}, **net)
    assert zonal[1, 2] == 10_000 and zonal[2, 4] == 40_000 and zonal[0, 1] == 40_000
    km = fee_table("distance", {"gamma_d": 0.013, "metric": "km"}, **net)
    assert km[0, 4] == 26_000  # 4 hops * 0.5 km * 0.013 tokens/kWh/km
    ohm = fee_table("distance", {"gamma_d": 0.1, "metric": "ohm"}, **net)
    assert ohm[1, 3] == 60_000  # 2 lines * 0.3 ohm * 0.1
    ptdf = fee_table("distance", {"gamma_d": 0.01, "metric": "ptdf"}, **net)
    assert ptdf[1, 4] == 30_000  # three lines between buses 1 and 4
    # MW-mile: 3 tokens/km/h * 0.5 km / 1000 kW = 0.0015 tokens/kWh per line crossed
    mw = fee_table("mw_mile", {"cost_per_km_year": 8760.0 * 3.0}, **net)
    assert mw[0, 2] == 3_000 and mw[2, 2] == 0
    hourly = fee_table("mw_mile", {"cost_per_km_hour": 3.0}, **net)
    assert np.array_equal(mw, hourly)


def test_nearby_pays_less_for_distance_methods() -> None:
    net = radial_chain(6)
    for method in ("distance", "mw_mile"):
        fees = fee_table(method, PARAMS[method], **net)
        assert fees[1, 2] < fees[1, 5]


def test_rounding_is_half_up_to_micro() -> None:
    fees = fee_table("flat", {"gamma_u": 0.0000125}, n_buses=2)
    assert fees.dtype == np.int64 and np.all(fees == 13)  # 12.5 micro -> 13
    fees = fee_table("flat", {"gamma_u": 0.0000124}, n_buses=2)
    assert np.all(fees == 12)


@settings(max_examples=60, deadline=None)
@given(fee_networks(), st.sampled_from(FEE_METHODS), st.sampled_from(["km", "ohm", "ptdf"]))
def test_symmetric_non_negative_int(net: dict, method: str, metric: str) -> None:
    params = dict(PARAMS[method])
    if method == "distance":
        params["metric"] = metric
    fees = fee_table(method, params, **net)
    b = net["path_km"].shape[0]
    assert fees.shape == (b, b) and fees.dtype == np.int64
    assert np.array_equal(fees, fees.T)
    assert np.all(fees >= 0)
    if method in ("distance", "mw_mile", "none"):
        assert np.all(np.diag(fees) == 0)


@pytest.mark.parametrize(
    ("method", "params", "needle"),
    [
        ("postage", {}, "'postage' is not known"),
        ("flat", {}, "missing parameter fee_params.gamma_u"),
        ("flat", {"gamma_u": -0.1}, "gamma_u = -0.1 must be finite and >= 0"),
        ("flat", {"gamma_u": "x"}, "gamma_u = 'x' must be a number"),
        ("flat", {"gamma_u": 0.1, "gamma": 1.0}, "unknown parameter(s) ['gamma']"),
        ("zonal", {"gamma_in": 0.1}, "fee_params.gamma_out"),
        ("distance", {"gamma_d": 0.1, "metric": "miles"}, "metric = 'miles' is not known"),
        ("mw_mile", {}, "exactly one of"),
        ("mw_mile", {"cost_per_km_year": 1.0, "cost_per_km_hour": 1.0}, "exactly one of"),
    ],
)
def test_errors_name_key_and_value(method: str, params: dict, needle: str) -> None:
    with pytest.raises(ClearingError) as info:
        fee_table(method, params, **radial_chain(3))
    assert needle in str(info.value)


def test_missing_input_matrix() -> None:
    with pytest.raises(ClearingError, match="path_ohm"):
        fee_table("distance", {"gamma_d": 0.1, "metric": "ohm"}, path_km=np.zeros((2, 2)))
    with pytest.raises(ClearingError, match="zone"):
        fee_table("zonal", {"gamma_in": 0.1, "gamma_out": 0.2}, n_buses=3)


def test_fees_or_zero_checks_tables() -> None:
    assert fees_or_zero(None, 2).shape == (3, 3)
    with pytest.raises(ClearingError, match="bus 4"):
        fees_or_zero(np.zeros((3, 3), dtype=np.int64), 4)
    with pytest.raises(ClearingError, match=r"0\.\.2"):
        fees_or_zero(-np.ones((3, 3), dtype=np.int64), 1)
    with pytest.raises(ClearingError, match="integer"):
        fees_or_zero(np.full((2, 2), 0.5), 1)
