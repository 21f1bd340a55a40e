"""A run on a real anvil node whose node dies, loses its state, or loses an answer.

Each run goes through a small JSON-RPC proxy on 127.0.0.1 that forwards to anvil and,
at the n-th request carrying a given method, can stop the node (SIGTERM: anvil writes
its ``--state`` file), drop the answer after forwarding (the transactions reached the
node, the client got no answer), or dump the node's state (``anvil_dumpState``) for a
later restart from an older state. The resumed folders must equal an uninterrupted run
(every CSV, the summary but for ``runtime_s`` and the node URL in ``chain``).

Which request carries which step: an interval spans several blocks (its opening and each
round's deadline), so the uninterrupted reference run goes through a recording proxy that
decodes the function of every transaction sent; for interval k (0-based) and step "clear"
or "settle", :func:`_batch` looks up the number of the ``eth_sendRawTransaction`` batch
that carries it and :func:`_mine` the number of the ``evm_mine`` that mines it (the next
one after the batch: the ledger hands transactions to the node's pool before it estimates
the gas of the next, and mines once per block).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.keykit import make_keys, password_file
from tests.sim.rpcproxy import Proxy, rpc

from gridledger.cli import main
from gridledger.ledger import store
from gridledger.ledger.anvil import AnvilNode, find_anvil, start_anvil
from gridledger.scenario import load_scenario
from gridledger.sim.runner import scenario_member_ids

pytestmark = pytest.mark.anvil

ROOT = Path(__file__).resolve().parents[2]
IEEE33 = ROOT / "scenarios" / "ieee33.toml"
INTERVALS = 6
HORIZON = ("--set", "horizon.first_interval=48", "--set", f"horizon.intervals={INTERVALS}")
UNCOMPARED = {"runtime_s", "chain"}  # wall clock; the node's URL differs between runs


SCHEDULE: dict[tuple[int, str], tuple[int, int]] = {}  # (k, step) -> (batch, evm_mine)


def _mine(k: int, step: str) -> Callable[[], int]:
    """Number of the ``evm_mine`` that mines interval ``k``'s ``"clear"`` or ``"settle"``
    (known once the reference run has been recorded)."""
    return lambda: SCHEDULE[(k, step)][1]


def _batch(k: int, step: str) -> Callable[[], int]:
    """Number of the ``eth_sendRawTransaction`` batch that carries interval ``k``'s step."""
    return lambda: SCHEDULE[(k, step)][0]


def _record_schedule(proxy: Proxy) -> None:
    """Fill :data:`SCHEDULE` from the functions the proxy saw in each batch."""
    SCHEDULE.clear()
    seen = {"clear": 0, "settle": 0}
    for number, (mine, names) in enumerate(proxy.batches, start=1):
        for step, function in (("clear", "clearGreedy"), ("settle", "settle")):
            if function in names:
                SCHEDULE[(seen[step], step)] = (number, mine)
                seen[step] += 1
    assert proxy.batches[-1][0] <= proxy.counts["evm_mine"], "every batch is mined"


KEYS: list[str] = []  # the run options of the module's keys folder


