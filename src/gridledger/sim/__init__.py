"""The simulation: the interval loop, its typed seam to the chain, and the chain runner."""

from __future__ import annotations

from gridledger.sim.loop import IntervalOutcome, RunResult, make_mechanism, positions_for, run
from gridledger.sim.ports import LedgerPort
from gridledger.sim.runner import audit_folder, run_with_chain

__all__ = [
    "IntervalOutcome",
    "LedgerPort",
    "RunResult",
    "audit_folder",
    "make_mechanism",
    "positions_for",
    "run",
    "run_with_chain",
]
