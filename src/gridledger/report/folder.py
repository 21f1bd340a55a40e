"""A run into an output folder: the run on its chain, then tables, summary and report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gridledger.report.html import write_report
from gridledger.report.kpis import summary
from gridledger.report.tables import build_tables, save_tables
from gridledger.scenario import Scenario
from gridledger.sim.runner import run_with_chain

__all__ = ["run_to_folder"]


def run_to_folder(
    scenario: Scenario, out: Path, *, resume: bool = False, progress: bool = False
) -> dict[str, Any]:
    """Run and write tables, ``summary.json`` and ``report.html`` into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    result = run_with_chain(scenario, out, resume=resume, progress=progress)
    tables = build_tables(result)
    save_tables(tables, out)
    write_report(tables, out)
    return summary(tables)
