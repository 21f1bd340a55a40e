"""The lazy row-best heap of greedy.clear_greedy equals the old matrix rescan.

The oracle (tests/market/greedy_matrix_oracle.py) is the pre-heap implementation
verbatim; the contract (FeeClearing.verifyGreedy) re-executes that rule to the unit,
so the trades must be identical: same order, parties, quantities and prices.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from benchmarks.markets import large_market, random_fee_market
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.conftest import MarketWithDistance, fee_markets
from tests.market.greedy_matrix_oracle import clear_greedy_matrix

from gridledger.errors import ClearingError
from gridledger.market.greedy import clear_greedy
from gridledger.market.orders import Bid, Side

KAPPAS = [Fraction(1, 2), Fraction(0), Fraction(1), Fraction(1, 3)]


@st.composite
def tie_heavy_markets(draw: st.DrawFn) -> tuple[list[Bid], np.ndarray, np.ndarray | None]:
    """Few buses, many orders per bus, prices and fees from tiny sets: ties everywhere.

    Fees need not be symmetric and may be equal across all bus pairs; the optional
    tie distance takes two values so it breaks some (fee) ties and leaves others.
    """
    n_buses = draw(st.integers(1, 6))
    fee_values = draw(st.sampled_from([[0], [5], [0, 1], [0, 2, 4], [0, 3, 30]]))
    fees = np.array(
        draw(
            st.lists(
                st.lists(st.sampled_from(fee_values), min_size=n_buses, max_size=n_buses),
                min_size=n_buses,
                max_size=n_buses,
            )
        ),
        dtype=np.int64,
    )
    dist = None
    if draw(st.booleans()):
        dist = np.array(
            draw(
                st.lists(
                    st.lists(st.sampled_from([0.0, 1.5]), min_size=n_buses, max_size=n_buses),
                    min_size=n_buses,
                    max_size=n_buses,
                )
            ),
            dtype=np.float64,
        )
    prices = draw(st.sampled_from([[10], [10, 12], [8, 10, 12, 14], list(range(0, 40, 3))]))
    members = draw(st.lists(st.integers(0, 10_000), min_size=0, max_size=60, unique=True))
    bids = [
        Bid(
            m,
            draw(st.sampled_from([Side.BUY, Side.SELL])),
            draw(st.sampled_from([100, 200, 300, 700])),
            draw(st.sampled_from(prices)),
            draw(st.integers(0, n_buses - 1)),
        )
        for m in members
    ]
    return bids, fees, dist


@pytest.mark.slow  # 800 examples, about 8 s; the fast lane keeps the other rescan checks
@settings(max_examples=800, deadline=None)
@given(tie_heavy_markets(), st.sampled_from(KAPPAS))
def test_equals_matrix_rescan_on_tie_heavy_markets(
    market: tuple[list[Bid], np.ndarray, np.ndarray | None], kappa: Fraction
) -> None:
    bids, fees, dist = market
    assert clear_greedy(bids, fees, kappa, tie_distance=dist) == clear_greedy_matrix(
        bids, fees, kappa, tie_distance=dist
    )


def _outcome(clear: object, *args: object, **kwargs: object) -> object:
    """The clearing result, or the ClearingError message."""
    try:
        return clear(*args, **kwargs)  # type: ignore[operator]
    except ClearingError as error:
        return str(error)


@settings(max_examples=300, deadline=None)
@given(tie_heavy_markets(), st.sampled_from([2**40, 2**54, 2**56, 2**58]))
def test_equals_matrix_rescan_at_huge_prices(
    market: tuple[list[Bid], np.ndarray, np.ndarray | None], base: int
) -> None:
    """Near the int64 packing limits (ids no longer packed into the argmax; or too large
    for the rule, where both raise the same ClearingError)."""
    bids, fees, dist = market
    bids = [Bid(b.member, b.side, b.e_wh, base + b.price_per_kwh_micro, b.bus) for b in bids]
    assert _outcome(clear_greedy, bids, fees, tie_distance=dist) == _outcome(
        clear_greedy_matrix, bids, fees, tie_distance=dist
    )


def test_equals_matrix_rescan_with_prices_too_large_to_pack_ids() -> None:
    """Equal 2**58 prices on 30 buses, no fees: argmax ties resolved by a second pass."""
    bids = [Bid(m, Side(m % 2), 100 * (1 + m % 4), 2**58 + m % 3, m % 30) for m in range(300)]
    fees = np.zeros((30, 30), dtype=np.int64)
    result = clear_greedy(bids, fees)
    assert len(result.trades) > 50
    assert result == clear_greedy_matrix(bids, fees)


@settings(max_examples=300, deadline=None)
@given(fee_markets(max_buses=8, max_bids=40), st.booleans())
def test_equals_matrix_rescan_on_fee_markets(market: MarketWithDistance, use_dist: bool) -> None:
    bids, fees, dist = market
    tie = dist if use_dist else None
    assert clear_greedy(bids, fees, tie_distance=tie) == clear_greedy_matrix(
        bids, fees, tie_distance=tie
    )


@pytest.mark.parametrize(("seed", "n_bids", "n_buses"), [(0, 400, 33), (1, 600, 120), (2, 300, 7)])
def test_equals_matrix_rescan_on_random_fee_markets(seed: int, n_bids: int, n_buses: int) -> None:
    bids, fees = random_fee_market(seed, n_bids, n_buses)
    assert clear_greedy(bids, fees) == clear_greedy_matrix(bids, fees)


def test_equals_matrix_rescan_on_a_large_market_with_many_buses() -> None:
    bids, fees = large_market(3, 1_500, 200)
    assert clear_greedy(bids, fees) == clear_greedy_matrix(bids, fees)


def test_equals_matrix_rescan_with_zero_fees_and_one_price() -> None:
    """Every pair ties on (surplus, fee): member ids alone decide, over many buses."""
    bids = [Bid(m, Side(m % 2), 100 * (1 + m % 3), 50, (7 * m) % 40) for m in range(400)]
    fees = np.zeros((40, 40), dtype=np.int64)
    assert clear_greedy(bids, fees) == clear_greedy_matrix(bids, fees)


def test_same_errors_as_matrix_rescan() -> None:
    """9 distinct fees take 4 bits of the packed key, so prices must stay below 2**56."""
    bids = [Bid(m, Side(m % 2), 100, 2**57 if m == 0 else 1, m // 2) for m in range(6)]
    fees = np.arange(9, dtype=np.int64).reshape(3, 3)
    for clear in (clear_greedy, clear_greedy_matrix):
        with pytest.raises(ClearingError, match="below 2\\*\\*56"):
            clear(bids, fees)
        with pytest.raises(ClearingError, match="tie_distance shape"):
            clear(bids, fees, tie_distance=np.zeros((4, 4)))
