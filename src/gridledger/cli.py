"""Command line: ``gridledger run | report | audit | compare``.

A thin shell over the library: it parses arguments, sets up logging, shows a
progress bar and prints a summary table. Errors the library raises on purpose
(:class:`~gridledger.errors.GridledgerError`) end the program with their message
and exit code 2, without a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from gridledger.errors import GridledgerError
from gridledger.report.folder import run_to_folder
from gridledger.report.html import rebuild_report
from gridledger.scenario import load_scenario
from gridledger.sim.runner import audit_folder
from gridledger.studies.compare import compare
from gridledger.studies.experiments import run_experiment

__all__ = ["main"]

log = logging.getLogger("gridledger")

SUMMARY_KEYS = (
    "intervals",
    "members",
    "mechanism",
    "clearing",
    "network_fee_method",
    "traded_kwh",
    "p2p_share",
    "social_welfare",
    "mean_trade_distance_km",
    "local_share",
    "grid_import_kwh",
    "grid_export_kwh",
    "v_min_pu",
    "v_max_pu",
    "max_line_loading_pct",
    "violations_before",
    "violations_after",
    "curtailed_kwh",
    "lost_surplus",
    "efficiency",
    "chain",
    "tx_count",
    "gas_per_bid",
    "onchain_matches_reference",
    "runtime_s",
)


def _print_summary(kpis: dict[str, Any], title: str) -> None:
    table = Table(title=title)
    table.add_column("KPI")
    table.add_column("value", justify="right")
    for key in SUMMARY_KEYS:
        if key in kpis and kpis[key] is not None:
            value = kpis[key]
            shown = f"{value:,.4f}" if isinstance(value, float) else str(value)
            table.add_row(key, shown)
    Console(stderr=False).print(table)


def _cmd_run(args: argparse.Namespace) -> int:
    overrides = list(args.set or [])
    if args.seed is not None:
        overrides.append(f"seed={args.seed}")
    if args.chain is not None:
        overrides.append(f'chain.backend="{args.chain}"')
    if args.mechanism is not None:
        # the run's mechanism; trader mechanisms also become every member's strategy
        overrides.append(f'market.mechanism="{args.mechanism}"')
        if args.mechanism != "best-response":
            overrides.append(f'members.strategy="{args.mechanism}"')
    scenario = load_scenario(args.scenario, overrides)
    out = Path(args.out) if args.out else Path("runs") / scenario.name
    kpis = run_to_folder(scenario, out, resume=args.resume, progress=not args.quiet)
    _print_summary(kpis, f"gridledger run: {scenario.name} -> {out}")
    print(f"report: {out / 'report.html'}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    path = rebuild_report(Path(args.dir))
    kpis = json.loads((Path(args.dir) / "summary.json").read_text())
    _print_summary(kpis, f"gridledger report: {args.dir}")
    print(f"report: {path}")
    return 0


def _cmd_audit(args: argparse.Namespace) -> int:
    report = audit_folder(Path(args.dir), chain=args.chain)
    facts = report.as_dict()
    problems = facts.pop("problems")
    for key, value in facts.items():
        print(f"{key:>20}: {value}")
    for problem in problems:
        print(f"  problem: {problem}")
    print("audit: OK, chain data re-derive to the reference" if report.ok else "audit: FAILED")
    return 0 if report.ok else 1


def _cmd_compare(args: argparse.Namespace) -> int:
    table = compare(
        Path(args.scenario),
        vary=args.vary,
        overrides=list(args.set or []),
        out=Path(args.out) if args.out else None,
        progress=not args.quiet,
    )
    print(table)
    return 0


def _cmd_experiment(args: argparse.Namespace) -> int:
    out = Path(args.out) if args.out else Path("runs") / f"experiment-{args.name}"
    table = run_experiment(
        args.name,
        Path(args.scenario) if args.scenario else None,
        list(args.set or []),
        out,
        seed=args.seed,
    )
    print(table.to_string(index=False))
    print(f"written: {out / (args.name + '.csv')}, {out / (args.name + '.html')}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gridledger",
        description="Peer-to-peer electricity trading on distribution feeders, on a ledger.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a scenario and write results and report")
    run.add_argument(
        "scenario", help="scenario TOML file, or a shipped name (ieee33, cigre_lv, ieee33_stressed)"
    )
    run.add_argument("--out", help="output folder (default runs/<scenario name>)")
    run.add_argument("--seed", type=int, help="override the scenario's seed")
    run.add_argument("--set", action="append", metavar="KEY.PATH=VALUE", help="override a key")
    run.add_argument("--chain", help="embedded | none | http://host:port (overrides chain.backend)")
    run.add_argument("--mechanism", help="zi | aa | best-response (overrides market.mechanism)")
    run.add_argument("--resume", action="store_true", help="resume an interrupted run from chain")
    run.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    run.set_defaults(func=_cmd_run)

    report = sub.add_parser("report", help="rebuild summary.json and report.html from a folder")
    report.add_argument("dir")
    report.set_defaults(func=_cmd_report)

    audit = sub.add_parser("audit", help="re-derive clearing and settlement from chain data")
    audit.add_argument("dir", help="output folder of a run recorded on chain")
    audit.add_argument("--chain", help="JSON-RPC URL to audit instead of the saved embedded chain")
    audit.set_defaults(func=_cmd_audit)

    compare = sub.add_parser("compare", help="run a scenario under several settings, side by side")
    compare.add_argument("scenario")
    compare.add_argument(
        "--vary",
        action="append",
        required=True,
        metavar="KEY.PATH=V1,V2,...",
        help="key to vary and its values (repeatable: the settings are combined one by one)",
    )
    compare.add_argument("--set", action="append", metavar="KEY.PATH=VALUE")
    compare.add_argument("--out", help="output folder (default runs/compare-<scenario name>)")
    compare.add_argument("-q", "--quiet", action="store_true")
    compare.set_defaults(func=_cmd_compare)

    experiment = sub.add_parser(
        "experiment",
        help="run a named experiment: attitudes | aa-convergence | best-response | forecast-errors",
    )
    experiment.add_argument(
        "name", choices=["attitudes", "aa-convergence", "best-response", "forecast-errors"]
    )
    experiment.add_argument("--scenario", help="scenario TOML (best-response, forecast-errors)")
    experiment.add_argument("--set", action="append", metavar="KEY.PATH=VALUE")
    experiment.add_argument("--seed", type=int)
    experiment.add_argument("--out", help="output folder (default runs/experiment-<name>)")
    experiment.set_defaults(func=_cmd_experiment)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args))
    except GridledgerError as error:
        print(f"gridledger: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
