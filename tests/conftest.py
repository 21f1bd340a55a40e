"""Shared random markets for the tests: hypothesis strategies, seeded markets, checks.

Seeded markets come from :mod:`benchmarks.markets`, the generator the benchmarks use
too: the ``small_fee_markets`` fixture holds the 1,000 small markets of the clearing gap
study in ``benchmarks/bench_clearing.py`` (``small_market``, seeds 0..999), and
``large_fee_market`` one large ``random_fee_market``.
The strategies draw the same kinds of markets through hypothesis (so failures shrink):
order books with sides, energies, prices and buses, and fee tables. Test files import
the strategies (``from tests.conftest import fee_markets``) and ask for the fixtures by
name; they do not define market strategies of their own.

Hypothesis runs the same examples on every run (profile ``repeatable``, derandomised),
so the suite's verdict depends on the code alone. To search further, as a fuzzing run:
``python -m pytest --hypothesis-profile=explore`` (fresh random examples each run).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from benchmarks.markets import FeeMarket, FeeTable, random_fee_market, small_market
from hypothesis import settings
from hypothesis import strategies as st

from gridledger.market import Bid, Side, Tariffs, Trade

settings.register_profile("repeatable", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile("repeatable")

__all__ = [
    "SMALL_MARKET_SEEDS",
    "FeeMarket",
    "FeeTable",
    "MarketWithDistance",
    "SettlementCase",
    "bid_rows",
    "books",
    "check_fee_trades",
    "degenerate_fee_markets",
    "fee_markets",
    "fee_networks",
    "settlement_cases",
    "tied_fee_markets",
]

MarketWithDistance = tuple[list[Bid], FeeTable, FeeTable]
SettlementCase = tuple[list[Trade], dict[int, int], Tariffs]
SMALL_MARKET_SEEDS = range(1_000)


# ------------------------------------------------------------------ checks
def check_fee_trades(trades: Sequence[Trade], bids: Sequence[Bid], fees: FeeTable) -> None:
    """Every trade pairs a buyer's and a seller's order at their buses, pays exactly the
    fee between its two prices, respects both limit prices, and no order is over-filled."""
    by = {b.member: b for b in bids}
    used: dict[int, int] = {}
    for t in trades:
        b, s = by[t.buyer], by[t.seller]
        assert b.side == Side.BUY and s.side == Side.SELL
        assert (t.buyer_bus, t.seller_bus) == (b.bus, s.bus)
        assert t.e_wh > 0
        # budget balance: the difference is exactly the fee, in integers
        assert t.buyer_price_per_kwh_micro - t.seller_price_per_kwh_micro == fees[s.bus, b.bus]
        assert t.buyer_price_per_kwh_micro <= b.price_per_kwh_micro
        assert t.seller_price_per_kwh_micro >= s.price_per_kwh_micro
        used[t.buyer] = used.get(t.buyer, 0) + t.e_wh
        used[t.seller] = used.get(t.seller, 0) + t.e_wh
    for member, e_wh in used.items():
        assert e_wh <= by[member].e_wh


# --------------------------------------------------------------- strategies
@st.composite
def fee_markets(draw: st.DrawFn, max_buses: int = 5, max_bids: int = 14) -> MarketWithDistance:
    """``(bids, fees, dist)``: a book on up to ``max_buses`` buses with many ties.

    ``dist`` is a symmetric bus distance (0..6, zero diagonal) and ``fees`` is ``dist``
    times 0, 1, 3 or 10 micro-tokens/kWh. Member ids are unique in 0..500; energies are
    100..600 Wh in 100 Wh steps and prices 0..20 micro-tokens/kWh, so fees matter and
    pairs tie often.
    """
    n_buses = draw(st.integers(1, max_buses))
    raw = draw(
        st.lists(
            st.lists(st.integers(0, 3), min_size=n_buses, max_size=n_buses),
            min_size=n_buses,
            max_size=n_buses,
        )
    )
    dist = np.array(raw, dtype=np.int64)
    dist = dist + dist.T
    np.fill_diagonal(dist, 0)
    fees = dist * draw(st.sampled_from([0, 1, 3, 10]))
    members = draw(st.lists(st.integers(0, 500), max_size=max_bids, unique=True))
    bids = [
        Bid(
            m,
            draw(st.sampled_from([Side.BUY, Side.SELL])),
            draw(st.integers(1, 6)) * 100,
            draw(st.integers(0, 20)),
            draw(st.integers(0, n_buses - 1)),
        )
        for m in members
    ]
    return bids, fees, dist


@st.composite
def tied_fee_markets(draw: st.DrawFn, max_bids: int = 24) -> FeeMarket:
    """``(bids, fees)``: few buses, an arbitrary (maybe asymmetric) fee table of 0..30,
    prices 90..130 and energies from a short grid, so that ties are common."""
    n_buses = draw(st.integers(1, 6))
    n_bids = draw(st.integers(0, max_bids))
    raw = draw(st.lists(st.integers(0, 30), min_size=n_buses * n_buses, max_size=n_buses * n_buses))
    fees = np.array(raw, dtype=np.int64).reshape(n_buses, n_buses)
    if draw(st.booleans()):
        fees = np.minimum(fees, fees.T)
    members = draw(st.permutations(range(100)))[:n_bids]
    bids = [
        Bid(
            member=int(m),
            side=Side(draw(st.integers(0, 1))),
            e_wh=draw(st.sampled_from([1, 2, 3, 5, 10, 100])),
            price_per_kwh_micro=draw(st.integers(90, 130)),
            bus=draw(st.integers(0, n_buses - 1)),
        )
        for m in members
    ]
    return bids, fees


@st.composite
def degenerate_fee_markets(draw: st.DrawFn) -> FeeMarket:
    """``(bids, fees)``: 2..12 orders from a few energies and prices on buses 1..5 of a
    line with 5,000 micro-tokens/kWh per hop; many LPs of these have several optima."""
    n = draw(st.integers(2, 12), label="n")
    bids = [
        Bid(
            i,
            Side(draw(st.integers(0, 1), label=f"side{i}")),
            draw(st.sampled_from([1, 2, 50, 100, 250]), label=f"e{i}"),
            draw(st.sampled_from([50_000, 100_000, 130_000, 290_000, 320_000]), label=f"p{i}"),
            draw(st.integers(1, 5), label=f"bus{i}"),
        )
        for i in range(n)
    ]
    fees = np.array([[abs(p - q) * 5_000 for q in range(6)] for p in range(6)], dtype=np.int64)
    return bids, fees


def books(max_bids: int = 40, n_buses: int = 33) -> st.SearchStrategy[list[Bid]]:
    """Order books with ids 0..n-1, 1..50,000 Wh, 0..400,000 micro-tokens/kWh."""
    rows = st.tuples(
        st.sampled_from([Side.BUY, Side.SELL]),
        st.integers(1, 50_000),
        st.integers(0, 400_000),
        st.integers(0, n_buses - 1),
    )
    return st.lists(rows, max_size=max_bids).map(
        lambda drawn: [Bid(i, s, e, p, b) for i, (s, e, p, b) in enumerate(drawn)]
    )


def bid_rows(
    n_members: int,
    e_wh: st.SearchStrategy[int],
    price_per_kwh_micro: st.SearchStrategy[int],
) -> st.SearchStrategy[list[tuple[int, Side, int, int]]]:
    """One round of ``(member, side, e_wh, price)`` rows, at most one per member of
    ``0..n_members-1`` (the bus follows from the member where the rows are used)."""
    return st.lists(
        st.tuples(st.integers(0, n_members - 1), st.sampled_from(Side), e_wh, price_per_kwh_micro),
        max_size=n_members,
        unique_by=lambda row: row[0],
    )


@st.composite
def settlement_cases(draw: st.DrawFn) -> SettlementCase:
    """``(trades, readings, tariffs)`` of 2..8 members: any contracts between a buyer and
    a seller set, any meter readings (+-20 kWh) and any tariffs with retail >= feed-in."""
    n = draw(st.integers(2, 8))
    sellers = draw(st.sets(st.integers(0, n - 1), max_size=n - 1))
    buyers = [m for m in range(n) if m not in sellers]
    trades = []
    if sellers:
        for _ in range(draw(st.integers(0, 10))):
            pb = draw(st.integers(0, 400_000))
            trades.append(
                Trade(
                    draw(st.sampled_from(buyers)),
                    draw(st.sampled_from(sorted(sellers))),
                    draw(st.integers(0, 5_000)),
                    pb,
                    draw(st.integers(0, pb)),
                    1,
                    2,
                )
            )
    readings = {m: draw(st.integers(-20_000, 20_000)) for m in range(n)}
    feed_in = draw(st.integers(0, 300_000))
    tariffs = Tariffs(
        draw(st.integers(feed_in, 400_000)), feed_in, draw(st.sampled_from([0, 1, 500, 10_000]))
    )
    return trades, readings, tariffs


@st.composite
def fee_networks(draw: st.DrawFn) -> dict[str, npt.NDArray[Any]]:
    """The network inputs of :func:`gridledger.market.fees.fee_table` for a random
    network of 1..8 buses and 1..6 lines (symmetric distances, PTDFs, ratings, zones)."""
    n_buses = draw(st.integers(1, 8))
    n_lines = draw(st.integers(1, 6))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))

    def symmetric() -> npt.NDArray[np.float64]:
        d = rng.uniform(0, 3, (n_buses, n_buses))
        d = d + d.T
        np.fill_diagonal(d, 0.0)
        return d

    return {
        "path_km": symmetric(),
        "path_ohm": symmetric(),
        "ptdf_distance": symmetric(),
        "ptdf": rng.uniform(-1, 1, (n_lines, n_buses)),
        "line_rating_kw": rng.uniform(10, 5000, n_lines),
        "line_length_km": rng.uniform(0, 2, n_lines),
        "zone": rng.integers(0, 3, n_buses),
    }


# ----------------------------------------------------------- seeded markets
@pytest.fixture(scope="session")
def small_fee_markets() -> Sequence[FeeMarket]:
    """The 1,000 seeded small markets (seeds 0..999) of ``benchmarks.markets.small_market``
    on 33 buses: the markets of the gap study in ``benchmarks/bench_clearing.py``."""
    return [small_market(seed) for seed in SMALL_MARKET_SEEDS]


@pytest.fixture(scope="session")
def large_fee_market() -> FeeMarket:
    """10,000 seeded orders on 33 buses with distance fees (``random_fee_market``)."""
    return random_fee_market(3, 10_000)
