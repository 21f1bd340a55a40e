"""Per-trader feedback: the mechanism's own results, how AA learns from them, the cold
start without the band midpoint, and the ZI-C / ZIP baselines in the registry."""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

import numpy as np
import pytest

from gridledger.bidding import STRATEGIES, PublicView, RoundInfo, TraderSpec, make_trader
from gridledger.bidding.adaptive_aggressive import AATrader
from gridledger.bidding.base import FILLED, NOT_MATCHED, PARTLY_FILLED, RATIONED, OwnResult
from gridledger.bidding.mechanism import Position, TraderMechanism, own_results
from gridledger.bidding.zip import ZIPTrader
from gridledger.market.greedy import clear_greedy
from gridledger.market.orders import Bid, ClearingResult, Side
from gridledger.market.units import price_to_micro

P_MIN, P_MAX = 0.05, 0.30


def _bid(member: int, side: Side, e_wh: int, price: float, bus: int = 1) -> Bid:
    return Bid(member, side, e_wh, price_to_micro(price), bus)


def _clear(bids: Sequence[Bid]) -> ClearingResult:
    return clear_greedy(bids, None, Fraction(1, 2))


def test_own_results_name_each_outcome() -> None:
    bids = [
        _bid(1, Side.BUY, 1000, 0.20),  # first pair: filled
        _bid(2, Side.BUY, 1000, 0.18),  # gets the 500 Wh left: partly filled
        _bid(3, Side.BUY, 1000, 0.16),  # through the traded asks, nothing left: rationed
        _bid(4, Side.BUY, 1000, 0.10),  # below every traded ask: not matched
        _bid(10, Side.SELL, 1000, 0.12),
        _bid(11, Side.SELL, 500, 0.14),
        _bid(12, Side.SELL, 1000, 0.25),  # above every bid: not matched
    ]
    result = clear_greedy(bids, None, Fraction(1, 2))
    own = {b.member: r for b, r in zip(bids, own_results(bids, result), strict=True)}
    assert own[1].outcome == FILLED and own[1].traded_wh == 1000
    assert own[1].price_per_kwh == pytest.approx(0.16)  # (0.20 + 0.12) / 2
    assert own[2].outcome == PARTLY_FILLED and own[2].traded_wh == 500
    assert own[3].outcome == RATIONED and own[3].price_per_kwh is None
    assert own[4].outcome == NOT_MATCHED
    assert own[10].outcome == FILLED and own[11].outcome == FILLED
    assert own[12].outcome == NOT_MATCHED


def test_a_rationed_seller_is_at_the_margin_and_not_told_to_back_off() -> None:
    """Two sellers at 0.15, one buyer of 1 kWh: the one that loses the tie is rationed,
    and its AA trader becomes more aggressive (lower ask), never less."""
    bids = [
        _bid(1, Side.BUY, 1000, 0.20),
        _bid(10, Side.SELL, 1000, 0.15),
        _bid(11, Side.SELL, 1000, 0.15),
    ]
    result = clear_greedy(bids, None, Fraction(1, 2))
    own = own_results(bids, result)
    assert [o.outcome for o in own] == [FILLED, FILLED, RATIONED]
    view = PublicView(3, 1, 5, P_MIN, P_MAX, past_trade_prices=[0.175] * 5)
    trader = AATrader(TraderSpec(11, "sell", 0.10, "neutral", P_MIN, P_MAX))
    before = trader.quote(view)
    r_before = trader.r
    trader.observe(view, RoundInfo(0.20, 0.15, (0.175,), (1000,)), own[2])
    assert trader.r > r_before
    view.round = 2
    assert trader.quote(view) < before  # asks lower after being rationed
    # the filled seller with the same limit backs off (asks higher)
    filled = AATrader(TraderSpec(10, "sell", 0.10, "neutral", P_MIN, P_MAX))
    view.round = 1
    filled.quote(view)
    filled.observe(view, RoundInfo(0.20, 0.15, (0.175,), (1000,)), own[1])
    assert filled.r < r_before


