"""Kill the main job in the middle of an interval, resume it, get the uninterrupted result.

``gridledger run`` on the embedded chain saves ``chain/ledger.json`` once set up, and
appends one record to ``chain/txlog.jsonl`` per interval, with all of that interval's
transactions, after the interval is settled and its block sealed (``ledger/store.py``).
A process SIGKILLed after the record of interval k-1 and before the record of interval
k (and not while writing it) died in the middle of interval k: what it had sent of
interval k lived only in its in-memory chain. ``--resume`` replays the log, re-runs
intervals 0..k-1 off chain (so the members' learning is what it was) and continues on
chain from interval k. The resumed folder must equal a run that was never killed.

The moment of the kill is aimed at a fraction of an interval's measured duration, then
checked from the log; a missed moment is retried at another one, never assumed. A kill
while a record is being written is the second test: the resumed run cuts the torn
record from the log before appending, and the audit then checks every interval.
"""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gridledger.cli import main

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
IEEE33 = ROOT / "scenarios" / "ieee33.toml"
INTERVALS = 6
HORIZON = ("--set", "horizon.first_interval=46", "--set", f"horizon.intervals={INTERVALS}")
WALL_CLOCK_KEYS = {"runtime_s"}
# (interval to kill in, fraction of the previous interval's duration to wait after the
# record before it appeared), tried in turn until one kill lands mid-interval
MOMENTS = ((3, 0.5), (2, 0.3), (4, 0.7), (3, 0.15), (2, 0.85), (4, 0.4))
POLL_S = 0.002
GIVE_UP_S = 900.0  # only a guard against a hung child, never a pass/fail criterion


def _run_command(out: Path, *extra: str, verbose: bool = False) -> list[str]:
    """``gridledger [-v] run scenarios/ieee33.toml --out OUT -q --set ... EXTRA``."""
    cli = [sys.executable, "-m", "gridledger.cli", *(["-v"] if verbose else [])]
    return [*cli, "run", str(IEEE33), "--out", str(out), "-q", *HORIZON, *extra]


@dataclass(frozen=True)
class Log:
    """The saved transaction log of a run folder."""

    labels: tuple[str, ...]
    intervals: tuple[int, ...]  # intervals with a complete record, in order
    partial: bool  # a record was being written when the process died

    @classmethod
    def read(cls, out: Path) -> Log:
        path = out / "chain" / "txlog.jsonl"
        text = path.read_text() if path.exists() else ""
        *lines, tail = text.split("\n")
        records = [json.loads(line) for line in lines]
        return cls(
            tuple(r["label"] for r in records),
            tuple(int(r["interval"]) for r in records if r["label"] == "interval"),
            tail != "",
        )

    def killed_mid_interval(self) -> int | None:
        """The interval the run died in, if the log shows it died inside one that is not
        the first: set up, intervals 0..k-1 complete, nothing of k or later written."""
        k = len(self.intervals)
        complete = self.labels == ("setup",) + ("interval",) * k
        if complete and not self.partial and self.intervals == tuple(range(k)):
            return k if 1 <= k < INTERVALS else None
        return None


def _kill_during(out: Path, interval: int, fraction: float) -> int:
    """Start ``gridledger run`` into ``out``; once the record of ``interval - 1`` is in the
    log, wait ``fraction`` of the time the interval before took, then SIGKILL the process.
    Returns the exit code (``-SIGKILL`` unless the run ended first)."""
    txlog = out / "chain" / "txlog.jsonl"
    want = interval + 1  # records: setup and intervals 0..interval-1
    seen: dict[int, float] = {}  # number of complete records -> when first seen
    size = -1
    with out.with_suffix(".stderr").open("w") as err:
        proc = subprocess.Popen(_run_command(out), stdout=subprocess.DEVNULL, stderr=err)
        give_up = time.monotonic() + GIVE_UP_S
        try:
            while proc.poll() is None:
                now = time.monotonic()
                if now > give_up:
                    pytest.fail(f"gridledger run into {out} still running after {GIVE_UP_S} s")
                current = txlog.stat().st_size if txlog.exists() else -1
                if current != size:
                    size = current
                    seen.setdefault(txlog.read_bytes().count(b"\n"), now)
                if want in seen and want - 1 in seen:
                    previous = seen[want] - seen[want - 1]
                    if now >= seen[want] + fraction * previous:
                        proc.send_signal(signal.SIGKILL)
                        break
                time.sleep(POLL_S)
        finally:
            if proc.poll() is None:
                proc.kill()  # never leave the child running (a no-op after our SIGKILL)
            code = proc.wait()
    return code


