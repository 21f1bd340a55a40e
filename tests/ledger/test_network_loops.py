"""The committed network of a meshed feeder as spanning tree plus loop correction (data v3).

The contract computes each relief from the tree and the loop vectors and must agree with
the reference (``LoopCorrection.apply``) on random networks, verdicts and tamperings, also
where the dot products leave int64; malformed data is refused alike by the contract and by
``unpack_network``; a meshed feeder's loop form passes an lp verdict on chain; and a
5,000-bus meshed network fits the shards and checks a verdict.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from benchmarks.markets import random_loops, random_radial_tree
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ledgerkit import needs_simbench
from test_network_tree import refused_alike
from test_security_verifier import Verifier, agree, lp_verdict_agrees, verdict_on

from gridledger.grid import load_feeder
from gridledger.grid.sensitivities import sensitivities
from gridledger.ledger.network_data import (
    MAX_NETWORK_BYTES,
    looped_bytes,
    max_looped_buses,
    max_meshed_buses,
    pack_network,
    pack_tree,
    unpack_network,
)
from gridledger.ledger.shards import MAX_DATA_BYTES
from gridledger.market.justification import LinearNetwork, linear_network_from_tree
from gridledger.market.loops import DENSE_MESHED_MAX_BUSES, LoopCorrection
from gridledger.security.justification import linear_network


@pytest.fixture(scope="module")
def verifier() -> Iterator[Verifier]:
    yield Verifier.deploy(b"tests-network-loops")


def _meshed(
    rng: random.Random, n: int, n_loops: int, n_trafos: int = 0, **kw: Any
) -> LinearNetwork:
    n_branches = n - 1 + n_loops
    tree = random_radial_tree(rng, n, n_branches)
    loops = random_loops(rng, n, n - 1 + n_branches, n_loops, **kw)
    return linear_network_from_tree(tree, n_branches - n_trafos, n_trafos, 900, loops)


def test_the_loop_relief_is_the_tree_plus_the_rounded_dot_product() -> None:
    rng = random.Random(3)
    net = _meshed(rng, 7, 2, 1)
    assert net.tree is not None and net.loops is not None
    plain = linear_network_from_tree(net.tree, 7, 1, 900).relief
    loops = net.loops
    for r in range(net.n_rows):
        for b in range(net.n_buses):
            dot = sum(
                int(x) * int(y) for x, y in zip(loops.row_vec[r], loops.bus_vec[b], strict=True)
            )
            s = int(plain[r, b]) + ((dot + (1 << (loops.shift - 1))) >> loops.shift)
            assert net.relief_at(r, b) == (s if r < net.n_bus_rows else abs(s))


def test_mismatched_loop_vectors_are_refused() -> None:
    rng = random.Random(4)
    tree = random_radial_tree(rng, 5, 5)
    with pytest.raises(Exception, match="row and 5 bus vectors"):
        linear_network_from_tree(tree, 5, 0, 900, random_loops(rng, 5, 8, 1))
    with pytest.raises(Exception, match="shift 256"):
        LoopCorrection(256, np.zeros((2, 2), dtype=np.int64), np.zeros((2, 2), dtype=np.int64))
    with pytest.raises(Exception, match="fit int32"):
        LoopCorrection(
            0, np.full((2, 2), 1 << 31, dtype=np.int64), np.zeros((2, 2), dtype=np.int64)
        )


@st.composite
def loop_verdicts(draw: Any) -> tuple[Any, ...]:
    rng = random.Random(draw(st.integers(0, 2**32)))
    n = draw(st.integers(2, 10))
    k = draw(st.integers(1, 3))
    bits = draw(st.integers(1, 16))
    shift = draw(st.integers(0, 2 * bits))
    net = _meshed(rng, n, k, draw(st.integers(0, 1)), bits=bits, shift=shift)
    return verdict_on(draw, net)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=loop_verdicts())
def test_loop_data_and_the_reference_agree(verifier: Verifier, case: tuple[Any, ...]) -> None:
    net = case[0]
    raw = pack_tree(net)
    n_branches = net.n_line_rows + net.n_trafo_rows
    assert raw[0] == 3 and len(raw) == looped_bytes(net.n_buses, n_branches, net.loops.n_loops)
    back = unpack_network(raw)
    assert np.array_equal(back.relief, net.relief)
    agree(verifier, raw, case)


def test_products_beyond_int64_agree(verifier: Verifier) -> None:
    """Vectors near the int32 limits: the reference leaves int64 for exact integers."""
    rng = random.Random(11)
    net = _meshed(rng, 6, 2, bits=31, shift=52)
    assert net.loops is not None and int(np.abs(net.loops.row_vec).max()) > 1 << 30
    raw = pack_tree(net)
    assert np.array_equal(unpack_network(raw).relief, net.relief)
    lp_verdict_agrees(verifier, net, raw)


def test_malformed_loop_data_is_refused_by_name(verifier: Verifier) -> None:
    net = _meshed(random.Random(6), 6, 2)
    raw = bytearray(pack_tree(net))
    assert verifier.call(verifier.data(bytes(raw)), 0, [], [], [], []) == 0  # well formed
    assert refused_alike(verifier, bytes(raw[:-4])) == (
        "NetworkDataLength",
        (len(raw), len(raw) - 4),
    )
    more_loops = bytearray(raw)
    more_loops[14] = 3  # the header claims a third loop: 8 * 3 bytes per bus and row
    expected = looped_bytes(6, 7, 3)
    assert refused_alike(verifier, bytes(more_loops)) == ("NetworkDataLength", (expected, len(raw)))
    version = bytearray(raw)
    version[0] = 4
    assert refused_alike(verifier, bytes(version))[0] == "NetworkDataLength"
    cyclic = bytearray(raw)
    cyclic[16:18] = (3).to_bytes(2, "big")  # the root names a parent
    assert refused_alike(verifier, bytes(cyclic)) == ("BadNetworkTree", (0,))
    no_loops = bytearray(raw[: looped_bytes(6, 7, 0)])
    no_loops[14] = 0  # version 3 without loops: the tree, branch rows in absolute value
    assert verifier.call(verifier.data(bytes(no_loops)), 0, [], [], [], []) == 0
    back = unpack_network(bytes(no_loops))
    assert back.loops is not None and back.loops.n_loops == 0


def test_a_meshed_feeder_in_loop_form_checks_an_lp_verdict(verifier: Verifier) -> None:
    feeder = load_feeder("ieee33_meshed")
    net = linear_network(feeder, sensitivities(feeder), 0.25, "loops")
    assert net.loops is not None and net.loops.n_loops == 5
    raw = pack_tree(net)
    assert raw[0] == 3 and len(raw) < MAX_NETWORK_BYTES
    assert pack_network(net) == raw  # chosen in loop form, committed in loop form
    lp_verdict_agrees(verifier, net, raw)


def test_the_dense_limit_and_the_loop_limits() -> None:
    assert max_meshed_buses() == DENSE_MESHED_MAX_BUSES
    for k in (1, 2, 4):
        n = max_looped_buses(k)
        assert looped_bytes(n, n - 1 + k, k) <= MAX_DATA_BYTES < looped_bytes(n + 1, n + k, k)
    assert max_looped_buses(4) > 5_000


@pytest.mark.slow
def test_a_5000_bus_meshed_network_checks_a_verdict_from_its_shards(verifier: Verifier) -> None:
    rng = random.Random(21)
    n, k = 5_000, 2
    tree = random_radial_tree(rng, n, n - 1 + k, trunk=400, reach=40)
    loops = random_loops(rng, n, 2 * (n - 1) + k, k)
    net = linear_network_from_tree(tree, n - 1 + k, 0, 900, loops)
    raw = pack_network(net)  # far too large for the dense form: version 3 in shards
    assert raw[0] == 3 and len(raw) == looped_bytes(n, n - 1 + k, k) > MAX_NETWORK_BYTES
    lp_verdict_agrees(verifier, net, raw)


@pytest.mark.slow
@needs_simbench
def test_simbench_5477_bus_grid_commits_its_loops_and_checks_a_verdict(verifier: Verifier) -> None:
    """SimBench's rural MV/LV grid (5,477 buses, one loop), as a run commits it: past the
    dense limit, so in loop form (9 shards), within rounding of the dense model, and an lp
    verdict passes on chain."""
    feeder = load_feeder("1-MVLV-rural-all-0-sw")
    sens = sensitivities(feeder)
    net = linear_network(feeder, sens, 0.25)  # auto
    assert net.loops is not None and feeder.n_buses > DENSE_MESHED_MAX_BUSES
    dense = linear_network(feeder, sens, 0.25, "dense")
    assert int(np.abs(dense.relief - net.relief).max()) <= 2
    raw = pack_network(net)
    assert raw[0] == 3 and len(raw) == looped_bytes(feeder.n_buses, feeder.tree.n_edges, 1)
    lp_verdict_agrees(verifier, net, raw)