def test_fees_count_in_the_margin() -> None:
    """A buyer whose bid beats the traded ask but not ask + fee to its bus is priced out."""
    fees = np.zeros((3, 3), dtype=np.int64)
    fees[1, 2] = price_to_micro(0.05)  # seller bus 1 -> buyer bus 2
    bids = [
        Bid(1, Side.BUY, 1000, price_to_micro(0.20), 1),
        Bid(2, Side.BUY, 1000, price_to_micro(0.17), 2),
        Bid(10, Side.SELL, 1000, price_to_micro(0.15), 1),
    ]
    result = clear_greedy(bids, fees, Fraction(1, 2))
    own = own_results(bids, result, fees)
    assert own[1].outcome == NOT_MATCHED  # 0.17 < 0.15 + 0.05
    fees[1, 2] = price_to_micro(0.01)
    own = own_results(bids, clear_greedy(bids, fees, Fraction(1, 2)), fees)
    assert own[1].outcome == RATIONED  # 0.17 >= 0.15 + 0.01, but the seller was taken


def test_cold_start_is_not_the_band_midpoint() -> None:
    """A market far from the band's middle: the first round's quotes are the limits, and
    p* after it comes from that round's trades, never (P_min + P_max) / 2 = 0.175."""
    positions = [
        Position(i, 1, Side.BUY, 1000, 0.085 + 0.002 * i, "neutral", "aa") for i in range(5)
    ]
    positions += [
        Position(10 + j, 1, Side.SELL, 1000, 0.06 + 0.004 * j, "neutral", "aa") for j in range(5)
    ]
    mech = TraderMechanism(5, P_MIN, P_MAX, seed=0)
    rounds = mech.run_rounds(0, positions, _clear)
    first = {b.member: b.price_per_kwh_micro for b in rounds[0]}
    assert first == {pos.member: price_to_micro(pos.limit_price_per_kwh) for pos in positions}
    assert mech.aa is not None
    rows = np.arange(len(mech.aa))
    p_star = mech.aa.p_star(rows)
    assert np.all(np.abs(p_star - (P_MIN + P_MAX) / 2) > 0.05)
    assert np.all((p_star > 0.06) & (p_star < 0.095))


def test_cold_start_without_trade_uses_the_first_book() -> None:
    trader = AATrader(TraderSpec(1, "buy", 0.09, "neutral", P_MIN, P_MAX))
    view = PublicView(0, 0, 5, P_MIN, P_MAX)
    assert trader.quote(view) == 0.09
    trader.observe(view, RoundInfo(0.09, 0.11), OwnResult(NOT_MATCHED, 1000))
    assert trader.population.p_star(np.zeros(1, dtype=np.intp))[0] == pytest.approx(0.10)


def test_baselines_are_registered_and_within_limits() -> None:
    assert {"aa", "zi", "zip"} <= set(STRATEGIES)
    rng = np.random.default_rng(1)
    spec = TraderSpec(1, "sell", 0.12, "neutral", P_MIN, P_MAX)
    zip_trader = make_trader("zip", spec, rng)
    assert isinstance(zip_trader, ZIPTrader)
    assert 0.1 <= zip_trader.beta <= 0.5 and 0.0 <= zip_trader.gamma <= 0.1
    view = PublicView(0, 0, 5, P_MIN, P_MAX)
    start = zip_trader.quote(view)
    assert start >= 0.12 * 1.05 - 1e-12
    # filled at a round price above its ask: raises its margin
    zip_trader.observe(view, RoundInfo(0.2, start, (start + 0.02,)), OwnResult(FILLED, 1000, 1000))
    assert zip_trader.quote(view) > start
    # rationed: lowers it toward the round price, never below the limit
    for _ in range(50):
        zip_trader.observe(view, RoundInfo(0.13, 0.13, (0.125,)), OwnResult(RATIONED, 1000))
    assert 0.12 <= zip_trader.quote(view) < start
    zi = make_trader("zi", TraderSpec(2, "buy", 0.2, "neutral", P_MIN, P_MAX), rng)
    draws = [zi.quote(view) for _ in range(200)]
    assert min(draws) >= P_MIN and max(draws) <= 0.2 and np.std(draws) > 0.03  # redrawn


def test_binding_round_keeps_a_filled_quote() -> None:
    """A quote that cleared in the last indicative round is not withdrawn when binding."""
    trader = AATrader(TraderSpec(1, "buy", 0.25, "neutral", P_MIN, P_MAX))
    view = PublicView(0, 3, 5, P_MIN, P_MAX, past_trade_prices=[0.175] * 5)
    quote = trader.quote(view)
    trader.observe(
        view, RoundInfo(quote, 0.17, (0.172,), (1000,)), OwnResult(FILLED, 1000, 1000, 0.172)
    )
    view.round = 4
    assert trader.quote(view) >= quote
