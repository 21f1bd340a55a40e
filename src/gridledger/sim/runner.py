"""Run a scenario on its chain backend: set up or resume the chain, run the loop, audit."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from tqdm import tqdm

from gridledger.errors import GridledgerError
from gridledger.ledger import Ledger, members_for_ledger
from gridledger.ledger.audit import AuditReport, audit
from gridledger.scenario import Scenario, max_rounds
from gridledger.sim.loop import RunResult, run
from gridledger.world import build_world

__all__ = ["CHAIN_DIR", "audit_folder", "run_with_chain"]

log = logging.getLogger(__name__)

CHAIN_DIR = "chain"


def _open_ledger(scenario: Scenario, out: Path, resume: bool) -> Ledger | None:
    backend = scenario.chain.backend
    if backend == "none":
        return None
    state_dir = out / CHAIN_DIR
    if not resume and state_dir.exists() and any(state_dir.iterdir()):
        message = (
            f"{state_dir}: a chain from an earlier run is there; "
            "use --resume to continue it or choose another --out"
        )
        raise GridledgerError(message)
    state_dir.mkdir(parents=True, exist_ok=True)
    return Ledger.connect(backend, state_dir=state_dir)


def run_with_chain(
    scenario: Scenario, out: Path, *, resume: bool = False, progress: bool = False
) -> RunResult:
    """Run ``scenario``, recording on the scenario's chain backend (state in ``out/chain``)."""
    world = build_world(scenario)
    ledger = _open_ledger(scenario, out, resume)
    resume_from = 0
    if ledger is not None:
        if resume and ledger.is_set_up():
            last = ledger.last_settled_interval()
            resume_from = 0 if last is None else last + 1
            log.info("resuming from interval %d", resume_from)
        else:
            ledger.setup(
                members_for_ledger(world.members.members),
                world.tariffs,
                max_rounds(scenario.market),
                deposit_micro=10**12,
                clearing=scenario.market.clearing,
                fees=world.fees,
                kappa=world.kappa,
            )
    bar = tqdm(
        total=scenario.horizon.intervals,
        desc=f"{scenario.name} ({scenario.chain.backend})",
        unit="interval",
        disable=not progress,
    )
    try:
        result = run(
            scenario,
            ledger=ledger,
            world=world,
            resume_from=resume_from,
            progress=lambda _t: _tick(bar),
        )
    finally:
        bar.close()
    if ledger is not None:
        result.chain_stats = ledger.stats().as_dict()
        result.chain_conserved = bool(ledger.conserved())
        result.chain = scenario.chain.backend
    return result


def _tick(bar: tqdm) -> None:
    bar.update(1)


def audit_folder(out: Path, chain: str | None = None) -> AuditReport:
    """Re-derive clearing and settlement from the chain of a saved run; with a ``run.json``
    (a finished run), every interval of its horizon must be settled on chain."""
    source = chain or "embedded"
    ledger = Ledger.connect(source, state_dir=out / CHAIN_DIR, read_only=True)
    return audit(ledger, expected_intervals=_horizon(out))


def _horizon(out: Path) -> int | None:
    """``scenario.horizon.intervals`` of ``out/run.json``, None without a readable one."""
    try:
        meta = json.loads((out / "run.json").read_text())
        intervals = meta["scenario"]["horizon"]["intervals"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return intervals if isinstance(intervals, int) else None
