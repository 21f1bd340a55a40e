"""The committed network of a radial feeder in tree form (SecurityVerifier data version 2).

The contract computes each relief from the tree (lowest common ancestors, branches above a
bus) and must agree with the dense reference expanded by ``RadialTree.relief`` on random
trees, verdicts and tamperings; malformed trees are refused alike by the contract and by
``unpack_network``; the shipped radial feeders expand to the very matrix they committed
before; and a 1,754-bus feeder fits one data contract.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from benchmarks.markets import random_radial_tree
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ledgerkit import needs_simbench, run_cli
from test_security_verifier import Rejected, Verifier, agree, lp_verdict_agrees, verdict_on

from gridledger.errors import ChainError
from gridledger.grid import load_feeder
from gridledger.grid.sensitivities import sensitivities
from gridledger.ledger import Ledger
from gridledger.ledger.network_data import (
    MAX_NETWORK_BYTES,
    max_tree_buses,
    pack_network,
    pack_tree,
    unpack_network,
)
from gridledger.market.justification import (
    LinearNetwork,
    linear_network_from_tree,
)
from gridledger.market.radial import RadialTree
from gridledger.security.justification import linear_network

STRESSED = Path(__file__).resolve().parents[2] / "scenarios" / "ieee33_stressed.toml"


@pytest.fixture(scope="module")
def verifier() -> Iterator[Verifier]:
    yield Verifier.deploy(b"tests-network-tree")


def random_tree(rng: random.Random, n: int, n_lines: int, n_trafos: int) -> RadialTree:
    return random_radial_tree(rng, n, n_lines + n_trafos)


def _network(tree: RadialTree, n_trafos: int = 0) -> LinearNetwork:
    n_branches = int(tree.branch_child.shape[0])
    return linear_network_from_tree(tree, n_branches - n_trafos, n_trafos, 900)


def test_the_dense_expansion_is_the_tree_by_definition() -> None:
    rng = random.Random(5)
    tree = random_tree(rng, 9, 6, 1)
    net = _network(tree, 1)
    anc = tree.ancestors()
    for k in range(1, 9):
        for b in range(9):
            common = [v for v in range(9) if anc[v, k] and anc[v, b]]
            lca = max(common, key=lambda v: int(tree.depth[v]))
            assert net.relief_at(k - 1, b) == tree.bus_value[lca]
    for r, child in enumerate(tree.branch_child.tolist()):
        for b in range(9):
            expected = tree.branch_value[r] if anc[child, b] else 0
            assert net.relief_at(8 + r, b) == expected


@st.composite
def tree_verdicts(draw: Any) -> tuple[Any, ...]:
    rng = random.Random(draw(st.integers(0, 2**32)))
    n = draw(st.integers(2, 12))
    n_trafos = draw(st.integers(0, 1))
    tree = random_tree(rng, n, draw(st.integers(0, n)), n_trafos)
    return verdict_on(draw, _network(tree, n_trafos))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=tree_verdicts())
def test_tree_data_and_the_dense_reference_agree(verifier: Verifier, case: tuple[Any, ...]) -> None:
    net = case[0]
    raw = pack_tree(net)
    assert raw[0] == 2 and len(raw) == 16 + 8 * net.n_buses + 6 * (net.n_rows - net.n_bus_rows)
    back = unpack_network(raw)
    assert np.array_equal(back.relief, net.relief)
    agree(verifier, raw, case)


def refused_alike(verifier: Verifier, raw: bytes) -> tuple[str, tuple[Any, ...]]:
    """The error the verifier names for network data ``raw``; the reader refuses it too."""
    with pytest.raises(Rejected) as caught:
        verifier.call(verifier.data(raw), 0, [], [], [], [])
    with pytest.raises(ChainError):
        unpack_network(raw)
    return caught.value.error, caught.value.args_


def test_malformed_trees_are_refused_by_name(verifier: Verifier) -> None:
    tree = random_tree(random.Random(2), 6, 5, 0)
    raw = bytearray(pack_tree(_network(tree)))
    assert verifier.call(verifier.data(bytes(raw)), 0, [], [], [], []) == 0  # well formed

    def node(b: int) -> int:
        return 16 + 8 * b

    cyclic = bytearray(raw)
    cyclic[node(0) : node(0) + 2] = (3).to_bytes(2, "big")  # the root names a parent
    assert refused_alike(verifier, bytes(cyclic)) == ("BadNetworkTree", (0,))
    b = int(np.flatnonzero(tree.depth == 2)[0])
    shallow = bytearray(raw)
    shallow[node(b) + 2 : node(b) + 4] = (1).to_bytes(2, "big")  # depth not parent's + 1
    assert refused_alike(verifier, bytes(shallow)) == ("BadNetworkTree", (b,))
    beyond = bytearray(raw)
    beyond[node(4) : node(4) + 2] = (6).to_bytes(2, "big")  # parent outside the network
    assert refused_alike(verifier, bytes(beyond)) == ("BadNetworkTree", (4,))
    root_branch = bytearray(raw)
    at = 16 + 8 * 6 + 6 * 2
    root_branch[at : at + 2] = (0).to_bytes(2, "big")  # a branch above the root
    assert refused_alike(verifier, bytes(root_branch)) == ("BadNetworkTree", (6 + 2,))
    shape = bytearray(raw)
    shape[4:6] = (4).to_bytes(2, "big")  # 4 bus rows for 6 buses: not one per non-root bus
    shape = shape[:-6]  # and one branch fewer, so the length matches the header
    shape[6:8] = (4).to_bytes(2, "big")
    assert refused_alike(verifier, bytes(shape)) == ("BadNetworkShape", (6, 4))
    short = bytes(raw[:-1])
    assert refused_alike(verifier, short) == ("NetworkDataLength", (len(raw), len(raw) - 1))


@pytest.mark.parametrize("name", ["ieee33", "cigre_lv"])
def test_shipped_radial_feeders_commit_the_same_matrix_in_either_form(name: str) -> None:
    feeder = load_feeder(name)
    net = linear_network(feeder, sensitivities(feeder), 0.25)  # what committed_network builds
    assert net.tree is not None
    dense = unpack_network(pack_network(net))  # small enough for version 1
    assert pack_network(net)[0] == 1
    assert np.array_equal(unpack_network(pack_tree(net)).relief, dense.relief)


def test_a_1754_bus_radial_feeder_fits_one_data_contract(verifier: Verifier) -> None:
    n = max_tree_buses()
    assert n == 1_754
    tree = random_tree(random.Random(9), n, n - 1, 0)
    net = _network(tree)
    raw = pack_network(net)  # too large for version 1: packed as a tree
    assert raw[0] == 2 and len(raw) <= MAX_NETWORK_BYTES
    deeper = random_tree(random.Random(9), n + 1, n, 0)
    raw_deeper = pack_network(_network(deeper))  # one bus more: deployed in shards
    assert raw_deeper[0] == 2 and len(raw_deeper) > MAX_NETWORK_BYTES
    lp_verdict_agrees(verifier, net, raw)


@pytest.mark.slow
@needs_simbench
def test_a_129_bus_lv_feeder_commits_its_tree_and_checks_curtailments_on_chain(
    tmp_path: Path,
) -> None:
    """SimBench 1-LV-rural3 (129 buses, radial) with PV on 60 % of its loads at noon: too
    large for the dense form, its network is committed in tree form, the lp curtailments are
    checked on chain, and the run matches the reference with a clean audit."""
    out = tmp_path / "run"
    sets = {
        "network.feeder": '"1-LV-rural3--0-sw"',
        "members.from_loads": "true",
        "members.pv_buses": "[]",
        "members.pv_share": "0.6",
        "members.household_pv_kwp": "[20.0, 40.0]",
        "horizon.intervals": "3",
        "horizon.first_interval": "48",
    }
    summary = run_cli(str(STRESSED), out, sets)
    assert summary["curtailed_kwh"] > 0
    ledger = Ledger.connect("embedded", state_dir=out / "chain")
    (configured,) = [e for e in ledger.events() if e.name == "NetworkConfigured"]
    assert configured.args["cfg"] == 1 and bytes(configured.args["table"])[0] == 2
    assert any(e.name == "CurtailmentEvidence" for e in ledger.events())
