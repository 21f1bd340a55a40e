"""Fees in path form (market/path_fees.py): least path sums of rounded branch fees.

The table is checked against an independent all-pairs shortest path (Floyd-Warshall in
integers) on random feeders with loops, parallel branches and zero-fee branches; against the
table form on a radial feeder (at most half a micro-token per branch apart); and the
methods that are not sums along a path are refused by name.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridledger.errors import ClearingError
from gridledger.market.fees import fee_table
from gridledger.market.path_fees import (
    PathFees,
    branch_fees_micro,
    path_fees,
    sparse_minima,
    table_from_layout,
)


def floyd_warshall(fees: PathFees) -> np.ndarray:
    """Least path fee between every pair, by relaxation over every bus (independent)."""
    b = fees.n_buses
    dist = np.full((b, b), np.iinfo(np.int64).max // 4, dtype=np.int64)
    np.fill_diagonal(dist, 0)
    for u, v, w in zip(fees.edge_from, fees.edge_to, fees.edge_fee_micro, strict=True):
        dist[u, v] = min(dist[u, v], w)
        dist[v, u] = min(dist[v, u], w)
    for k in range(b):
        dist = np.minimum(dist, dist[:, k : k + 1] + dist[k : k + 1, :])
    return dist + fees.flat_micro


@st.composite
def feeders(draw: st.DrawFn, max_buses: int = 30) -> PathFees:
    """A connected feeder: a random tree (buses relabelled, bus 0 the root) plus up to four
    extra branches (loops, parallel branches, self-loops), fees 0..5,000."""
    b = draw(st.integers(1, max_buses))
    parents = [draw(st.integers(0, v - 1)) for v in range(1, b)]
    extra = draw(st.lists(st.tuples(st.integers(0, b - 1), st.integers(0, b - 1)), max_size=4))
    label = [0, *draw(st.permutations(list(range(1, b))))]
    ends = [(p, v) for v, p in enumerate(parents, start=1)] + extra
    fees = draw(st.lists(st.integers(0, 5_000), min_size=len(ends), max_size=len(ends)))
    flat = draw(st.integers(0, 2_000))
    return PathFees(
        b,
        np.array([label[u] for u, _ in ends], dtype=np.int64),
        np.array([label[v] for _, v in ends], dtype=np.int64),
        np.array(fees, dtype=np.int64),
        flat,
    )


@settings(max_examples=150, deadline=None)
@given(fees=feeders())
def test_the_table_is_the_least_path_fee(fees: PathFees) -> None:
    table = fees.table
    assert np.array_equal(table, floyd_warshall(fees))
    assert np.array_equal(table, table.T)
    assert np.all(np.diag(table) == fees.flat_micro)


@settings(max_examples=60, deadline=None)
@given(fees=feeders(max_buses=20))
def test_the_layout_is_an_euler_tour_with_range_minima(fees: PathFees) -> None:
    layout = fees.layout
    b = fees.n_buses
    assert layout.level.shape == (2 * b - 1,)
    assert sorted(set(layout.first.tolist())) == sorted(layout.first.tolist())  # distinct
    table = sparse_minima(layout.level)
    e = layout.level.shape[0]
    for k in range(table.shape[0]):
        for i in range(e - (1 << k) + 1):
            assert table[k, i] == layout.level[i : i + (1 << k)].min()
        assert not table[k, e - (1 << k) + 1 :].any()


def test_rows_that_are_not_range_minima_give_what_the_verifier_computes() -> None:
    """Committed rows are used as they are; a tree fee below 0 counts as 0."""
    fees = PathFees(3, np.array([0, 1]), np.array([1, 2]), np.array([7, 5]))
    layout = fees.layout
    damaged = sparse_minima(layout.level)
    damaged[1:] = 1_000  # every minimum above row 0 far too large
    table = table_from_layout(
        type(layout)(layout.first, layout.level, layout.portals, layout.portal_fee, 0, damaged)
    )
    assert np.array_equal(np.diag(table), [0, 0, 0])
    assert table[0, 2] == 0 and table[0, 1] == 0  # clamped at 0 (levels 0, 7, 12)


def test_a_radial_feeder_agrees_with_the_table_form_within_half_a_micro_per_branch() -> None:
    rng = np.random.default_rng(4)
    b = 40
    parent = [int(rng.integers(0, v)) for v in range(1, b)]
    km = rng.uniform(0.05, 2.0, b - 1)
    path = path_fees(
        "distance",
        {"gamma_d": 0.0137, "metric": "km"},
        n_buses=b,
        edge_from=parent,
        edge_to=list(range(1, b)),
        edge_km=km,
        edge_ohm=km * 0.3,
        edge_is_line=np.ones(b - 1),
        edge_rating_kw=np.ones(b - 1),
    )
    depth_km = np.zeros(b)
    hops = np.zeros(b, dtype=np.int64)
    for v in range(1, b):
        depth_km[v] = depth_km[parent[v - 1]] + km[v - 1]
        hops[v] = hops[parent[v - 1]] + 1
    assert path.layout.portals.shape == (0,)  # radial: no loops, no portals
    path_km = np.zeros((b, b))
    for p in range(b):
        for q in range(b):
            a, c = p, q
            seen = {a}
            while a:
                a = parent[a - 1]
                seen.add(a)
            while c not in seen:
                c = parent[c - 1]
            path_km[p, q] = depth_km[p] + depth_km[q] - 2 * depth_km[c]
    table = fee_table("distance", {"gamma_d": 0.0137, "metric": "km"}, path_km=path_km)
    gap = np.abs(path.table - table)
    # each branch on the path rounds by at most half a micro, the pair's total by another half
    assert np.all(2 * gap <= hops[:, None] + hops[None, :] + 1)
    assert gap.max() > 0  # the two forms do round differently


@pytest.mark.parametrize(
    ("method", "params", "meshed", "match"),
    [
        ("zonal", {"gamma_in": 0.01, "gamma_out": 0.02}, False, "zonal"),
        ("distance", {"gamma_d": 0.01, "metric": "ptdf"}, True, "metric 'ptdf' on a meshed"),
        ("mw_mile", {"cost_per_km_year": 100.0}, True, "mw_mile on a meshed"),
        ("distance", {"gamma_d": 0.01, "metric": "miles"}, False, "metric 'miles'"),
        ("flat", {}, False, "missing parameter fee_params.gamma_u"),
        ("nearby", {}, False, "not known"),
    ],
)
def test_fees_that_are_not_path_sums_are_refused_by_name(
    method: str, params: dict, meshed: bool, match: str
) -> None:
    one = np.ones(3)
    with pytest.raises(ClearingError, match=match):
        branch_fees_micro(
            method,
            params,
            edge_km=one,
            edge_ohm=one,
            edge_is_line=one,
            edge_rating_kw=one,
            meshed=meshed,
        )


def test_branch_fees_per_method() -> None:
    km = np.array([1.0, 0.5, 0.0])
    ohm = np.array([0.2, 0.1, 0.05])
    line = np.array([1.0, 1.0, 0.0])  # the last branch is a transformer
    rating = np.array([100.0, 50.0, 1.0])
    kw = {"edge_km": km, "edge_ohm": ohm, "edge_is_line": line, "edge_rating_kw": rating}
    micro, flat = branch_fees_micro("distance", {"gamma_d": 0.01}, meshed=True, **kw)
    assert micro.tolist() == [10_000, 5_000, 0] and flat == 0
    micro, _ = branch_fees_micro("distance", {"gamma_d": 0.01, "metric": "ohm"}, meshed=True, **kw)
    assert micro.tolist() == [2_000, 1_000, 500]
    micro, _ = branch_fees_micro(
        "distance", {"gamma_d": 0.01, "metric": "ptdf"}, meshed=False, **kw
    )
    assert micro.tolist() == [10_000, 10_000, 0]
    micro, _ = branch_fees_micro("mw_mile", {"cost_per_km_hour": 2.0}, meshed=False, **kw)
    assert micro.tolist() == [20_000, 20_000, 0]  # 2 tokens/km/h x 1 km / 100 kW
    micro, flat = branch_fees_micro("flat", {"gamma_u": 0.02}, meshed=True, **kw)
    assert micro.tolist() == [0, 0, 0] and flat == 20_000


def test_a_feeder_that_is_not_connected_is_refused() -> None:
    with pytest.raises(ClearingError, match=r"buses \[2\] cannot be reached"):
        _ = PathFees(3, np.array([0]), np.array([1]), np.array([5])).table
    with pytest.raises(ClearingError, match="must be >= 0"):
        PathFees(2, np.array([0]), np.array([1]), np.array([-1]))
    with pytest.raises(ClearingError, match="branch ends"):
        PathFees(2, np.array([0]), np.array([2]), np.array([1]))