def _kill_mid_interval(tmp_path: Path) -> tuple[Path, int]:
    """Kill runs at the :data:`MOMENTS` in turn until the log of one shows that it died in
    the middle of an interval; that run's folder and the interval it died in."""
    attempts = []
    for n, (interval, fraction) in enumerate(MOMENTS):
        killed = tmp_path / f"killed-{n}"
        code = _kill_during(killed, interval, fraction)
        saved = Log.read(killed)
        log.info("kill aimed in interval %d (+%.2f): exit %d, %s", interval, fraction, code, saved)
        died_in = saved.killed_mid_interval() if code == -signal.SIGKILL else None
        if died_in is not None:
            return killed, died_in
        attempts.append((interval, fraction, code, saved))
    pytest.fail(f"no kill landed in the middle of an interval: {attempts}")


def _without(summary: dict[str, Any], keys: set[str]) -> dict[str, Any]:
    return {k: v for k, v in summary.items() if k not in keys}


def _same_folder(a: Path, b: Path, csvs: Sequence[str]) -> None:
    for name in csvs:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    for name in ("summary.json", "run.json"):
        left, right = json.loads((a / name).read_text()), json.loads((b / name).read_text())
        assert _without(left, WALL_CLOCK_KEYS) == _without(right, WALL_CLOCK_KEYS), name
    # the resumed chain is the uninterrupted one, transaction for transaction
    for name in ("ledger.json", "txlog.jsonl"):
        assert (a / "chain" / name).read_bytes() == (b / "chain" / name).read_bytes(), name


@pytest.mark.slow
def test_killed_mid_interval_resumes_to_the_uninterrupted_result(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reference = tmp_path / "reference"
    with (tmp_path / "reference.stderr").open("w") as err:
        uninterrupted = subprocess.Popen(
            _run_command(reference), stdout=subprocess.DEVNULL, stderr=err
        )
        try:
            killed, died_in = _kill_mid_interval(tmp_path)
            assert uninterrupted.wait() == 0, (tmp_path / "reference.stderr").read_text()
        finally:
            if uninterrupted.poll() is None:
                uninterrupted.kill()
                uninterrupted.wait()

    resumed = subprocess.run(
        _run_command(killed, "--resume", verbose=True),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming from interval {died_in}" in resumed.stderr
    assert Log.read(killed).intervals == tuple(range(INTERVALS))

    csvs = sorted(p.name for p in reference.glob("*.csv"))
    assert {"trades.csv", "rounds.csv", "settlement.csv", "intervals.csv"} <= set(csvs)
    _same_folder(reference, killed, csvs)
    summary = json.loads((killed / "summary.json").read_text())
    assert summary["onchain_matches_reference"] is True and summary["conservation_ok"] is True

    capsys.readouterr()
    assert main(["audit", str(killed)]) == 0
    assert "audit: OK" in capsys.readouterr().out


@pytest.mark.slow  # fast lane budget: 10-30 s
def test_killed_while_writing_a_record_resumes_and_audits_every_interval(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A kill while the log record of interval 2 is being written leaves its first half on
    disk: the log as the killed process would leave it, made by cutting a finished run's."""
    out = tmp_path / "run"
    args = ["run", str(IEEE33), "--out", str(out), "-q", "--set", "horizon.first_interval=46"]
    args += ["--set", "horizon.intervals=3"]
    assert main(args) == 0
    txlog = out / "chain" / "txlog.jsonl"
    setup, first, second, third = txlog.read_text().splitlines(keepends=True)
    txlog.write_text(setup + first + second + third[: len(third) // 2])
    assert Log.read(out).partial
    assert main([*args, "--resume"]) == 0
    capsys.readouterr()
    assert main(["audit", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "intervals_settled: 3" in printed
    assert "settled_intervals: 0-2" in printed and "missing_intervals: none" in printed
    assert Log.read(out) == Log(("setup", "interval", "interval", "interval"), (0, 1, 2), False)
