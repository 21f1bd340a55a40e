"""Committed data over one data contract: shards and their directory.

contracts/DataShards.sol (in both verifiers) and ``ledger/shards.resolve`` (the audit) read a
directory alike and refuse the same damage by name: a shard whose code is not the one the
directory lists (changed or never deployed), chunks that do not add up to the stated total,
a malformed directory. A radial network of 2,000 buses (5,000 in the slow lane) and a meshed
one of 60 buses, too large for one contract, are checked on chain from their shards; a
market with a 90-bus fee table and a sharded network clears, settles and audits like the
reference, and the Market refuses a directory whose shards do not hold the table. In the slow
lane (simbench extra), the shipped simbench_mv scenario checks lp curtailments against its
meshed 95-bus network in three shards.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from benchmarks.markets import random_radial_tree
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ledgerkit import (
    N_MEMBERS,
    TARIFFS,
    Market,
    bids_of,
    deploy_market,
    make_market,
    needs_simbench,
    run_cli,
)
from test_security_verifier import Rejected, Verifier, agree, lp_verdict_agrees, verdict_on

from gridledger.ledger import Ledger, LedgerMember
from gridledger.ledger.audit import audit
from gridledger.ledger.capacity import ChainCapacityExceeded, load_gas, max_members
from gridledger.ledger.deploy import NetworkCommitment
from gridledger.ledger.fee_clearing import pack_fee_table
from gridledger.ledger.network_data import MAX_NETWORK_BYTES, pack_network
from gridledger.ledger.saved import deployment_from_saved, saved_from_deployment
from gridledger.ledger.shards import (
    MAGIC,
    MAX_SHARD_BYTES,
    ShardError,
    code_hash,
    directory,
    init_code,
    is_directory,
    resolve,
    split,
)
from gridledger.market import Side
from gridledger.market.greedy import clear_greedy
from gridledger.market.justification import (
    RULE_IDS,
    LinearNetwork,
    linear_network_from_tree,
)
from gridledger.market.orders import apply_curtailments
from gridledger.market.settlement import settle
from gridledger.security.justification import justify


@pytest.fixture(scope="module")
def verifier() -> Iterator[Verifier]:
    yield Verifier.deploy(b"tests-data-shards")


# ------------------------------------------------------------------- layout
def test_split_directory_and_resolve_round_trip() -> None:
    data = bytes(range(256)) * 300  # 76,800 bytes
    chunks = split(data)
    assert [len(c) for c in chunks] == [MAX_SHARD_BYTES] * 3 + [76_800 - 3 * MAX_SHARD_BYTES]
    at = [bytes([k + 1]) * 20 for k in range(4)]
    listed = directory(chunks, at)
    assert len(listed) == 64 + 4 * 64 and listed[:32] == MAGIC and is_directory(listed)
    codes = {a: b"\x00" + c for a, c in zip(at, chunks, strict=True)}
    assert resolve(listed, lambda a: codes.get(a, b"")) == data
    assert resolve(b"\x01\x09abc", lambda a: b"") == b"\x01\x09abc"  # not a directory
    assert split(b"small") == [b"small"]


def _on_chain(verifier: Verifier, listed: bytes) -> tuple[str, tuple[Any, ...]]:
    """The verifier's refusal of the directory ``listed`` (deployed as a data contract)."""
    with pytest.raises(Rejected) as caught:
        verifier.call(verifier._create(init_code(listed), 3_000_000), 0, [], [], [], [])
    return caught.value.error, caught.value.args_


def test_damaged_directories_are_refused_alike_on_chain_and_by_the_audit(
    verifier: Verifier,
) -> None:
    net = linear_network_from_tree(
        random_radial_tree(random.Random(3), 1_900, 1_899), 1_899, 0, 900
    )
    raw = pack_network(net)
    chunks = split(raw)
    assert len(chunks) == 2
    at = [verifier._create(init_code(c), 6_000_000) for c in chunks]
    codes = {a: verifier.backend.code(a) for a in at}

    def code_at(address: bytes) -> bytes:
        return codes.get(address, verifier.backend.code(address))

    good = directory(chunks, at)
    assert resolve(good, code_at) == raw
    assert verifier.call(verifier._create(init_code(good), 3_000_000), 0, [], [], [], []) == 0

    other = bytearray(chunks[1])
    other[-1] ^= 1  # a shard with one byte changed, listed under the original's hash
    changed = verifier._create(init_code(bytes(other)), 6_000_000)
    swapped = good[:128] + bytes(12) + changed + good[160:]
    name, args = _on_chain(verifier, swapped)
    assert (name, args[0], args[1]) == ("ShardCodeHash", 1, code_hash(chunks[1]))
    assert args[2] == code_hash(bytes(other))
    with pytest.raises(ShardError, match="shard 1 at"):
        resolve(swapped, code_at)

    nowhere = bytes(range(20))  # no code there
    missing = good[:76] + nowhere + good[96:]
    assert _on_chain(verifier, missing) == ("ShardCodeHash", (0, code_hash(chunks[0]), bytes(32)))
    with pytest.raises(ShardError, match="shard 0 at"):
        resolve(missing, code_at)

    total = len(raw) - 1
    short = MAGIC + total.to_bytes(32, "big") + good[64:]
    assert _on_chain(verifier, short) == ("ShardsLength", (total, len(raw)))
    with pytest.raises(ShardError, match="the directory says"):
        resolve(short, code_at)

    for bad in (
        good[:-1] + b"",  # not 64 + 64 k bytes
        MAGIC + bytes(32),  # no shard
        good[:64] + b"\x01" + good[65:],  # an address word with high bits set
        MAGIC + (2 * MAX_SHARD_BYTES + 1).to_bytes(32, "big") + good[64:],  # more than 2 hold
    ):
        name, args = _on_chain(verifier, bad)
        assert (name, args) == ("BadShardDirectory", (len(bad),))
        with pytest.raises(ShardError):
            resolve(bad, code_at)


