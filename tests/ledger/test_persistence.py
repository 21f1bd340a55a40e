"""Saved embedded chain: resume after a kill, nothing lost or duplicated; audit from disk;
a malformed or missing file named; a setup killed at any point resumes to one setup."""

from __future__ import annotations

import json
import random
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from benchmarks.markets import random_bids

from gridledger.errors import SavedChainDamaged, SavedChainOutdated
from gridledger.ledger import Ledger, LedgerMember, facade, store
from gridledger.ledger.audit import audit, compact_ranges
from gridledger.ledger.txqueue import TxQueue
from gridledger.market import Tariffs

TARIFFS = Tariffs(300_000, 80_000)
MEMBERS = [LedgerMember(i, i % 4 + 1, 0) for i in range(6)]


def _interval(ledger: Ledger, t: int, finish: bool = True) -> None:
    rng = random.Random(t)
    for k in range(2):
        bids = random_bids(MEMBERS, rng)
        ledger.record_round(t, k, bids)
    ledger.clear(t)
    if not finish:
        return
    ledger.record_security(t, [])
    ledger.record_readings(t, {m.id: rng.randint(-900, 900) for m in MEMBERS})
    ledger.settle(t)
    ledger.end_interval(t)


def test_resume_after_kill_and_audit(tmp_path: Path) -> None:
    state = tmp_path / "chain"
    first = Ledger.connect("embedded", state_dir=state)
    first.setup(MEMBERS, TARIFFS, 2, 10**9)
    for t in range(3):
        _interval(first, t)
    _interval(first, 3, finish=False)  # killed mid-interval: never persisted
    del first

    resumed = Ledger.connect("embedded", state_dir=state)
    assert resumed.is_set_up()
    assert resumed.last_settled_interval() == 2
    # The unfinished interval 3 is gone with the killed process; redo it from the start.
    _interval(resumed, 3)
    assert resumed.last_settled_interval() == 3
    assert resumed.conserved()
    after = resumed.balances()

    reader = Ledger.connect("embedded", state_dir=state, read_only=True)
    assert reader.last_settled_interval() == 3
    assert reader.balances() == after
    report = audit(reader)
    assert report.ok, report.problems
    assert report.intervals_settled == 4


# ------------------------------------------------------------------ saved-chain checks
def _saved_chain(folder: Path, intervals: int = 1) -> Ledger:
    ledger = Ledger.connect("embedded", state_dir=folder)
    ledger.setup(MEMBERS, TARIFFS, 2, 10**9, run={"scenario": "abc", "intervals": intervals})
    for t in range(intervals):
        _interval(ledger, t)
    return ledger


