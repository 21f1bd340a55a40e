"""Interval steps paged over several transactions (``chain.settle_page_members``,
``chain.record_page_entries``: bids, readings and the greedy clearing's trades).

Paging changes how many transactions and blocks an interval takes, never the money: a
paged run books the same changes as a run that records each step in one transaction,
and the audit re-derives them from chain data. The page-boundary tests kill a real
``gridledger run`` (SIGKILL) on anvil when it hands the node the second page of one of
interval 1's paged steps (a bidding round, the greedy clearing, an optimal clearing in a
run of that rule, the readings, the settlement), after the first page is mined: the node then holds a half-recorded step.
``--resume`` finds the mined page by nonce, reads how far the step got (``intervalState``:
``pagedBids``, ``tradeCount``, ``pagedReadings``, ``settledMembers``) and records the rest;
the folder must equal the uninterrupted run's.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import rlp
from eth_abi import decode, encode
from eth_utils import keccak
from tests.keykit import make_keys, password_file
from tests.procs import interruptible
from tests.sim.rpcproxy import Proxy, rpc

from gridledger.cli import main
from gridledger.ledger import store
from gridledger.ledger.anvil import find_anvil, start_anvil
from gridledger.scenario import load_scenario
from gridledger.sim.runner import scenario_member_ids

ROOT = Path(__file__).resolve().parents[2]
IEEE33 = ROOT / "scenarios" / "ieee33.toml"
PAGE = 10  # ieee33's 34 members: pages of 10, 10, 10 and 4 readings
PAGES = 4
INTERVALS = 3
HORIZON = ("--set", "horizon.first_interval=48", "--set", f"horizon.intervals={INTERVALS}")
PAGED = ("--set", f"chain.settle_page_members={PAGE}", "--set", f"chain.record_page_entries={PAGE}")
#: The paged steps: the index of their page counter in ``Market.intervalState`` and of
#: ``upTo`` among their arguments.
STEPS = {
    "recordRound": (13, 5),
    "clearGreedy": (5, 5),
    "clearOptimal": (5, 5),
    "recordReadings": (15, 3),
    "settle": (8, 4),
}
#: The clearing rule of the runs that kill a step (the scenario's, greedy, otherwise).
RULES = {"clearOptimal": "optimal"}
KILLED_INTERVAL = 1
UNCOMPARED = {"runtime_s", "chain"}  # wall clock; the node's URL differs between runs


def _tables(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.glob("*.csv"))}


def _outputs(out: Path) -> dict[str, Any]:
    summary = json.loads((out / "summary.json").read_text())
    return {"summary": {k: v for k, v in summary.items() if k not in UNCOMPARED}, **_tables(out)}


@pytest.mark.slow
def test_paged_steps_book_what_one_transaction_books(tmp_path: Path) -> None:
    """Embedded chain: pages of 10 bids, trades, readings and settlement changes give the
    same tables as one transaction per step, more transactions, and the audit passes."""
    whole, paged = tmp_path / "whole", tmp_path / "paged"
    base = ["run", str(IEEE33), *HORIZON, "-q"]
    assert main([*base, "--out", str(whole)]) == 0
    assert main([*base, *PAGED, "--out", str(paged)]) == 0
    assert _tables(paged) == _tables(whole)
    summary = {p: json.loads((p / "summary.json").read_text()) for p in (whole, paged)}
    assert summary[paged]["onchain_matches_reference"] is True
    # readings and settlement: 4 transactions per interval instead of 1; rounds: more
    assert summary[paged]["tx_count"] > summary[whole]["tx_count"] + 2 * (PAGES - 1) * INTERVALS
    assert main(["audit", str(paged)]) == 0


# ---------------------------------------------------------------------------
# the page boundary on a real node


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    if find_anvil() is None:
        pytest.skip("anvil not found: run `npm ci` (node_modules/@foundry-rs/anvil-*)")
    folder = make_keys(
        tmp_path_factory.mktemp("keys") / "keys", scenario_member_ids(load_scenario(IEEE33))
    )
    return ["--keys", str(folder), "--key-password-file", str(password_file(folder))]


def _args(out: Path, url: str, keys: list[str], rule: str = "greedy") -> list[str]:
    run = ["run", str(IEEE33), "--chain", url, *HORIZON, *PAGED, "--out", str(out), "-q"]
    return [*run, "--set", f"market.clearing={rule}", *keys]


class _KillOnPage(Proxy):
    """Forwards to anvil; SIGKILLs ``victim`` (the run) when a batch of transactions
    carries a page of ``step`` of interval ``interval`` that is not its first (its ``upTo``
    is not ``PAGE``), and drops that batch."""

    def __init__(self, upstream: str, step: str, interval: int) -> None:
        super().__init__(upstream)
        self.step, self.interval = step, interval
        self.victim: subprocess.Popen[bytes] | None = None

    def action(self, body: bytes) -> str:
        if not self.dead and self.victim is not None and self._later_page(body):
            self.victim.kill()
            self.victim.wait()
            self.dead = True
            return "dead"
        return super().action(body)

    def _later_page(self, body: bytes) -> bool:
        payload = json.loads(body)
        calls = payload if isinstance(payload, list) else [payload]
        selector = keccak(text=SIGNATURES[self.step])[:4]
        arg = STEPS[self.step][1]
        for c in calls:
            if c["method"] != "eth_sendRawTransaction":
                continue
            data = rlp.decode(bytes.fromhex(c["params"][0][4:]))[7]  # type-2 tx: data
            if bytes(data[:4]) != selector:
                continue
            interval = int.from_bytes(data[4:36], "big")
            up_to = int.from_bytes(data[4 + 32 * arg : 36 + 32 * arg], "big")
            if interval == self.interval and up_to != PAGE:
                return True
        return False


SIGNATURES = {
    "recordRound": "recordRound(uint32,uint8,bool,uint256[],bytes32[],uint256)",
    "recordReadings": "recordReadings(uint32,uint256[],bytes32[],uint256)",
    "settle": "settle(uint32,uint256[],uint256[],uint256[],uint256)",
    "clearGreedy": "clearGreedy(uint32,uint256[],uint256[],uint256,uint256[],uint256)",
    "clearOptimal": "clearOptimal(uint32,uint256[],uint256[],uint256[],uint256[],uint256)",
}


def _paged_count(url: str, market: str, interval: int, field: int) -> int:
    """Field ``field`` of ``intervalState(interval)`` of the Market at ``market`` (0x hex)."""
    data = keccak(text="intervalState(uint32)")[:4] + encode(["uint32"], [interval])
    raw = rpc(url, "eth_call", [{"to": market, "data": "0x" + data.hex()}, "latest"])
    fields = decode(
        [
            "(uint8,uint8,bool,uint8,uint32,uint32,uint64,uint64,uint32,bytes32,bytes32,bytes32,"
            "bytes32,uint32,uint32,uint32,uint32,bool)"
        ],
        bytes.fromhex(raw[2:]),
    )[0]
    return int(fields[field])


@pytest.fixture(scope="module")
def references(keys: list[str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The outputs of the paged run, uninterrupted, by clearing rule (made when first
    needed)."""
    made: dict[str, Any] = {}

    def reference(rule: str) -> Any:
        if rule not in made:
            out = tmp_path_factory.mktemp(f"reference-{rule}") / "run"
            with start_anvil() as node:
                assert main(_args(out, node.url, keys, rule)) == 0
            made[rule] = _outputs(out)
        return made[rule]

    return {"get": reference}