# ----------------------------------------------------------- networks in shards
def test_a_2000_bus_radial_feeder_is_checked_from_its_shards(verifier: Verifier) -> None:
    n = 2_000
    net = linear_network_from_tree(random_radial_tree(random.Random(4), n, n - 1), n - 1, 0, 900)
    raw = pack_network(net)
    assert raw[0] == 2 and len(split(raw)) == 2
    lp_verdict_agrees(verifier, net, raw)


@pytest.mark.slow  # 5 s and 1.3 GB to expand the 5,000-bus reference matrix
def test_a_5000_bus_radial_feeder_is_checked_from_its_shards(verifier: Verifier) -> None:
    n = 5_000
    net = linear_network_from_tree(random_radial_tree(random.Random(5), n, n - 1), n - 1, 0, 900)
    raw = pack_network(net)
    assert raw[0] == 2 and len(raw) == 16 + 8 * n + 6 * (n - 1) and len(split(raw)) == 3
    lp_verdict_agrees(verifier, net, raw)


def _meshed(n_buses: int, seed: int) -> LinearNetwork:
    """A dense network of ``n_buses`` (no tree form: committed as version 1, in shards)."""
    tree = random_radial_tree(random.Random(seed), n_buses, n_buses + 3)
    radial = linear_network_from_tree(tree, n_buses + 3, 0, 900)
    return LinearNetwork(n_buses, n_buses - 1, n_buses + 3, 0, 900, radial.relief)


@st.composite
def meshed_verdicts(draw: Any) -> tuple[Any, ...]:
    return verdict_on(draw, _meshed(draw(st.sampled_from([60, 64])), draw(st.integers(0, 99))))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=meshed_verdicts())
def test_dense_networks_over_one_contract_agree_with_the_reference(
    verifier: Verifier, case: tuple[Any, ...]
) -> None:
    raw = pack_network(case[0])
    assert raw[0] == 1 and len(raw) > MAX_NETWORK_BYTES
    agree(verifier, raw, case)


# ------------------------------------------------------------ a market in shards
N_FEE_BUSES = 90  # 32,400 bytes of fee table: two shards
BIG_FEES = (np.random.default_rng(8).integers(0, 7, (N_FEE_BUSES,) * 2) * 5_000).astype(np.int64)
BIG_NET = _meshed(60, 7)


@pytest.fixture(scope="module")
def sharded_market() -> Iterator[Market]:
    commitment = NetworkCommitment(RULE_IDS["greedy"], pack_network(BIG_NET))
    yield make_market(clearing="greedy", fees=BIG_FEES, kappa=Fraction(1, 3), network=commitment)


