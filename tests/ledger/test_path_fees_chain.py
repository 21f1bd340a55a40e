"""Fees in path form on chain (contracts/PathFees.sol, ledger/path_data.py).

The verifier validates committed path-form data once (``dataBytes``, called by
``configureClearing``) and refuses damaged data by name, as the audit's reader does; it
computes every fee as market/path_fees.py does, from the committed rows as they are; the
greedy and optimal verifiers accept the reference's results on fees in path form and reject
a tampered result with the same named error as on the same fees as a table. A market on a
5,000-bus feeder with two loops clears, settles and audits like the reference.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
from benchmarks.datachain import DataChain
from benchmarks.fee_harness import FeeClearingHarness, FeeClearingRejected, fee_table_hash
from benchmarks.markets import random_radial_tree
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ledgerkit import TARIFFS, Market, deploy_market, make_market
from tests.market.test_path_fees import feeders

from gridledger.errors import ChainError
from gridledger.ledger.audit import audit
from gridledger.ledger.backends import EmbeddedBackend
from gridledger.ledger.chainapi import CallReverted
from gridledger.ledger.encoding import address_of, derive_key
from gridledger.ledger.fee_clearing import pack_fee_table
from gridledger.ledger.path_data import (
    PATH_MAGIC,
    is_path_form,
    pack_path_fees,
    sparse_consistent,
    unpack_path_fees,
)
from gridledger.ledger.reference import unpack_fee_table
from gridledger.market import Bid, Side
from gridledger.market.greedy import clear_greedy, make_trade
from gridledger.market.optimal import solve_optimal
from gridledger.market.path_fees import PathFees, table_from_layout
from gridledger.market.settlement import settle

KAPPA = Fraction(1, 2)


@pytest.fixture(scope="module")
def chain() -> DataChain:
    return DataChain(b"tests-path-fees", "FeeClearingVerifier")


@pytest.fixture(scope="module")
def harness() -> Iterator[FeeClearingHarness]:
    key = derive_key(b"tests-path-fees", "operator")
    yield FeeClearingHarness.deploy(EmbeddedBackend(funded=[address_of(key)]), key)


def data_bytes(chain: DataChain, packed: bytes) -> int | tuple[str, tuple[Any, ...]]:
    """``dataBytes`` of ``packed`` committed on chain, or the named error it reverts with."""
    address, _, _ = chain.commit(packed)
    payload = chain.abi.encode_call("dataBytes", address)
    try:
        out = chain.backend.call(chain.sender, chain.verifier, payload)
    except CallReverted as error:
        found = chain.abi.decode_error(error.data)
        assert found is not None
        return found[0], tuple(found[1])
    return int(chain.abi.decode_output("dataBytes", out)[0])


def feeder(n_buses: int, loops: int, seed: int) -> PathFees:
    """A long feeder-like tree (a 40-bus trunk, laterals) with ``loops`` extra branches."""
    rng = random.Random(seed)
    tree = random_radial_tree(rng, n_buses, 0, trunk=40, reach=30)
    ends = [(int(p), b) for b, p in enumerate(tree.parent[1:].tolist(), start=1)]
    ends += [tuple(rng.sample(range(n_buses), 2)) for _ in range(loops)]  # type: ignore[misc]
    fees = [rng.randrange(50, 3_000) for _ in ends]
    return PathFees(
        n_buses,
        np.array([u for u, _ in ends]),
        np.array([v for _, v in ends]),
        np.array(fees),
    )


def random_bids(rng: random.Random, n: int, buses: int) -> list[Bid]:
    return [
        Bid(m, Side.BUY if m % 2 else Side.SELL, rng.randrange(100, 3_000),
            rng.randrange(5, 30) * 10_000, rng.randrange(buses))
        for m in range(n)
    ]  # fmt: skip


# ------------------------------------------------------------------ layout
def test_path_form_round_trips_and_is_told_apart_from_a_table() -> None:
    fees = feeder(300, 2, 1)
    packed = pack_fee_table(fees)
    assert is_path_form(packed) and packed[:32] == PATH_MAGIC
    assert np.array_equal(unpack_fee_table(packed, 300), fees.table)
    assert len(packed) < 4 * 300 * 300 // 10  # a tenth of the table's bytes
    assert not is_path_form(pack_fee_table(fees.table[:8, :8]))
    with pytest.raises(ChainError, match="cover 300 buses, expected 299"):
        unpack_fee_table(packed, 299)
    spelled = np.frombuffer(PATH_MAGIC, dtype=">u4").astype(np.int64)
    table = np.zeros((4, 4), dtype=np.int64)
    table.ravel()[:8] = spelled
    with pytest.raises(ChainError, match="read as path-form data"):
        pack_fee_table(table)


def damaged(packed: bytes, offset: int, value: int) -> bytes:
    """``packed`` with the uint32 at byte ``offset`` set to ``value``."""
    return packed[:offset] + value.to_bytes(4, "big") + packed[offset + 4 :]


def test_the_verifier_and_the_reader_refuse_the_same_damage_by_name(chain: DataChain) -> None:
    fees = feeder(40, 1, 2)
    packed = pack_path_fees(fees)
    e = 2 * 40 - 1
    k = e.bit_length()
    assert data_bytes(chain, packed) == 4 * 40 * 40  # the table it stands for
    first, table = 64, 64 + 4 * 40
    portals = table + 4 * k * e
    cases = {
        "length": (packed + bytes(4), (0, len(packed) + 4)),
        "levels field": (packed[:40] + bytes([k + 1]) + packed[41:], (0, len(packed))),
        "first outside the tour": (damaged(packed, first + 4 * 7, e), (1, 7)),
        "a level of 2**30": (damaged(packed, table + 4 * 3, 1 << 30), (2, 3)),
        "a portal fee of 2**30": (damaged(packed, portals + 4 * 5, 1 << 30), (3, 5)),
    }
    for name, (data, args) in cases.items():
        assert data_bytes(chain, data) == ("BadPathFees", args), name
        with pytest.raises(ChainError, match="path fees"):
            unpack_path_fees(data)


def test_rows_that_are_not_range_minima_give_the_same_fees_on_chain_and_off(
    harness: FeeClearingHarness,
) -> None:
    """Accepted (they cannot take a read outside the data or a fee past 2**32), computed
    alike by the chain and the reference, reported by the audit's reader."""
    fees = feeder(25, 1, 3)
    packed = bytearray(pack_path_fees(fees))
    rng = random.Random(5)
    e = 2 * 25 - 1
    rows = 64 + 4 * 25 + 4 * e  # row 1 onwards
    for _ in range(40):
        at = rows + 4 * rng.randrange((e.bit_length() - 1) * e)
        packed[at : at + 4] = rng.randrange(4_000).to_bytes(4, "big")
    layout = unpack_path_fees(bytes(packed))
    assert not sparse_consistent(layout)
    table = table_from_layout(layout)
    harness.transact("setFeeTable", 25, fee_table_hash(bytes(packed)), gas=100_000)
    for p in range(25):
        for q in range(0, 25, 4):
            assert harness.call("feeOf", bytes(packed), p, q)[0] == table[p, q]
    harness.transact("setFeeTable", 24, fee_table_hash(bytes(packed)), gas=100_000)
    with pytest.raises(FeeClearingRejected) as info:
        harness.call("feeOf", bytes(packed), 0, 1)
    assert info.value.error == "FeeTableLength"  # data for 25 buses, 24 recorded


