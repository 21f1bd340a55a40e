"""Settlement paged over several transactions (``chain.settle_page_members``).

Paging changes how many transactions and blocks an interval takes, never the money: a
paged run books the same changes as a run that settles each interval in one transaction,
and the audit re-derives them from chain data. The page-boundary test kills a real
``gridledger run`` (SIGKILL) on anvil when it hands the node the second page of an
interval's settlement, after the first page is mined: the node then holds an interval
whose settlement is half booked. ``--resume`` finds the mined page by nonce, reads how
far the settlement got (``intervalState(..).settledMembers``) and books the rest; the
folder must equal the uninterrupted run's.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
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
PAGED = ("--set", f"chain.settle_page_members={PAGE}")
KILLED_INTERVAL = 1
UNCOMPARED = {"runtime_s", "chain"}  # wall clock; the node's URL differs between runs


def _tables(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.glob("*.csv"))}


def _outputs(out: Path) -> dict[str, Any]:
    summary = json.loads((out / "summary.json").read_text())
    return {"summary": {k: v for k, v in summary.items() if k not in UNCOMPARED}, **_tables(out)}


@pytest.mark.slow
def test_paged_settlement_books_what_one_transaction_books(tmp_path: Path) -> None:
    """Embedded chain: pages of 10 give the same tables as one settlement per interval,
    four settlement transactions per interval instead of one, and the audit passes."""
    whole, paged = tmp_path / "whole", tmp_path / "paged"
    base = ["run", str(IEEE33), *HORIZON, "-q"]
    assert main([*base, "--out", str(whole)]) == 0
    assert main([*base, *PAGED, "--out", str(paged)]) == 0
    assert _tables(paged) == _tables(whole)
    summary = {p: json.loads((p / "summary.json").read_text()) for p in (whole, paged)}
    assert summary[paged]["onchain_matches_reference"] is True
    assert summary[paged]["tx_count"] == summary[whole]["tx_count"] + (PAGES - 1) * INTERVALS
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


def _args(out: Path, url: str, keys: list[str]) -> list[str]:
    return ["run", str(IEEE33), "--chain", url, *HORIZON, *PAGED, "--out", str(out), "-q", *keys]


class _KillOnPage(Proxy):
    """Forwards to anvil; SIGKILLs ``victim`` (the run) when a batch of transactions
    carries the ``page``-th settlement transaction of the run, and drops that batch."""

    def __init__(self, upstream: str, page: int) -> None:
        super().__init__(upstream)
        self.page = page
        self.victim: subprocess.Popen[bytes] | None = None

    def action(self, body: bytes) -> str:
        answer = super().action(body)
        settles = sum(names.count("settle") for _, names in self.batches)
        if not self.dead and self.victim is not None and settles >= self.page:
            self.victim.kill()
            self.victim.wait()
            self.dead = True
            return "dead"
        return answer


def _settled_members(url: str, market: str, interval: int) -> int:
    """``intervalState(interval).settledMembers`` of the Market at ``market`` (0x hex)."""
    data = keccak(text="intervalState(uint32)")[:4] + encode(["uint32"], [interval])
    raw = rpc(url, "eth_call", [{"to": market, "data": "0x" + data.hex()}, "latest"])
    fields = decode(
        [
            "(uint8,uint8,bool,uint8,uint32,uint32,uint64,uint64,uint32,bytes32,bytes32,bytes32,bytes32)"
        ],
        bytes.fromhex(raw[2:]),
    )[0]
    return int(fields[8])


@pytest.mark.anvil
@pytest.mark.slow
def test_kill_between_settlement_pages_resumes(
    keys: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Killed after the first page of interval 1's settlement was mined: the node holds a
    half-booked interval; --resume books the rest, and the folder equals an uninterrupted
    run; the audit passes."""
    reference = tmp_path / "reference"
    with start_anvil() as node:
        assert main(_args(reference, node.url, keys)) == 0
    expected = _outputs(reference)

    out = tmp_path / "run"
    with start_anvil() as node:
        proxy = _KillOnPage(node.url, PAGES * KILLED_INTERVAL + 2)
        command = [sys.executable, "-m", "gridledger.cli", *_args(out, proxy.url, keys)]
        proxy.victim = subprocess.Popen(command, preexec_fn=interruptible)
        proxy.victim.wait(timeout=600)
        proxy.close()
        assert proxy.dead, "the run ended before its settlement reached the page"
        assert [r.interval for r in store.TxLog.open(out / "chain").records] == [
            None,
            *range(KILLED_INTERVAL),
        ]
        market = "0x" + json.loads((out / "chain" / "ledger.json").read_text())["market"]
        assert _settled_members(node.url, market, KILLED_INTERVAL) == PAGE

        capsys.readouterr()
        assert main([*_args(out, node.url, keys), "--resume"]) == 0, capsys.readouterr().err
        assert _outputs(out) == expected
        assert main(["audit", str(out), "--chain", node.url]) == 0
