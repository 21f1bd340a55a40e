"""A run into an output folder: the folder checked, the run on its chain, then tables,
summary and report.

An output folder is a record: :func:`prepare_out_dir` refuses a folder that already
holds earlier results unless the command continues it (``--resume``) or replaces its
derived files (``--force``); a saved chain is never replaced.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gridledger.errors import UsageError
from gridledger.report.html import write_report
from gridledger.report.kpis import summary
from gridledger.report.tables import build_tables, save_tables
from gridledger.scenario import Scenario
from gridledger.sim.runner import CHAIN_DIR, run_with_chain

__all__ = ["RUN_OUTPUTS", "prepare_out_dir", "run_to_folder"]

log = logging.getLogger(__name__)

RUN_OUTPUTS = ("run.json", "summary.json", "report.html", "trades.csv", CHAIN_DIR)
"""Entries that mark a folder as holding a run's results."""


def _first_file_on_path(path: Path) -> Path | None:
    """The first existing ancestor of ``path`` (itself included) that is not a folder."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return None if candidate.is_dir() else candidate
    return None


def prepare_out_dir(
    out: Path,
    *,
    outputs: Sequence[str] = RUN_OUTPUTS,
    resume: bool = False,
    force: bool = False,
    option: str = "--out",
) -> None:
    """Check that ``out`` can take new results, then create it.

    Raises :class:`~gridledger.errors.UsageError` naming the path when ``out`` or a
    folder above it is a file, when it cannot be created or written, or when it
    already holds any of ``outputs`` and neither ``resume`` nor ``force`` is set.
    ``force`` replaces derived files but never a saved chain (``chain/``).
    """
    blocker = _first_file_on_path(out)
    if blocker is not None:
        where = "is a file" if blocker == out else f"cannot be created: {blocker} is a file"
        message = f"{option} {out}: {where}; give a folder"
        raise UsageError(message)
    if out.is_dir() and not resume:
        found = [name for name in outputs if (out / name).exists()]
        if CHAIN_DIR in found and any((out / CHAIN_DIR).iterdir()):
            message = (
                f"{option} {out}: holds a saved chain ({out / CHAIN_DIR}), which is never "
                "overwritten; use --resume to continue that run, or choose another folder"
            )
            raise UsageError(message)
        if found and not force:
            message = (
                f"{option} {out}: holds earlier results ({', '.join(found)}); "
                "choose another folder, or --force to replace them"
            )
            raise UsageError(message)
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as error:
        message = f"{option} {out}: cannot create or write there ({error.strerror})"
        raise UsageError(message) from None


def run_to_folder(
    scenario: Scenario,
    out: Path,
    *,
    resume: bool = False,
    force: bool = False,
    progress: bool = False,
) -> dict[str, Any]:
    """Run and write tables, ``summary.json`` and ``report.html`` into ``out``."""
    prepare_out_dir(out, resume=resume, force=force)
    result = run_with_chain(scenario, out, resume=resume, progress=progress)
    tables = build_tables(result)
    save_tables(tables, out)
    write_report(tables, out)
    return summary(tables)
