"""On-chain fee-aware clearing checks (contracts/FeeClearing.sol) against market/greedy.py
and market/optimal.py: the references are accepted to the unit, tampered results are
rejected with the named custom error."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator, Sequence
from fractions import Fraction

import numpy as np
import pytest
from benchmarks.fee_harness import (
    FeeClearingHarness,
    FeeClearingRejected,
    greedy_args,
    optimal_args,
)
from benchmarks.markets import random_fee_market
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.conftest import tied_fee_markets

from gridledger.ledger.backends import EmbeddedBackend
from gridledger.ledger.encoding import address_of, derive_key, pack_bid, pack_trades
from gridledger.ledger.fee_clearing import greedy_entries, greedy_order, pack_fee_table
from gridledger.market.greedy import clear_greedy, make_trade
from gridledger.market.optimal import OptimalSolution, certify, solve_optimal
from gridledger.market.orders import Bid, Side, Trade
from gridledger.market.welfare import bid_surplus_wh_micro as surplus_wh_micro

DONE = 1 << 255  # FeeClearing.DONE: the page checked the last entry
KAPPA = Fraction(1, 2)


@pytest.fixture(scope="module")
def harness() -> Iterator[FeeClearingHarness]:
    key = derive_key(b"tests-fee-clearing", "operator")
    backend = EmbeddedBackend(funded=[address_of(key)])
    yield FeeClearingHarness.deploy(backend, key)


Duals = tuple[dict[int, int], dict[int, int], dict[int, int], dict[int, int]]


def _tie(sol: OptimalSolution) -> Duals:
    """The certificate the chain checks: welfare duals and tie-break duals."""
    return sol.buyer_dual, sol.seller_dual, sol.tie_buyer_dual, sol.tie_seller_dual


def _rejected(fn: object, *args: object) -> FeeClearingRejected:
    with pytest.raises(FeeClearingRejected) as info:
        fn(*args)  # type: ignore[operator]
    return info.value


def _greedy(
    h: FeeClearingHarness, bids: Sequence[Bid], fees: np.ndarray, trades: Sequence[Trade]
) -> int:
    h.set_fee_table(fees)
    return h.verify_greedy(bids, fees, trades)


def _greedy_error(
    h: FeeClearingHarness, bids: Sequence[Bid], fees: np.ndarray, trades: Sequence[Trade]
) -> tuple[str, tuple[object, ...]]:
    h.set_fee_table(fees)
    err = _rejected(h.verify_greedy, bids, fees, trades)
    return err.error, err.args_


def _optimal_error(
    h: FeeClearingHarness,
    bids: Sequence[Bid],
    fees: np.ndarray,
    trades: Sequence[Trade],
    u: dict[int, int],
    v: dict[int, int],
    tu: dict[int, int] | None = None,
    tv: dict[int, int] | None = None,
) -> tuple[str, tuple[object, ...]]:
    h.set_fee_table(fees)
    err = _rejected(h.verify_optimal, bids, fees, trades, u, v, tu, tv)
    return err.error, err.args_


# ------------------------------------------------------------- simple greedy
def _key(buyer: Bid, seller: Bid, fees: np.ndarray) -> tuple[int, int, int, int]:
    c = int(fees[seller.bus, buyer.bus])
    s = buyer.price_per_kwh_micro - seller.price_per_kwh_micro - c
    return (s, -c, -buyer.member, -seller.member)


def forced_greedy(
    bids: Sequence[Bid], fees: np.ndarray, force_step: int | None = None
) -> list[Trade]:
    """Plain O(n^2)-per-step greedy; at ``force_step`` take the second-best pair instead."""
    buys: dict[int, list[list[object]]] = {}
    sells: dict[int, list[list[object]]] = {}
    for b in sorted(bids, key=lambda b: (-b.price_per_kwh_micro, b.member)):
        if b.side == Side.BUY:
            buys.setdefault(b.bus, []).append([b, b.e_wh])
    for b in sorted(bids, key=lambda b: (b.price_per_kwh_micro, b.member)):
        if b.side == Side.SELL:
            sells.setdefault(b.bus, []).append([b, b.e_wh])
    trades: list[Trade] = []
    step = 0
    while True:
        pairs = []
        for q, bq in buys.items():
            for p, sq in sells.items():
                if bq and sq:
                    key = _key(bq[0][0], sq[0][0], fees)  # type: ignore[arg-type]
                    if key[0] > 0:
                        pairs.append((key, p, q))
        if not pairs:
            return trades
        pairs.sort(reverse=True)
        pick = 1 if step == force_step and len(pairs) > 1 else 0
        _, p, q = pairs[pick]
        bh, sh = buys[q][0], sells[p][0]
        e = min(int(bh[1]), int(sh[1]))  # type: ignore[call-overload]
        buyer, seller = bh[0], sh[0]
        assert isinstance(buyer, Bid) and isinstance(seller, Bid)
        trades.append(make_trade(buyer, seller, e, int(fees[p, q]), KAPPA))
        bh[1] = int(bh[1]) - e  # type: ignore[call-overload]
        sh[1] = int(sh[1]) - e  # type: ignore[call-overload]
        if bh[1] == 0:
            buys[q].pop(0)
        if sh[1] == 0:
            sells[p].pop(0)
        step += 1


# ------------------------------------------------------------- differential
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(market=tied_fee_markets())
def test_greedy_reference_accepted(harness: FeeClearingHarness, market: tuple) -> None:
    bids, fees = market
    result = clear_greedy(bids, fees, KAPPA)
    assert forced_greedy(bids, fees) == list(result.trades)  # the test's model is the reference
    assert _greedy(harness, bids, fees, result.trades) == surplus_wh_micro(result.trades, bids)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(market=tied_fee_markets(), data=st.data())
def test_greedy_tampered_rejected(
    harness: FeeClearingHarness, market: tuple, data: st.DataObject
) -> None:
    bids, fees = market
    trades = list(clear_greedy(bids, fees, KAPPA).trades)
    if not trades:
        return
    k = data.draw(st.integers(0, len(trades) - 1))
    t = trades[k]
    bumped_e = [*trades[:k], dataclasses.replace(t, e_wh=t.e_wh + 1), *trades[k + 1 :]]
    assert _greedy_error(harness, bids, fees, bumped_e) == (
        "WrongQuantity",
        (k, t.e_wh, t.e_wh + 1),
    )
    bumped_p = [
        *trades[:k],
        dataclasses.replace(t, buyer_price_per_kwh_micro=t.buyer_price_per_kwh_micro + 1),
        *trades[k + 1 :],
    ]
    assert _greedy_error(harness, bids, fees, bumped_p)[0] == "WrongPrice"
    assert _greedy_error(harness, bids, fees, trades[:-1])[0] == "SurplusLeft"
    worse = forced_greedy(bids, fees, force_step=k)
    if worse != trades:
        name, args = _greedy_error(harness, bids, fees, worse)
        assert name == "BetterPairExists"
        assert isinstance(args[0], int) and args[0] >= k


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(market=tied_fee_markets(), data=st.data())
def test_greedy_pages_verify_what_one_call_verifies(
    harness: FeeClearingHarness, market: tuple, data: st.DataObject
) -> None:
    """Paged verification (Market.clearGreedy in pages) over the entries: the trades, then
    the seller buses left active. Every page of the reference passes, only the last is DONE
    and its welfare is the whole's; a tampered trade in a page is rejected with the error
    the whole verification gives; a short list fails the final check in whatever page checks
    the seller concerned; a page past the end or ending before it starts is refused."""
    bids, fees = market
    trades = list(clear_greedy(bids, fees, KAPPA).trades)
    n, end = len(trades), greedy_entries(bids, trades)
    harness.set_fee_table(fees)
    cuts = sorted({0, end, *data.draw(st.lists(st.integers(0, end), max_size=4))})
    pages = list(itertools.pairwise(cuts)) or [(0, 0)]
    results = [harness.verify_greedy_page(bids, fees, trades, a, b) for a, b in pages]
    assert all(r < DONE for r in results[:-1]) and results[-1] >= DONE
    assert results[-1] - DONE == (surplus_wh_micro(trades, bids) if n else 0)
    if n:
        k = data.draw(st.integers(0, n - 1))
        t = trades[k]
        bumped = [*trades[:k], dataclasses.replace(t, e_wh=t.e_wh + 1), *trades[k + 1 :]]
        whole = _greedy_error(harness, bids, fees, bumped)
        paged = _rejected(harness.verify_greedy_page, bids, fees, bumped, k, end)
        assert (paged.error, paged.args_) == whole
        short = trades[:-1]
        short_end = greedy_entries(bids, short)
        left = _rejected(harness.verify_greedy_page, bids, fees, short, n - 1, short_end)
        assert left.error == "SurplusLeft"  # the final check of the sellers left
    late = _rejected(harness.verify_greedy_page, bids, fees, trades, end, end + 1)
    assert (late.error, late.args_) == ("FeeInputLength", (end, end + 1))
    if end:
        back = _rejected(harness.verify_greedy_page, bids, fees, trades, end, end - 1)
        assert (back.error, back.args_) == ("FeeInputLength", (end, end - 1))


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(market=tied_fee_markets())
def test_optimal_reference_certified(harness: FeeClearingHarness, market: tuple) -> None:
    bids, fees = market
    sol = solve_optimal(bids, fees, KAPPA)
    cert = certify(bids, fees, sol.trades, sol.buyer_dual, sol.seller_dual)
    assert cert.ok, cert.problems
    harness.set_fee_table(fees)
    welfare = harness.verify_optimal(bids, fees, sol.trades, *_tie(sol))
    assert welfare == sol.welfare_wh_micro == surplus_wh_micro(sol.trades, bids)
    # strong duality: the duals price the orders at exactly the welfare
    dual_value = sum(
        (sol.buyer_dual if b.side == Side.BUY else sol.seller_dual)[b.member] * b.e_wh for b in bids
    )
    assert dual_value == welfare
    # greedy is feasible but only certified when it happens to be optimal
    greedy = clear_greedy(bids, fees, KAPPA).trades
    greedy_welfare = surplus_wh_micro(greedy, bids)
    if greedy_welfare < welfare:
        err = _rejected(harness.verify_optimal, bids, fees, greedy, *_tie(sol))
        assert err.error != "NonCanonicalOptimum"  # a welfare-level failure


def _rejects(call: object) -> bool:
    try:
        call()  # type: ignore[operator]
    except FeeClearingRejected:
        return True
    return False


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(market=tied_fee_markets(), data=st.data())
def test_optimal_pages_verify_what_one_call_verifies(
    harness: FeeClearingHarness, market: tuple, data: st.DataObject
) -> None:
    """Paged verification (Market.clearOptimal in pages) over the entries: the trades, the
    bids, then one final check. Every page of the reference passes, only the final one is DONE and its
    welfare is the whole's; a tampered certificate or trade list that the whole verification
    rejects is rejected by some page of any partition, and one it accepts by none; a page
    past the end or an empty one is refused."""
    bids, fees = market
    sol = solve_optimal(bids, fees, KAPPA)
    trades, duals = list(sol.trades), _tie(sol)
    end = len(trades) + len(bids) + 1
    harness.set_fee_table(fees)

    def pages_of(tr: list[Trade], du: Duals, cuts: list[int]) -> list[int]:
        bounds = sorted({0, end, *cuts})
        return [
            harness.verify_optimal_page(bids, fees, tr, du, a, b)
            for a, b in itertools.pairwise(bounds)
        ]

    cuts = data.draw(st.lists(st.integers(1, end), max_size=4))
    results = pages_of(trades, duals, cuts)
    assert all(r < DONE for r in results[:-1]) and results[-1] >= DONE
    assert results[-1] - DONE == harness.verify_optimal(bids, fees, trades, *duals)
    # tampered: one welfare dual up, or one trade's energy up
    u = dict(duals[0])
    if u:
        member = data.draw(st.sampled_from(sorted(u)))
        u[member] += 1
        tampered: list[tuple[list[Trade], Duals]] = [(trades, (u, *duals[1:]))]
    else:
        tampered = []
    if trades:
        k = data.draw(st.integers(0, len(trades) - 1))
        t = trades[k]
        tampered.append(
            ([*trades[:k], dataclasses.replace(t, e_wh=t.e_wh + 1), *trades[k + 1 :]], duals)
        )
    for tr, du in tampered:
        whole = _rejects(lambda tr=tr, du=du: harness.verify_optimal(bids, fees, tr, *du))
        paged = _rejects(lambda tr=tr, du=du: pages_of(tr, du, cuts))
        assert paged == whole
    late = _rejected(harness.verify_optimal_page, bids, fees, trades, duals, end, end + 1)
    assert (late.error, late.args_) == ("FeeInputLength", (end, end + 1))
    empty = _rejected(harness.verify_optimal_page, bids, fees, trades, duals, 1, 1)
    assert (empty.error, empty.args_) == ("FeeInputLength", (end, 1))


@pytest.mark.slow  # fast lane budget: 30 tampered optimal verdicts on chain (about 8 s)
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(market=tied_fee_markets(), data=st.data())
def test_optimal_tampered_rejected(
    harness: FeeClearingHarness, market: tuple, data: st.DataObject
) -> None:
    bids, fees = market
    sol = solve_optimal(bids, fees, KAPPA)
    trades, u, v = list(sol.trades), dict(sol.buyer_dual), dict(sol.seller_dual)
    tu, tv = dict(sol.tie_buyer_dual), dict(sol.tie_seller_dual)
    by_member = {b.member: b for b in bids}
    if trades:
        k = data.draw(st.integers(0, len(trades) - 1))
        t = trades[k]
        bumped = [*trades[:k], dataclasses.replace(t, e_wh=t.e_wh + 1), *trades[k + 1 :]]
        name, _ = _optimal_error(harness, bids, fees, bumped, u, v, tu, tv)
        assert name == "Overfilled"
        priced = [
            *trades[:k],
            dataclasses.replace(t, seller_price_per_kwh_micro=t.seller_price_per_kwh_micro + 1),
            *trades[k + 1 :],
        ]
        assert _optimal_error(harness, bids, fees, priced, u, v, tu, tv)[0] == "WrongPrice"
        first = next(j for j, x in enumerate(trades) if x.buyer == t.buyer)
        u2 = {**u, t.buyer: u[t.buyer] + 1}
        assert _optimal_error(harness, bids, fees, trades, u2, v, tu, tv) == (
            "SlacknessViolated",
            (first,),
        )
        # off by one in the tie-break dual: welfare-optimal, but the tie is not certified
        tu2 = {**tu, t.buyer: tu[t.buyer] + 1}
        name, args = _optimal_error(harness, bids, fees, trades, u, v, tu2, tv)
        assert name == "NonCanonicalOptimum" and args[0] in {0, 1}
        # move the trade to a worse seller: the certificate breaks
        worse = [
            s
            for s in bids
            if s.side == Side.SELL
            and s.member != t.seller
            and _key(by_member[t.buyer], s, fees)[0]
            < _key(by_member[t.buyer], by_member[t.seller], fees)[0]
        ]
        if worse:
            s = worse[0]
            moved = make_trade(by_member[t.buyer], s, t.e_wh, int(fees[s.bus, t.buyer_bus]), KAPPA)
            name, _ = _optimal_error(
                harness, bids, fees, [*trades[:k], moved, *trades[k + 1 :]], u, v, tu, tv
            )
            assert name in {"SlacknessViolated", "Overfilled", "SlackOrderHasDual"}
    if sol.trades:
        zero_u = dict.fromkeys(u, 0)
        zero_v = dict.fromkeys(v, 0)
        assert _optimal_error(harness, bids, fees, [], zero_u, zero_v, tu, tv)[0] == (
            "DualInfeasible"
        )
    traded = {t.buyer for t in trades} | {t.seller for t in trades}
    idle = [b for b in bids if b.member not in traded]
    if idle:
        b = idle[0]
        if b.side == Side.BUY:
            u3, v3, tu3, tv3 = {**u, b.member: u[b.member] + 1}, v, {**tu, b.member: 1}, tv
        else:
            u3, v3, tu3, tv3 = u, {**v, b.member: v[b.member] + 1}, tu, {**tv, b.member: 1}
        assert _optimal_error(harness, bids, fees, trades, u3, v3, tu, tv) == (
            "SlackOrderHasDual",
            (bids.index(b),),
        )
        name, args = _optimal_error(harness, bids, fees, trades, u, v, tu3, tv3)
        assert name == "NonCanonicalOptimum" and args[0] in {1, 2}


def test_large_markets_33_buses(harness: FeeClearingHarness) -> None:
    for seed, n in ((1, 32), (2, 64), (3, 128)):
        bids, fees = random_fee_market(seed, n)
        harness.set_fee_table(fees)
        greedy = clear_greedy(bids, fees, KAPPA).trades
        assert harness.verify_greedy(bids, fees, greedy) == surplus_wh_micro(greedy, bids)
        sol = solve_optimal(bids, fees, KAPPA)
        got = harness.verify_optimal(bids, fees, sol.trades, *_tie(sol))
        assert got == sol.welfare_wh_micro


# --------------------------------------------------------------- hand cases
def _hand(seller_far_ask: int) -> tuple[list[Bid], np.ndarray]:
    """Buyer at bus 0 bids 100; seller 1 at bus 0 (fee 0) asks 90; seller 2 at bus 2 (fee 5)."""
    fees = np.array([[0, 2, 5], [2, 0, 3], [5, 3, 0]], dtype=np.int64)
    bids = [
        Bid(10, Side.BUY, 100, 100, 0),
        Bid(11, Side.SELL, 100, 90, 0),
        Bid(12, Side.SELL, 100, seller_far_ask, 2),
    ]
    return bids, fees


@pytest.mark.parametrize(
    ("far_ask", "winner"),
    [(85, 11), (87, 11), (84, 12)],
    ids=["tie-nearby-wins", "fee-gap-exceeds-price-gap", "price-gap-exceeds-fee-gap"],
)
def test_nearby_wins_ties_and_when_fee_gap_exceeds_price_gap(
    harness: FeeClearingHarness, far_ask: int, winner: int
) -> None:
    bids, fees = _hand(far_ask)
    trades = clear_greedy(bids, fees, KAPPA).trades
    assert [t.seller for t in trades] == [winner]
    assert _greedy(harness, bids, fees, trades) == surplus_wh_micro(trades, bids)
    loser = next(b for b in bids if b.side == Side.SELL and b.member != winner)
    wrong = [make_trade(bids[0], loser, 100, int(fees[loser.bus, 0]), KAPPA)]
    loser_bus = loser.bus
    winner_bus = next(b.bus for b in bids if b.member == winner)
    assert _greedy_error(harness, bids, fees, wrong) == ("BetterPairExists", (0, winner_bus, 0))
    assert loser_bus != winner_bus
    sol = solve_optimal(bids, fees, KAPPA)
    assert [t.seller for t in sol.trades] == [winner]
    assert harness.verify_optimal(bids, fees, sol.trades, *_tie(sol)) > 0
    name, _ = _optimal_error(harness, bids, fees, wrong, *_tie(sol))
    if far_ask == 85:  # a tie: the far trade has the same welfare but is not canonical
        assert name == "NonCanonicalOptimum"
        assert surplus_wh_micro(wrong, bids) == sol.welfare_wh_micro
    else:
        assert name == "SlacknessViolated"


def test_every_bid_must_lie_within_its_bus_bound(harness: FeeClearingHarness) -> None:
    """The certificate's bounds per bus (the last 4 B words of the duals) must hold every bid:
    a buyer above its bus's claimed max of b - u, a seller below its bus's claimed min of
    a + v, or a bus with sellers claimed empty is BoundNotClaimed; the exact bounds pass."""
    fees = np.array([[0, 0], [0, 8]], dtype=np.int64)
    bids = [
        Bid(1, Side.BUY, 10, 100, 0),
        Bid(2, Side.BUY, 10, 99, 1),
        Bid(3, Side.SELL, 10, 90, 0),
        Bid(4, Side.SELL, 10, 91, 1),
    ]
    harness.set_fee_table(fees)
    sol = solve_optimal(bids, fees, KAPPA)
    table, words, trades, parties, duals = optimal_args(bids, fees, sol.trades, *_tie(sol))
    claims, nb = 2 * len(bids), len(fees)

    def verify(change: int, delta: int) -> str | None:
        changed = list(duals)
        changed[claims + change] = (changed[claims + change] + delta) % 2**256
        try:
            harness.call("verifyOptimal", table, words, trades, parties, changed)
        except FeeClearingRejected as error:
            return error.error
        return None

    assert verify(0, 0) is None
    assert verify(0, -1) == "BoundNotClaimed"  # bus 0's buyers: max below bid A's b - u
    assert verify(nb, -1) == "BoundNotClaimed"  # its tie-break term below A's
    assert verify(2 * nb + 1, 1) == "BoundNotClaimed"  # bus 1's sellers: min above Y's a + v
    assert verify(2 * nb + 1, -duals[claims + 2 * nb + 1]) == "BoundNotClaimed"  # none claimed


def test_greedy_not_optimal_case(harness: FeeClearingHarness) -> None:
    """Greedy takes the best pair first and loses welfare: each result verifies only as itself.

    Surplus (buyer x seller): A-X 10, A-Y 9, B-X 9, B-Y 0. Greedy trades A-X (10), the LP
    trades A-Y and B-X (18).
    """
    fees = np.array([[0, 0], [0, 8]], dtype=np.int64)  # fees[seller_bus, buyer_bus]
    bids = [
        Bid(1, Side.BUY, 10, 100, 0),  # A
        Bid(2, Side.BUY, 10, 99, 1),  # B
        Bid(3, Side.SELL, 10, 90, 0),  # X
        Bid(4, Side.SELL, 10, 91, 1),  # Y
    ]
    greedy = clear_greedy(bids, fees, KAPPA).trades
    sol = solve_optimal(bids, fees, KAPPA)
    assert surplus_wh_micro(greedy, bids) == 100 < sol.welfare_wh_micro == 180
    assert _greedy(harness, bids, fees, greedy) == 100
    assert harness.verify_optimal(bids, fees, sol.trades, *_tie(sol)) == 180
    # u_A + v_X = 10 holds with the LP duals, but buyer B (u_B > 0) is left untraded
    name, _ = _optimal_error(harness, bids, fees, greedy, *_tie(sol))
    assert name == "SlackOrderHasDual"
    name, _ = _greedy_error(harness, bids, fees, sol.trades)
    assert name == "BetterPairExists"


# ------------------------------------------------------------- input checks
def test_fee_table_hash_and_order_checks(harness: FeeClearingHarness) -> None:
    bids, fees = random_fee_market(7, 16, n_buses=5)
    harness.set_fee_table(fees)
    trades = clear_greedy(bids, fees, KAPPA).trades
    other = fees.copy()
    other[0, 1] += 1
    err = _rejected(harness.verify_greedy, bids, other, trades)
    assert err.error == "FeeTableMismatch"
    table, words, order, n_buys, trade_words = greedy_args(bids, fees, trades)
    swapped = [order[1], order[0], *order[2:]]
    with pytest.raises(FeeClearingRejected) as info:
        harness.call("verifyGreedy", table, words, swapped, n_buys, trade_words)
    assert info.value.error in {"BadQueueOrder"}
    far = [*bids[:-1], dataclasses.replace(bids[-1], bus=9)]
    err = _rejected(harness.verify_greedy, far, fees, [])
    assert err.error == "BusOutOfRange"


def test_kappa_split(harness: FeeClearingHarness) -> None:
    bids, fees = random_fee_market(11, 40, n_buses=8)
    harness.set_fee_table(fees)
    try:
        for kappa in (Fraction(1, 3), Fraction(0), Fraction(1)):
            harness.set_kappa(kappa)
            trades = clear_greedy(bids, fees, kappa).trades
            assert harness.verify_greedy(bids, fees, trades) == surplus_wh_micro(trades, bids)
            sol = solve_optimal(bids, fees, kappa)
            assert (
                harness.verify_optimal(bids, fees, sol.trades, *_tie(sol)) == sol.welfare_wh_micro
            )
            if trades and kappa == Fraction(1, 3):
                half = clear_greedy(bids, fees, KAPPA).trades
                if half != trades:
                    assert _rejected(harness.verify_greedy, bids, fees, half).error == "WrongPrice"
    finally:
        harness.set_kappa(KAPPA)


def test_packing_helpers() -> None:
    fees = np.array([[0, 7], [7, 0x01020304]], dtype=np.int64)
    assert pack_fee_table(fees) == bytes.fromhex("00000000000000070000000701020304")
    bids = [Bid(3, Side.SELL, 5, 10, 1), Bid(1, Side.BUY, 5, 20, 1), Bid(2, Side.BUY, 5, 30, 0)]
    assert greedy_order(bids) == ([2, 1, 0], 2)
    assert pack_trades([]) == [] and pack_bid(bids[0]) > 0