# ------------------------------------------------------------------ verifiers
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fees=feeders(max_buses=36), seed=st.integers(0, 10**6))
def test_greedy_and_optimal_accept_the_reference_on_path_fees(
    harness: FeeClearingHarness, fees: PathFees, seed: int
) -> None:
    harness.set_kappa(KAPPA)
    bids = random_bids(random.Random(seed), 40, fees.n_buses)
    result = clear_greedy(bids, fees.table, KAPPA)
    harness.set_fee_table(fees)
    price = {b.member: b.price_per_kwh_micro for b in bids}
    welfare = sum(
        (price[t.buyer] - price[t.seller] - int(fees.table[t.seller_bus, t.buyer_bus])) * t.e_wh
        for t in result.trades
    )
    assert harness.verify_greedy(bids, fees, result.trades) == welfare
    sol = solve_optimal(bids, fees.table, KAPPA)
    duals = (sol.buyer_dual, sol.seller_dual, sol.tie_buyer_dual, sol.tie_seller_dual)
    assert harness.verify_optimal(bids, fees, sol.trades, *duals) == sol.welfare_wh_micro


def test_a_tampered_greedy_result_is_rejected_alike_in_either_form(
    harness: FeeClearingHarness,
) -> None:
    harness.set_kappa(KAPPA)
    fees = feeder(60, 2, 4)
    bids = random_bids(random.Random(6), 80, 60)
    trades = list(clear_greedy(bids, fees.table, KAPPA).trades)
    assert len(trades) > 3
    by_id = {b.member: b for b in bids}
    last = trades[-1]
    extra = make_trade(by_id[last.buyer], by_id[last.seller], 1, int(fees.table[0, 0]), KAPPA)
    tampered = {
        "a trade dropped": trades[:1] + trades[2:],
        "two swapped": [trades[1], trades[0], *trades[2:]],
        "the last missing": trades[:-1],
        "one more": [*trades, extra],
    }
    for name, result in tampered.items():
        errors = []
        for form in (fees.table, fees):
            harness.set_fee_table(form)
            with pytest.raises(FeeClearingRejected) as info:
                harness.verify_greedy(bids, form, result)
            errors.append((info.value.error, info.value.args))
        assert errors[0] == errors[1], name


