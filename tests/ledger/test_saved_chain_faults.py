"""Damage to a saved chain is detected by name, never replayed into another chain state.

One short chain (setup and three intervals) is saved once per module. Hypothesis draws a
damage to its ``txlog.jsonl`` (truncate, flip a byte, drop, duplicate or swap records);
opening the folder must either raise a :class:`SavedChainError` naming the file and the
record, or (only when the damage removed the end of the log) rebuild exactly the chain
of the undamaged records that remain.
"""

from __future__ import annotations

import logging
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from benchmarks.markets import random_bids
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from gridledger.errors import SavedChainDamaged, SavedChainError
from gridledger.ledger import Ledger, LedgerMember
from gridledger.market import Tariffs

TARIFFS = Tariffs(300_000, 80_000)
MEMBERS = [LedgerMember(i, i % 4 + 1, 0) for i in range(5)]
INTERVALS = 3


def run_interval(ledger: Ledger, t: int) -> None:
    rng = random.Random(t)
    for k in range(2):
        ledger.record_round(t, k, random_bids(MEMBERS, rng))
    ledger.clear(t)
    ledger.record_security(t, [])
    ledger.record_readings(t, {m.id: rng.randint(-900, 900) for m in MEMBERS})
    ledger.settle(t)
    ledger.end_interval(t)


def fingerprint(ledger: Ledger) -> tuple[Any, ...]:
    """State root of the head block, escrow balances, last settled interval, counters."""
    root = ledger.backend.chain.get_canonical_head().state_root  # type: ignore[attr-defined]
    return (root, ledger.balances(), ledger.last_settled_interval(), ledger.stats().tx_count)


@dataclass(frozen=True)
class Saved:
    folder: Path
    lines: list[bytes]  # the log's records, each with its newline
    states: list[tuple[Any, ...]]  # fingerprint after the first k records, k = 1..


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Saved:
    root = tmp_path_factory.mktemp("saved")
    folder = root / "chain"
    ledger = Ledger.connect("embedded", state_dir=folder)
    ledger.setup(MEMBERS, TARIFFS, 2, 10**9, run={"scenario": "faults", "intervals": INTERVALS})
    for t in range(INTERVALS):
        run_interval(ledger, t)
    lines = (folder / "txlog.jsonl").read_bytes().splitlines(keepends=True)
    assert len(lines) == INTERVALS + 1
    states = [None]  # index k: after k records (k = 0 is no chain at all)
    for k in range(1, len(lines) + 1):
        prefix = root / f"prefix-{k}"
        shutil.copytree(folder, prefix)
        (prefix / "txlog.jsonl").write_bytes(b"".join(lines[:k]))
        states.append(fingerprint(Ledger.connect("embedded", state_dir=prefix, read_only=True)))
    assert states[-1] == fingerprint(ledger)
    return Saved(folder, lines, states)  # type: ignore[arg-type]


@st.composite
def damages(draw: st.DrawFn, lengths: list[int]) -> tuple[str, int, int]:
    """``(kind, where, other)``: a byte offset and XOR mask (truncate, flip; the line is
    drawn first, so that the small interval records are hit as often as the setup's) or
    two distinct line indices (drop, duplicate, swap)."""
    kind = draw(st.sampled_from(["truncate", "flip", "drop", "duplicate", "swap"]))
    line = draw(st.integers(0, len(lengths) - 1))
    if kind in ("truncate", "flip"):
        where = sum(lengths[:line]) + draw(st.integers(0, lengths[line] - 1))
        return kind, where, draw(st.integers(1, 255))
    other = draw(st.integers(0, len(lengths) - 2))
    return kind, line, other if other < line else other + 1


def damage(lines: list[bytes], kind: str, where: int, other: int) -> tuple[bytes, bool]:
    """The damaged log and whether the damage only removed the log's end (so that a
    clean shorter log may remain, which no check can tell from an earlier kill)."""
    data = b"".join(lines)
    if kind == "truncate":
        return data[:where], True
    if kind == "flip":
        flipped = bytearray(data)
        flipped[where] ^= other
        return bytes(flipped), where == len(data) - 1  # the last newline: a torn record
    out = list(lines)
    if kind == "drop":
        del out[where]
        return b"".join(out), where == len(lines) - 1
    if kind == "duplicate":
        out.insert(other, lines[where])
    else:
        out[where], out[other] = out[other], out[where]
    return b"".join(out), False


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_damage_is_detected_or_only_cuts_the_end(
    saved: Saved, data: st.DataObject, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lengths = [len(line) for line in saved.lines]
    kind, where, other = data.draw(damages(lengths), label="damage")
    damaged, only_the_end = damage(saved.lines, kind, where, other)
    folder = tmp_path / f"case-{kind}-{where}-{other}"
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(saved.folder, folder)
    txlog = folder / "txlog.jsonl"
    txlog.write_bytes(damaged)
    caplog.clear()
    try:
        with caplog.at_level(logging.WARNING, logger="gridledger.ledger.store"):
            ledger = Ledger.connect("embedded", state_dir=folder)
    except SavedChainError as error:
        event(f"{kind}: detected")
        assert isinstance(error, SavedChainDamaged), error
        assert str(error).startswith(str(folder)), error
        assert "saved chain damaged" in str(error)
        if kind in ("flip", "drop", "duplicate", "swap") and not only_the_end:
            assert "txlog.jsonl: saved chain damaged at record " in str(error)
        assert txlog.read_bytes() == damaged  # a damaged folder is left as it was
        return
    event(f"{kind}: the end cut")
    assert only_the_end, f"{kind} at {where}/{other} was not detected"
    kept = len(txlog.read_bytes().splitlines()) if txlog.exists() else 0
    assert txlog.read_bytes() == b"".join(saved.lines[:kept])  # torn part cut, rest intact
    assert damaged.startswith(txlog.read_bytes())
    if not damaged.endswith(b"\n") and damaged:
        assert f"record {kept + 1} is incomplete" in caplog.text
    if not ledger.is_set_up():
        assert kept == 0  # the setup record itself was torn: set up again
        return
    assert fingerprint(ledger) == saved.states[kept]


def test_torn_tail_read_only_leaves_the_file(saved: Saved, tmp_path: Path) -> None:
    folder = tmp_path / "chain"
    shutil.copytree(saved.folder, folder)
    torn = b"".join(saved.lines[:-1]) + saved.lines[-1][:100]
    (folder / "txlog.jsonl").write_bytes(torn)
    reader = Ledger.connect("embedded", state_dir=folder, read_only=True)
    assert fingerprint(reader) == saved.states[-2]
    assert (folder / "txlog.jsonl").read_bytes() == torn


def test_stats_and_run_facts_are_restored(saved: Saved, tmp_path: Path) -> None:
    folder = tmp_path / "chain"
    shutil.copytree(saved.folder, folder)
    ledger = Ledger.connect("embedded", state_dir=folder)
    assert ledger.saved_run() == {"scenario": "faults", "intervals": INTERVALS}
    assert ledger.stats().intervals == INTERVALS
    assert ledger.stats().tx_count == saved.states[-1][3]