@pytest.mark.anvil
@pytest.mark.slow
@pytest.mark.parametrize("step", list(STEPS))
def test_kill_between_pages_resumes(
    step: str,
    keys: list[str],
    references: dict[str, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Killed after the first page of one of interval 1's ``step`` was mined: the node
    holds a half-recorded step; --resume records the rest, the folder equals an
    uninterrupted run's, and the audit passes."""
    out = tmp_path / "run"
    rule = RULES.get(step, "greedy")
    reference = references["get"](rule)
    with start_anvil() as node:
        proxy = _KillOnPage(node.url, step, KILLED_INTERVAL)
        command = [sys.executable, "-m", "gridledger.cli", *_args(out, proxy.url, keys, rule)]
        proxy.victim = subprocess.Popen(command, preexec_fn=interruptible)
        proxy.victim.wait(timeout=600)
        proxy.close()
        assert proxy.dead, f"the run ended before {step} reached its second page"
        assert [r.interval for r in store.TxLog.open(out / "chain").records] == [
            None,
            *range(KILLED_INTERVAL),
        ]
        market = "0x" + json.loads((out / "chain" / "ledger.json").read_text())["market"]
        assert _paged_count(node.url, market, KILLED_INTERVAL, STEPS[step][0]) == PAGE

        capsys.readouterr()
        resumed = [*_args(out, node.url, keys, rule), "--resume"]
        assert main(resumed) == 0, capsys.readouterr().err
        assert _outputs(out) == reference
        assert main(["audit", str(out), "--chain", node.url]) == 0