def test_a_market_with_sharded_fee_table_and_network_matches_the_reference(
    sharded_market: Market,
) -> None:
    ledger = sharded_market.ledger
    events = {e.name: e for e in ledger.events()}
    fee_dir = bytes(events["ClearingConfigured"].args["feeTable"])
    net_dir = bytes(events["NetworkConfigured"].args["table"])
    assert is_directory(fee_dir) and is_directory(net_dir)
    assert resolve(fee_dir, ledger.backend.code) == pack_fee_table(BIG_FEES)
    assert resolve(net_dir, ledger.backend.code) == pack_network(BIG_NET)
    d = ledger._deployed()  # 2 shards of fee table, 2 of network, kept in ledger.json
    keys = (ledger.keys.record(), ledger.operator)
    saved = saved_from_deployment("embedded", ledger.backend.chain_id, keys, d, {})
    assert len(d.shards) == 4 and deployment_from_saved(saved).shards == d.shards
    rng = random.Random(1)
    cut_wh = 0
    for _ in range(2):
        interval = sharded_market.take_interval()
        rows = [
            (
                m,
                Side.BUY if m % 2 else Side.SELL,
                rng.choice([100, 700, 2_000]),
                rng.randrange(5, 30) * 10_000,
            )
            for m in range(N_MEMBERS)
        ]
        for k in range(ledger._deployed().rounds):
            ledger.record_round(interval, k, bids_of(rows))
        reference = clear_greedy(bids_of(rows), BIG_FEES, Fraction(1, 3))
        assert ledger.clear(interval) == reference
        margin = np.full(BIG_NET.n_rows, 10**6, dtype=np.int64)
        margin[BIG_NET.n_bus_rows - 1] = -50_000  # the farthest bus row is violated
        j = justify("greedy", BIG_NET, list(reference.trades), margin, np.zeros_like(margin))
        ledger.record_security(interval, j.curtailments, j.margins, j.certificate)
        cut_wh += j.curtailed_wh
        readings = {m: rng.randrange(-3_000, 3_000) for m in range(N_MEMBERS)}
        ledger.record_readings(interval, readings)
        delivered = apply_curtailments(reference.trades, j.curtailments)
        assert ledger.settle(interval) == settle(delivered, readings, TARIFFS).deltas()
        ledger.end_interval(interval)
    assert cut_wh > 0  # curtailments were checked against the sharded network
    report = audit(ledger)
    assert report.problems == [] and report.findings == [] and report.settled == [0, 1]


def test_the_market_refuses_a_directory_that_does_not_hold_its_table(
    sharded_market: Market,
) -> None:
    """configureClearing on a second Market of the same chain, where the shards exist."""
    error, address = deploy_market(sharded_market)
    assert error is None
    chunks = split(pack_fee_table(BIG_FEES))
    at = list(sharded_market.ledger._deployed().shards[:2])  # the fee table's shards
    abi = sharded_market.ledger.market_abi

    def configure(n_buses: int, listed: bytes) -> str | None:
        data = abi.encode_call("configureClearing", n_buses, 1, 3, listed)
        return sharded_market.send_raw(address, data, gas=8_000_000)

    assert configure(N_FEE_BUSES, directory(chunks, at[::-1])) == "ShardCodeHash"
    assert configure(N_FEE_BUSES - 1, directory(chunks, at)) == "FeeTableLength"
    assert configure(N_FEE_BUSES, directory(chunks, at)) is None


@pytest.mark.slow  # about 25 s: loads SimBench, 98 members on the embedded chain
@needs_simbench
def test_simbench_mv_checks_curtailments_against_its_meshed_network_in_shards(
    tmp_path: Path,
) -> None:
    """simbench_mv (95 buses, meshed) with far too much PV and the lp congestion rule: its fee
    table (2 shards) and its dense network (3 shards) are committed, the curtailments are
    checked on chain, the run matches the reference and the audit is clean."""
    out = tmp_path / "run"
    sets = {
        "security.congestion": '"lp"',
        "members.pv_share": "0.9",
        "members.household_pv_kwp": "[1500.0, 3000.0]",
        "horizon.intervals": "2",
        "horizon.first_interval": "48",
    }
    summary = run_cli("simbench_mv", out, sets)
    assert summary["curtailed_kwh"] > 0
    ledger = Ledger.connect("embedded", state_dir=out / "chain", read_only=True)
    events = ledger.events()
    (fees,) = [bytes(e.args["feeTable"]) for e in events if e.name == "ClearingConfigured"]
    (network,) = [e.args for e in events if e.name == "NetworkConfigured"]
    assert (len(fees) - 64) // 64 == 2 and is_directory(fees)
    assert network["cfg"] == RULE_IDS["lp"] and (len(network["table"]) - 64) // 64 == 3
    assert any(e.name == "CurtailmentEvidence" for e in events)


def test_a_market_too_large_for_its_sharded_fee_table_is_refused_before_deployment() -> None:
    """Reading a 600-bus table (1.44 MB) costs every clearing page about 5M gas: the
    capacity check counts it (the figure matches bench_data_shards' 5.06M with 200 bids).
    The greedy clearing is paged, but every page reads the table: its last page of one trade
    bounds the market at 1,185 members (614 if the clearing were one transaction)."""
    fee_bytes = 4 * 600 * 600
    assert abs(load_gas(fee_bytes, 200) - 5_059_000) < 100_000
    assert max_members("clear/greedy", 2**24) == 1_208
    assert max_members("clear/greedy", 2**24, fee_bytes) == 614
    assert max_members("clear/greedy/page", 2**24, fee_bytes) == 1_185
    ledger = Ledger.connect("embedded")
    members = [LedgerMember(i, i % 600, i % 3) for i in range(1_200)]
    with pytest.raises(
        ChainCapacityExceeded, match=r"reads 1,440,000 bytes of shards.* at most 1,185"
    ):
        ledger.setup(members, TARIFFS, 1, 10, clearing="greedy", fees=np.zeros((600, 600)))
    assert ledger.backend.nonce(ledger.operator) == 0  # nothing sent