# ------------------------------------------------------------------ a market
@pytest.fixture(scope="module")
def big_market() -> Iterator[tuple[Market, PathFees]]:
    fees = feeder(5_000, 2, 7)
    market = make_market(120, 1, clearing="greedy", fees=fees, bus=lambda m: 1 + m * 2027 % 4999)
    yield market, fees


@pytest.mark.slow  # about 10 s: 27 data shards and a clearing of 17M gas on the embedded chain
def test_a_market_on_a_5000_bus_feeder_with_loops_matches_the_reference(
    big_market: tuple[Market, PathFees],
) -> None:
    market, fees = big_market
    ledger = market.ledger
    events = {e.name: e for e in ledger.events()}
    committed = bytes(events["ClearingConfigured"].args["feeTable"])
    assert len(ledger._deployed().shards) >= 25  # the path form, 660,008 bytes, in shards
    assert events["ClearingConfigured"].args["nBuses"] == 5_000 and len(committed) > 64
    rng = random.Random(1)
    interval = market.take_interval()
    bids = [
        Bid(m, Side.BUY if m % 2 else Side.SELL, rng.randrange(100, 3_000),
            rng.randrange(5, 30) * 10_000, 1 + m * 2027 % 4999)
        for m in range(120)
    ]  # fmt: skip
    ledger.record_round(interval, 0, bids)
    reference = clear_greedy(bids, fees.table, KAPPA)
    assert ledger.clear(interval) == reference and len(reference.trades) > 10
    ledger.record_security(interval, [])
    readings = {m: rng.randrange(-3_000, 3_000) for m in range(120)}
    ledger.record_readings(interval, readings)
    assert ledger.settle(interval) == settle(reference.trades, readings, TARIFFS).deltas()
    ledger.end_interval(interval)
    report = audit(ledger)
    assert report.problems == [] and report.findings == [] and report.settled == [0]


def test_the_market_refuses_damaged_path_fees_when_configured() -> None:
    market = make_market(4, 1, clearing="greedy", fees=feeder(30, 1, 8), bus=lambda m: m + 1)
    error, address = deploy_market(market)
    assert error is None
    packed = pack_path_fees(feeder(30, 1, 8))
    abi = market.ledger.market_abi

    def configure(n_buses: int, data: bytes) -> str | None:
        return market.send_raw(
            address, abi.encode_call("configureClearing", n_buses, 1, 2, data), gas=8_000_000
        )

    assert configure(30, damaged(packed, 64, 10**6)) == "BadPathFees"
    assert configure(29, packed) == "FeeTableLength"
    assert configure(30, packed) is None


def test_no_fee_on_a_feeder_past_the_table_limit_is_committed_as_a_zero_path_form() -> None:
    market = make_market(4, 1, clearing="greedy", fees=None, bus=lambda m: 700 + m)
    d = market.ledger._deployed()
    assert d.clearing.packed is not None and is_path_form(d.clearing.packed)
    assert d.clearing.fees is not None and d.clearing.fees.shape == (704, 704)
    assert not d.clearing.fees.any()