@pytest.fixture(scope="module")
def one_interval(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("one") / "chain"
    _saved_chain(folder)
    return folder


def _copy(folder: Path, tmp_path: Path) -> Path:
    target = tmp_path / "chain"
    shutil.copytree(folder, target)
    return target


def _edit_ledger_json(folder: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    path = folder / "ledger.json"
    saved = json.loads(path.read_text())
    edit(saved)
    path.write_text(json.dumps(saved))


@pytest.mark.parametrize(
    ("edit", "key", "expected"),
    [
        (lambda s: s.pop("market"), "'market'", "Field required"),
        (lambda s: s.update(token="zz" * 20), "'token'", "should match pattern"),
        (lambda s: s.update(rounds="2"), "'rounds'", "valid integer"),
        (lambda s: s["members"][1].update(bus=None), "'members.1.bus'", "valid integer"),
        (lambda s: s.update(fee_table="00"), "'fee_table'", "fee table"),
        (lambda s: s.update(run={"x": [1]}), "'run.x", "valid"),
    ],
)
def test_a_malformed_ledger_json_is_named(
    one_interval: Path,
    tmp_path: Path,
    edit: Callable[[dict[str, Any]], None],
    key: str,
    expected: str,
) -> None:
    folder = _copy(one_interval, tmp_path)
    if key == "'fee_table'":
        _edit_ledger_json(folder, lambda s: s.update(clearing="greedy", fee_buses=2))
    _edit_ledger_json(folder, edit)
    with pytest.raises(SavedChainDamaged) as caught:
        Ledger.connect("embedded", state_dir=folder)
    message = str(caught.value)
    assert message.startswith(f"{folder / 'ledger.json'}: saved chain damaged: key {key}")
    assert expected in message


def test_a_truncated_ledger_json_is_named(one_interval: Path, tmp_path: Path) -> None:
    folder = _copy(one_interval, tmp_path)
    text = (folder / "ledger.json").read_text()
    (folder / "ledger.json").write_text(text[: len(text) // 2])
    with pytest.raises(
        SavedChainDamaged, match=r"ledger\.json: saved chain damaged: not a complete"
    ):
        Ledger.connect("embedded", state_dir=folder, read_only=True)


def test_a_version_1_folder_is_outdated(one_interval: Path, tmp_path: Path) -> None:
    folder = _copy(one_interval, tmp_path)
    _edit_ledger_json(folder, lambda s: s.update(version=1))
    with pytest.raises(SavedChainOutdated, match="saved by an older gridledger"):
        Ledger.connect("embedded", state_dir=folder, read_only=True)


def test_missing_files_are_named(one_interval: Path, tmp_path: Path) -> None:
    folder = _copy(one_interval, tmp_path)
    (folder / "txlog.jsonl").unlink()
    with pytest.raises(SavedChainDamaged, match="says the setup was done, but the log is missing"):
        Ledger.connect("embedded", state_dir=folder, read_only=True)
    folder = _copy(one_interval, tmp_path / "2")
    (folder / "ledger.json").unlink()
    with pytest.raises(SavedChainDamaged, match=r"ledger\.json: saved chain damaged: the file is"):
        Ledger.connect("embedded", state_dir=folder)


def test_audit_lists_settled_and_missing_intervals(one_interval: Path) -> None:
    reader = Ledger.connect("embedded", state_dir=one_interval, read_only=True)
    assert audit(reader).as_dict()["missing_intervals"] == "unknown (no horizon given)"
    report = audit(reader, expected_intervals=4)
    assert not report.ok
    assert report.as_dict()["settled_intervals"] == "0"
    assert report.as_dict()["missing_intervals"] == "1-3"
    assert report.problems == ["intervals not settled on chain: 1-3 (the run has 4)"]
    assert compact_ranges([0, 1, 2, 5, 7, 8]) == "0-2, 5, 7-8"
    assert compact_ranges([]) == "none"


class Killed(Exception):
    """Stands for a SIGKILL at one point of the setup."""


def _kill_at(monkeypatch: pytest.MonkeyPatch, point: str) -> None:
    """Make the setup die at ``point`` (one of :data:`SETUP_POINTS`)."""
    write_ledger = facade.write_ledger_file
    append = store.TxLog.append
    calls = {"ledger.json": 0}

    def write_ledger_file(state_dir: Path, saved: Any) -> None:
        calls["ledger.json"] += 1
        if point == "before ledger.json" or (
            point == "before marking set up" and calls["ledger.json"] == 2
        ):
            raise Killed(point)
        write_ledger(state_dir, saved)

    def send(self: Any, steps: Any) -> Any:
        raise Killed(point)

    def torn_append(self: store.TxLog, *args: Any) -> None:
        if point == "before the setup record":
            raise Killed(point)
        append(self, *args)  # then cut it as a kill while writing would
        data = self.path.read_bytes()
        self.path.write_bytes(data[: len(data) - 300])
        raise Killed(point)

    monkeypatch.setattr(facade, "write_ledger_file", write_ledger_file)
    if point == "while sending":
        monkeypatch.setattr(TxQueue, "send", send)
    if point in ("before the setup record", "while writing the setup record"):
        monkeypatch.setattr(store.TxLog, "append", torn_append)


SETUP_POINTS = (
    "before ledger.json",
    "while sending",
    "before the setup record",
    "while writing the setup record",
    "before marking set up",
)


@pytest.mark.parametrize("point", SETUP_POINTS)
def test_a_setup_killed_anywhere_resumes_to_one_setup(
    point: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reference = tmp_path / "reference"
    _saved_chain(reference)
    folder = tmp_path / "killed"
    with monkeypatch.context() as patch:
        _kill_at(patch, point)
        with pytest.raises(Killed):
            _saved_chain(folder)
    resumed = Ledger.connect("embedded", state_dir=folder)
    if not resumed.is_set_up():
        resumed.setup(MEMBERS, TARIFFS, 2, 10**9, run={"scenario": "abc", "intervals": 1})
    else:
        assert point == "before marking set up"
    _interval(resumed, 0)
    for name in ("ledger.json", "txlog.jsonl"):
        assert (folder / name).read_bytes() == (reference / name).read_bytes(), name
    reader = Ledger.connect("embedded", state_dir=folder, read_only=True)
    assert audit(reader, expected_intervals=1).ok
    assert reader.stats() == Ledger.connect("embedded", state_dir=reference).stats()


KILL_CHILD = """
import os, signal, sys
from pathlib import Path
from gridledger.ledger import facade
from gridledger.ledger.backends import EmbeddedBackend
from tests.ledger.test_persistence import _saved_chain

point = sys.argv[2]
if point == "after sending":
    EmbeddedBackend.seal = lambda self: os.kill(os.getpid(), signal.SIGKILL)
else:
    write, calls = facade.write_ledger_file, []
    def write_ledger_file(state_dir, saved):
        calls.append(saved)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGKILL)
        write(state_dir, saved)
    facade.write_ledger_file = write_ledger_file
_saved_chain(Path(sys.argv[1]))
"""


@pytest.mark.parametrize("point", ["after sending", "before marking set up"])
def test_a_setup_sigkilled_resumes_to_one_setup(point: str, tmp_path: Path) -> None:
    folder = tmp_path / "killed"
    root = Path(__file__).resolve().parents[2]
    child = [sys.executable, "-c", KILL_CHILD, str(folder), point]
    done = subprocess.run(child, cwd=root, capture_output=True, text=True, check=False)
    assert done.returncode == -signal.SIGKILL, done.stderr
    resumed = Ledger.connect("embedded", state_dir=folder)
    assert resumed.is_set_up() == (point == "before marking set up")
    if not resumed.is_set_up():
        resumed.setup(MEMBERS, TARIFFS, 2, 10**9, run={"scenario": "abc", "intervals": 1})
    _interval(resumed, 0)
    reference = tmp_path / "reference"
    _saved_chain(reference)
    for name in ("ledger.json", "txlog.jsonl"):
        assert (folder / name).read_bytes() == (reference / name).read_bytes(), name
