"""Builders of bad input for the command-line tests (``tests/cli/test_bad_inputs.py``).

Each builder returns a setup: a function of the case's folder that writes a broken
scenario (``bad.toml``) or damages the copy of the real run in ``run/`` (its saved
chain in ``run/chain/``, its ``run.json`` and CSV tables).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from tests.keykit import make_keys

__all__ = [
    "SCENARIO",
    "Setup",
    "both",
    "csv_edit",
    "delete",
    "earlier_results",
    "edited",
    "flip_hex_digit",
    "folder_as",
    "ledger_json",
    "run_json",
    "scenario_bytes",
    "scenario_text",
    "truncate",
    "txlog_lines",
    "with_keys",
    "with_override",
    "write_to",
]

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "ieee33.toml"
"""The shipped main scenario, by absolute path."""

Setup = Callable[[Path], None]
"""Builds a case's bad input in the case's folder."""


def scenario_text(text: str) -> Setup:
    def write(tmp: Path) -> None:
        (tmp / "bad.toml").write_text(text, encoding="utf-8")

    return write


def scenario_bytes(data: bytes) -> Setup:
    def write(tmp: Path) -> None:
        (tmp / "bad.toml").write_bytes(data)

    return write


def edited(old: str, new: str, *more: str) -> Setup:
    """The shipped scenario with the first ``old`` replaced by ``new`` (and so on for
    further old, new pairs in ``more``)."""

    def write(tmp: Path) -> None:
        text = SCENARIO.read_text(encoding="utf-8")
        pairs = [(old, new), *zip(more[::2], more[1::2], strict=True)]
        for before, after in pairs:
            assert before in text, f"{before!r} is not in {SCENARIO}"
            text = text.replace(before, after, 1)
        (tmp / "bad.toml").write_text(text, encoding="utf-8")

    return write


def with_override(line: str) -> Setup:
    """The shipped scenario with one ``[[members.overrides]]`` entry for bus 5."""
    return edited("[market]", f"[[members.overrides]]\nbus = 5\n{line}\n\n[market]")


def chain_file(tmp: Path, name: str) -> Path:
    return tmp / "run" / "chain" / name


def delete(relative: str) -> Setup:
    def remove(tmp: Path) -> None:
        path = tmp / relative
        shutil.rmtree(path) if path.is_dir() else path.unlink()

    return remove


def write_to(relative: str, data: bytes) -> Setup:
    def write(tmp: Path) -> None:
        (tmp / relative).write_bytes(data)

    return write


def truncate(relative: str, keep: float = 0.5) -> Setup:
    """Keep the first ``keep`` share of the file's bytes."""

    def cut(tmp: Path) -> None:
        path = tmp / relative
        data = path.read_bytes()
        path.write_bytes(data[: int(len(data) * keep)])

    return cut


def txlog_lines(change: Callable[[list[bytes]], list[bytes]]) -> Setup:
    """Rewrite ``txlog.jsonl`` line by line (each line keeps its newline)."""

    def rewrite(tmp: Path) -> None:
        path = chain_file(tmp, "txlog.jsonl")
        lines = path.read_bytes().splitlines(keepends=True)
        assert len(lines) == 3, "the short run logs setup + 2 intervals"
        path.write_bytes(b"".join(change(lines)))

    return rewrite


def flip_hex_digit(lines: list[bytes]) -> list[bytes]:
    """Change one hex digit of the first transaction of record 2."""
    record = json.loads(lines[1])
    tx = record["txs"][0]
    record["txs"][0] = tx[:100] + ("0" if tx[100] != "0" else "1") + tx[101:]
    return [lines[0], json.dumps(record, separators=(",", ":")).encode() + b"\n", lines[2]]


def json_edit(relative: str, change: Callable[[dict[str, Any]], object]) -> Setup:
    """Rewrite a JSON object file after ``change`` edited it in place."""

    def rewrite(tmp: Path) -> None:
        path = tmp / relative
        data = json.loads(path.read_text(encoding="utf-8"))
        change(data)
        path.write_text(json.dumps(data), encoding="utf-8")

    return rewrite


def ledger_json(change: Callable[[dict[str, Any]], object]) -> Setup:
    return json_edit("run/chain/ledger.json", change)


def run_json(change: Callable[[dict[str, Any]], object]) -> Setup:
    return json_edit("run/run.json", change)


def csv_edit(name: str, change: Callable[[pd.DataFrame], pd.DataFrame]) -> Setup:
    """Rewrite table ``name`` of the run copy through ``change``."""

    def rewrite(tmp: Path) -> None:
        path = tmp / "run" / name
        change(pd.read_csv(path, dtype=str)).to_csv(path, index=False)

    return rewrite


def earlier_results(folder: str, *names: str) -> Setup:
    def make(tmp: Path) -> None:
        (tmp / folder).mkdir()
        for name in names:
            (tmp / folder / name).write_text("{}\n", encoding="utf-8")

    return make


def folder_as(relative: str) -> Setup:
    """A folder where a command writes a file."""

    def make(tmp: Path) -> None:
        path = tmp / relative
        if path.exists():
            path.unlink()
        path.mkdir()

    return make


def both(*setups: Setup) -> Setup:
    def run_all(tmp: Path) -> None:
        for setup in setups:
            setup(tmp)

    return run_all


def with_keys(tmp: Path) -> None:
    """A keys folder ``{tmp}/keys`` for the shipped scenario's members (ids 0..33) and
    its password file ``{tmp}/keys-password.txt`` (light scrypt: tests only)."""
    make_keys(tmp / "keys", range(34))