@pytest.fixture(scope="module", autouse=True)
def keys(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Keystores of the scenario's members (seed keys are refused on a JSON-RPC node),
    given to every run."""
    folder = make_keys(
        tmp_path_factory.mktemp("keys") / "keys", scenario_member_ids(load_scenario(IEEE33))
    )
    KEYS.extend(["--keys", str(folder), "--key-password-file", str(password_file(folder))])
    yield folder
    KEYS.clear()


def _run(out: Path, url: str, *extra: str) -> int:
    args = ["run", str(IEEE33), "--chain", url, *HORIZON, "--out", str(out), "-q"]
    return main([*args, *KEYS, *extra])


def _outputs(out: Path) -> dict[str, Any]:
    summary = json.loads((out / "summary.json").read_text())
    tables = {p.name: p.read_bytes() for p in sorted(out.glob("*.csv"))}
    return {"summary": {k: v for k, v in summary.items() if k not in UNCOMPARED}, **tables}


def _log_intervals(out: Path) -> list[int | None]:
    return [r.interval for r in store.TxLog.open(out / "chain").records]


def _audit(out: Path, url: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["audit", str(out), "--chain", url])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The outputs of an uninterrupted run on a fresh anvil."""
    if find_anvil() is None:
        pytest.skip("anvil not found: run `npm ci` (node_modules/@foundry-rs/anvil-*)")
    out = tmp_path_factory.mktemp("reference") / "run"
    with start_anvil() as node:
        proxy = Proxy(node.url)
        assert _run(out, proxy.url) == 0
        proxy.close()
    _record_schedule(proxy)
    return _outputs(out)


@pytest.fixture
def anvil_nodes() -> Iterator[list[AnvilNode]]:
    """Nodes a test starts (stopped at the end)."""
    nodes: list[AnvilNode] = []
    yield nodes
    for node in nodes:
        node.stop()


def _kill_at(proxy: Proxy, node: AnvilNode, mine: int) -> None:
    """Stop the node at the ``mine``-th ``evm_mine`` (before it is mined)."""

    def kill() -> str:
        node.stop()  # SIGTERM: anvil writes its --state file
        proxy.dead = True
        return "dead"

    proxy.faults[("evm_mine", mine)] = kill


@pytest.mark.slow  # fast lane budget: 10-30 s
def test_node_killed_then_restarted(
    reference: dict[str, Any],
    anvil_nodes: list[AnvilNode],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Killed in interval 3: a named error; a node without its state is named on resume
    and audit and the folder is left alone; the node restarted with its state resumes to
    the uninterrupted run's outputs."""
    state, out = tmp_path / "anvil-state.json", tmp_path / "run"
    node = start_anvil(state=state)
    anvil_nodes.append(node)
    proxy = Proxy(node.url)
    _kill_at(proxy, node, _mine(3, "clear")())
    capsys.readouterr()
    assert _run(out, proxy.url) == 1
    error = capsys.readouterr().err
    proxy.close()
    assert f"{proxy.url}: the JSON-RPC node did not answer" in error
    assert "the last interval settled is interval 2 (local log " in error
    assert "--resume" in error and "Traceback" not in error
    assert _log_intervals(out) == [None, 0, 1, 2]
    assert state.exists()
    assert _run(out, proxy.url, "--resume") == 1  # nothing listens there any more
    error = capsys.readouterr().err
    assert f"{proxy.url}: the JSON-RPC node did not answer" in error
    assert "Connection refused" in error and "last interval settled is interval 2" in error

    saved = {p.name: p.read_bytes() for p in (out / "chain").iterdir()}
    empty = start_anvil()
    anvil_nodes.append(empty)
    market = json.loads((out / "chain" / "ledger.json").read_text())["market"]
    lost = f"{empty.url}: the node has no market at 0x{market}"
    capsys.readouterr()
    assert _run(out, empty.url, "--resume") == 1
    error = capsys.readouterr().err
    assert lost in error and "it lost its state" in error and "Traceback" not in error
    code, said = _audit(out, empty.url, capsys)
    assert code == 1 and lost in said and "Traceback" not in said
    assert {p.name: p.read_bytes() for p in (out / "chain").iterdir()} == saved
    assert rpc(empty.url, "eth_blockNumber", []) == "0x0"  # nothing deployed on it

    restarted = start_anvil(state=state)
    anvil_nodes.append(restarted)
    assert _run(out, restarted.url, "--resume") == 0
    assert _outputs(out) == reference
    assert _log_intervals(out) == [None, *range(INTERVALS)]
    code, said = _audit(out, restarted.url, capsys)
    assert code == 0, said


@pytest.mark.slow  # fast lane budget: two anvil nodes and three runs
def test_node_restarted_from_older_state(
    reference: dict[str, Any],
    anvil_nodes: list[AnvilNode],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The node comes back with the state of interval 1 while the log reached interval 3:
    the audit names it; --resume re-sends intervals 2-3 from the log (same transactions),
    runs 4-5, and writes no record twice."""
    out = tmp_path / "run"
    node = start_anvil()
    anvil_nodes.append(node)
    proxy = Proxy(node.url)
    dumps: list[str] = []

    def dump() -> str:
        dumps.append(rpc(node.url, "anvil_dumpState", []))
        return "forward"

    proxy.faults[("eth_sendRawTransaction", _batch(2, "clear")())] = dump  # after interval 1
    _kill_at(proxy, node, _mine(4, "clear")())
    assert _run(out, proxy.url) == 1
    proxy.close()
    assert _log_intervals(out) == [None, 0, 1, 2, 3]

    older = start_anvil()
    anvil_nodes.append(older)
    assert rpc(older.url, "anvil_loadState", [dumps[0]]) is True
    code, said = _audit(out, older.url, capsys)
    assert code == 1 and "Traceback" not in said
    assert f"{older.url}: the node is behind the local log: the node settled through " in said
    assert "interval 1, " in said and "through 3" in said

    assert _run(out, older.url, "--resume") == 0
    assert _log_intervals(out) == [None, *range(INTERVALS)]
    assert _outputs(out) == reference
    code, said = _audit(out, older.url, capsys)
    assert code == 0, said


@pytest.mark.slow  # fast lane budget: a run on anvil each (4-5 s), and the reference run
@pytest.mark.parametrize(
    ("method", "number", "answer"),
    [
        ("evm_mine", _mine(2, "settle"), "drop"),
        ("eth_sendRawTransaction", _batch(3, "clear"), "drop"),
        ("eth_sendRawTransaction", _batch(1, "settle"), "502"),
    ],
    ids=["mined-answer-lost", "delivered-answer-lost", "delivered-http-502"],
)
def test_lost_answer(
    reference: dict[str, Any],
    anvil_nodes: list[AnvilNode],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    method: str,
    number: Callable[[], int],
    answer: str,
) -> None:
    """The node got the transactions (mined them, or holds them in its pool) and the
    answer was lost: the run stops by name; --resume finds them by nonce, sends nothing
    twice and counts them once."""
    out = tmp_path / "run"
    node = start_anvil()
    anvil_nodes.append(node)
    proxy = Proxy(node.url)
    proxy.faults[(method, number())] = lambda: answer
    capsys.readouterr()
    assert _run(out, proxy.url) == 1
    error = capsys.readouterr().err
    assert f"{proxy.url}: the JSON-RPC node did not answer" in error
    assert answer != "502" or "HTTP Error 502: Bad Gateway" in error
    assert (out / "chain" / "sent.jsonl").stat().st_size > 0
    assert _run(out, proxy.url, "--resume") == 0, capsys.readouterr().err
    proxy.close()
    assert _log_intervals(out) == [None, *range(INTERVALS)]
    assert _outputs(out) == reference
    code, said = _audit(out, node.url, capsys)
    assert code == 0, said


def test_unreachable_node_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """No node at the URL at all: the same named error, before anything is saved."""
    proxy = Proxy("http://127.0.0.1:9")
    proxy.dead = True
    url = proxy.url
    proxy.close()
    capsys.readouterr()
    assert _run(tmp_path / "run", url) == 1
    error = capsys.readouterr().err
    assert f"{url}: the JSON-RPC node did not answer" in error
    assert "Connection refused" in error
    shutil.rmtree(tmp_path / "run", ignore_errors=True)
