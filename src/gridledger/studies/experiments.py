"""Named experiments behind ``gridledger experiment NAME``: a table (CSV) and a page (HTML).

- ``attitudes``: AA traders by risk attitude on matched seeded markets, 50 seeds
  (trade rate and margin per kWh with 95 % confidence intervals, and of the adjacent
  differences; :mod:`gridledger.studies.aa_markets`).
- ``aa-convergence``: AA transaction prices against the competitive equilibrium
  in a stationary symmetric market, per interval.
- ``aa-equilibrium``: AA (three attitudes) against ZI-C and ZIP on symmetric schedules
  with p0 at 7 positions of the tariff band and two asymmetric schedules, 30 seeds
  (:mod:`gridledger.studies.aa_equilibrium`).
- ``best-response``: best response with the network fee in the utilities vs
  without, vs AA traders, on a scenario's intervals (local consumption of DG).
- ``forecast-errors``: imbalance payments and P2P welfare as forecast error grows.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from gridledger.errors import UsageError
from gridledger.report.folder import prepare_out_dir
from gridledger.report.html import Block, Image, Page, Table, write_page
from gridledger.scenario import load_scenario
from gridledger.studies.aa_equilibrium import (
    equilibrium_summary,
    equilibrium_table,
    interval_means,
    plot_equilibrium,
)
from gridledger.studies.aa_markets import attitude_table, convergence_table, plot_convergence
from gridledger.studies.best_response import ExperimentTrace, compare_world, plot_experiment
from gridledger.studies.forecast_errors import forecast_error_study, plot_forecast_study
from gridledger.world import build_world

__all__ = [
    "EXPERIMENTS",
    "FILE_STEMS",
    "NEEDS_SCENARIO",
    "Experiment",
    "ExperimentResult",
    "output_stem",
    "run_experiment",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExperimentResult:
    """What an experiment produced: its full table (the CSV), a figure, and for long
    tables a summary (shown on its page and printed instead of the full table)."""

    table: pd.DataFrame
    figure: Figure | None = None
    summary: pd.DataFrame | None = None

    @property
    def shown(self) -> pd.DataFrame:
        """The table a reader sees first: the summary if there is one."""
        return self.table if self.summary is None else self.summary


Experiment = Callable[[Path | None, list[str], int | None], ExperimentResult]
"""(scenario file or None, ``--set`` overrides, seed or None) -> result."""

ATTITUDE_SEEDS = 50
EQUILIBRIUM_SEEDS = 30


def _attitudes(scenario: Path | None, overrides: list[str], seed: int | None) -> ExperimentResult:
    first = 0 if seed is None else seed
    return ExperimentResult(attitude_table(seeds=tuple(range(first, first + ATTITUDE_SEEDS))))


def _aa_equilibrium(
    scenario: Path | None, overrides: list[str], seed: int | None
) -> ExperimentResult:
    first = 0 if seed is None else seed
    strategies = [("aa", "neutral"), ("aa", "averse"), ("aa", "seeking")]
    strategies += [("zi", "neutral"), ("zip", "neutral")]
    runs = equilibrium_table(
        seeds=tuple(range(first, first + EQUILIBRIUM_SEEDS)), strategies=strategies
    )
    return ExperimentResult(interval_means(runs), plot_equilibrium(runs), equilibrium_summary(runs))


def _aa_convergence(
    scenario: Path | None, overrides: list[str], seed: int | None
) -> ExperimentResult:
    table = convergence_table(intervals=10, seed=0 if seed is None else seed)
    return ExperimentResult(table, plot_convergence(table))


def _need_scenario(scenario: Path | None, name: str) -> Path:
    if scenario is None:
        message = f"experiment {name!r} needs a scenario file (--scenario)"
        raise UsageError(message)
    return scenario


def _best_response(
    scenario: Path | None, overrides: list[str], seed: int | None
) -> ExperimentResult:
    path = _need_scenario(scenario, "best-response")
    sets = ['market.clearing="greedy"', *overrides]
    if seed is not None:
        sets.append(f"seed={seed}")
    loaded = load_scenario(path, sets)
    if loaded.market.network_fee == "none":
        loaded = load_scenario(path, ['market.network_fee="distance"', *sets])
    world = build_world(loaded)
    trace = ExperimentTrace()
    table = compare_world(world, trace=trace)
    return ExperimentResult(table.reset_index(), plot_experiment(table, trace))


def _forecast_errors(
    scenario: Path | None, overrides: list[str], seed: int | None
) -> ExperimentResult:
    path = _need_scenario(scenario, "forecast-errors")
    sets = ["chain.backend=none", *overrides]
    if seed is not None:
        sets.append(f"seed={seed}")
    table = forecast_error_study(load_scenario(path, sets))
    return ExperimentResult(table, plot_forecast_study(table))


EXPERIMENTS: dict[str, Experiment] = {
    "attitudes": _attitudes,
    "aa-convergence": _aa_convergence,
    "aa-equilibrium": _aa_equilibrium,
    "best-response": _best_response,
    "forecast-errors": _forecast_errors,
}
NEEDS_SCENARIO = ("best-response", "forecast-errors")
"""Experiments that run on a scenario file (``--scenario``)."""
FILE_STEMS = {"aa-equilibrium": "aa_equilibrium"}
"""File name (without suffix) of an experiment's CSV and HTML where it is not its name."""


def output_stem(name: str) -> str:
    """The file name (without suffix) of experiment ``name``'s CSV and HTML."""
    return FILE_STEMS.get(name, name)


def run_experiment(
    name: str,
    scenario: Path | None,
    overrides: list[str],
    out: Path,
    seed: int | None = None,
    force: bool = False,
) -> ExperimentResult:
    """Run experiment ``name``; write ``<stem>.csv`` and ``<stem>.html`` into ``out``
    (the stem is the name, or :data:`FILE_STEMS`: ``aa_equilibrium`` for ``aa-equilibrium``).

    ``force`` replaces the files of an earlier run of the same experiment in ``out``.
    """
    if name not in EXPERIMENTS:
        message = f"experiment {name!r} is not known; known: {sorted(EXPERIMENTS)}"
        raise UsageError(message)
    if name in NEEDS_SCENARIO:
        _need_scenario(scenario, name)
    if seed is not None and not 0 <= seed < 2**64:
        message = f"--seed {seed}: expected an integer from 0 to 2**64-1"
        raise UsageError(message)
    stem = output_stem(name)
    prepare_out_dir(out, outputs=(f"{stem}.csv", f"{stem}.html"), force=force)
    result = EXPERIMENTS[name](scenario, overrides, seed)
    result.table.to_csv(out / f"{stem}.csv", index=False)
    blocks: list[Block] = [Table(result.shown, index=False)]
    if result.figure is not None:
        blocks.append(Image.of(result.figure))
    write_page(
        Page(f"gridledger experiment {name}", f"Experiment: {name}", blocks),
        out / f"{stem}.html",
    )
    log.info("experiment %s written to %s", name, out)
    return result
