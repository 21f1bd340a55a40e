"""Command line: ``gridledger run | report | audit | serve | compare | experiment | keys``.

A thin shell over the library: it parses arguments, sets up logging, shows a
progress bar and prints a summary table. A user's mistake or a damaged file ends
the program with one message naming the file, key or value, without a traceback:
errors the library raises on purpose (:class:`~gridledger.errors.GridledgerError`)
exit with their ``exit_code`` (2 for usage, 1 at run time), and the operating
system's errors on the command's own files exit 1. An unexpected internal error
exits 1 with a request for a bug report; ``-v`` shows its traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import threading
import traceback
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console
from rich.table import Table

from gridledger.errors import GridledgerError, UsageError
from gridledger.explorer.app import (
    DEFAULT_PORT,
    Explorer,
    explorer_for,
    explorer_for_node,
    serve,
    serve_in_background,
    start_server,
)
from gridledger.explorer.nodeapp import NodeExplorer
from gridledger.ledger.keystore import (
    DEFAULT_SCRYPT_N,
    key_password,
    keystore_address,
    keystore_file,
    write_keystores,
)
from gridledger.report.folder import prepare_out_dir, run_to_folder
from gridledger.report.html import write_report
from gridledger.report.kpis import summary
from gridledger.report.tables import load_tables
from gridledger.scenario import load_scenario, url_problem
from gridledger.sim.runner import CHAIN_DIR, audit_folder, scenario_member_ids
from gridledger.studies.compare import compare, with_units
from gridledger.studies.experiments import output_stem, run_experiment

__all__ = ["main"]

log = logging.getLogger("gridledger")

KEYS_HELP = (
    "keys folder (gridledger keys init) to sign with (overrides chain.keys; required on a "
    "JSON-RPC node, where the simulation seed is refused)"
)
PASSWORD_HELP = (
    "file whose first line is the keys' password (default: the environment variable "
    "GRIDLEDGER_KEY_PASSWORD)"
)
PORT_HELP = f"explorer port on 127.0.0.1 (default {DEFAULT_PORT})"
FORCE_HELP = "replace the results of an earlier run in --out (a saved chain is never replaced)"

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
    "mean_buyer_price_per_kwh",
    "mean_seller_price_per_kwh",
    "mean_price_per_kwh",
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
    "solvent",
    "audit_findings",
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
        overrides.append(f"chain.backend={json.dumps(args.chain)}")
    if args.keys is not None:
        overrides.append(f"chain.keys={json.dumps(str(Path(args.keys).resolve()))}")
    if args.key_password_file is not None:
        password_file = str(Path(args.key_password_file).resolve())
        overrides.append(f"chain.key_password_file={json.dumps(password_file)}")
    if args.mechanism is not None:
        # the run's mechanism; trader mechanisms also become every member's strategy
        overrides.append(f'market.mechanism="{args.mechanism}"')
        if args.mechanism != "best-response":
            overrides.append(f'members.strategy="{args.mechanism}"')
    scenario = load_scenario(args.scenario, overrides)
    out = Path(args.out) if args.out else Path("runs") / scenario.name
    server = None
    if args.serve:
        # the explorer serves the folder from a thread while the run writes it
        prepare_out_dir(out, resume=args.resume, force=args.force)
        server = start_server(explorer_for(out, live=True), args.port)
        serve_in_background(server)
        print(f"explorer: http://127.0.0.1:{server.server_port}/ (follows the run)")
    kpis = run_to_folder(
        scenario, out, resume=args.resume, force=args.force, progress=not args.quiet
    )
    _print_summary(kpis, f"gridledger run: {scenario.name} -> {out}")
    print(f"report: {out / 'report.html'}")
    if server is not None:
        print(f"explorer: http://127.0.0.1:{server.server_port}/ serves the results; Ctrl-C stops")
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            print("explorer stopped")
        finally:
            server.shutdown()
    return 0


def _run_folder(name: str, what: str) -> Path:
    """``name`` as a folder; a usage error naming it when it is missing or a file."""
    folder = Path(name)
    if not folder.is_dir():
        found = "not a folder" if folder.exists() else "no such folder"
        message = f"{folder}: {found} (give the output folder of {what})"
        raise UsageError(message)
    return folder


def _cmd_report(args: argparse.Namespace) -> int:
    folder = _run_folder(args.dir, "a run")
    tables = load_tables(folder)
    path = write_report(tables, folder)
    _print_summary(summary(tables), f"gridledger report: {args.dir}")
    print(f"report: {path}")
    return 0


def _cmd_audit(args: argparse.Namespace) -> int:
    folder = _run_folder(args.dir, "a run on chain")
    if args.chain is not None and args.chain != "embedded":
        problem = (
            url_problem(args.chain)
            if args.chain.startswith(("http://", "https://"))
            else "use 'embedded' or an http(s) URL"
        )
        if problem:
            message = f"--chain {args.chain!r}: not a usable node URL ({problem})"
            raise UsageError(message)
    if not (folder / CHAIN_DIR).is_dir():
        message = (
            f"{folder}: not a run recorded on chain (no {CHAIN_DIR}/ folder); audit needs "
            "a run made with --chain embedded or --chain URL"
        )
        raise UsageError(message)
    keys_dir = None if args.keys is None else Path(args.keys)
    report = audit_folder(folder, chain=args.chain, keys_dir=keys_dir)
    facts = report.as_dict()
    problems = facts.pop("problems")
    for key, value in facts.items():
        print(f"{key:>20}: {value}")
    for problem in problems:
        print(f"  problem: {problem}")
    print("audit: OK, chain data re-derive to the reference" if report.ok else "audit: FAILED")
    return 0 if report.ok else 1


def _cmd_serve(args: argparse.Namespace) -> int:
    if args.chain is not None:
        problem = (
            url_problem(args.chain)
            if args.chain.startswith(("http://", "https://"))
            else "give an http(s) URL of a JSON-RPC node"
        )
        if problem:
            message = f"--chain {args.chain!r}: not a usable node URL ({problem})"
            raise UsageError(message)
    explorer: Explorer | NodeExplorer
    if args.dir is None and args.chain is None:
        message = "serve: give a run folder (RUN_DIR), or --chain URL of a node to explore"
        raise UsageError(message)
    if args.market is not None and args.dir is not None:
        message = "--market: only without RUN_DIR (a run folder names its own Market)"
        raise UsageError(message)
    if args.dir is None:
        explorer = explorer_for_node(args.chain, args.market)
    else:
        explorer = explorer_for(Path(args.dir), args.chain)
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how the explorer stops
        serve(explorer, args.port)
    print("explorer stopped")
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    table = compare(
        Path(args.scenario),
        vary=args.vary,
        overrides=list(args.set or []),
        out=Path(args.out) if args.out else None,
        progress=not args.quiet,
        force=args.force,
    )
    _print_compare(table)
    return 0


def _print_compare(table: pd.DataFrame) -> None:
    """Every variant and KPI of ``table``, units in the header, never truncated."""
    shown = with_units(table)
    out = Table()
    out.add_column(str(shown.index.name or "variant"), no_wrap=True)
    for column in shown.columns:
        out.add_column(str(column), justify="right", min_width=len(str(column)))
    for label, row in shown.iterrows():
        cells = [
            f"{v:,.4f}" if isinstance(v, float) else ("" if v is None else str(v)) for v in row
        ]
        out.add_row(str(label), *cells)
    # wide enough for every column: a narrow terminal (or a pipe) must not drop any
    labels = [str(v) for v in shown.index]
    first = max([len(str(shown.index.name or "variant")), *map(len, labels)])
    width = 4 + first + sum(3 + max(len(str(c)), 14) for c in shown.columns)
    Console(width=width).print(out)


def _cmd_experiment(args: argparse.Namespace) -> int:
    out = Path(args.out) if args.out else Path("runs") / f"experiment-{args.name}"
    result = run_experiment(
        args.name,
        Path(args.scenario) if args.scenario else None,
        list(args.set or []),
        out,
        seed=args.seed,
        force=args.force,
    )
    print(result.shown.to_string(index=False))
    stem = output_stem(args.name)
    print(f"written: {out / (stem + '.csv')}, {out / (stem + '.html')}")
    return 0


def _cmd_keys_init(args: argparse.Namespace) -> int:
    password_file = None if args.key_password_file is None else Path(args.key_password_file)
    password = key_password(password_file)
    scenario = load_scenario(args.scenario, list(args.set or []))
    members = scenario_member_ids(scenario)
    folder = Path(args.dir)
    written = write_keystores(folder, password, members, scrypt_n=args.scrypt_n)
    print(
        f"{folder}: {len(written.created)} keystore files created, {len(written.kept)} "
        f"already there kept (scenario {scenario.name}: {len(members)} members)"
    )
    for role in ("operator", "dso", "grid"):
        address = keystore_address(folder / keystore_file(role))
        print(f"{role:>9}: 0x{address.hex()}")
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
    run.add_argument("--keys", metavar="DIR", help=KEYS_HELP)
    run.add_argument("--key-password-file", metavar="FILE", help=PASSWORD_HELP)
    run.add_argument("--resume", action="store_true", help="resume an interrupted run from chain")
    run.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    run.add_argument("--force", action="store_true", help=FORCE_HELP)
    run.add_argument(
        "--serve",
        action="store_true",
        help="serve the explorer of --out while the run writes it, and after it until Ctrl-C",
    )
    run.add_argument("--port", type=int, default=DEFAULT_PORT, help=PORT_HELP)
    run.set_defaults(func=_cmd_run)

    report = sub.add_parser("report", help="rebuild summary.json and report.html from a folder")
    report.add_argument("dir")
    report.set_defaults(func=_cmd_report)

    audit = sub.add_parser("audit", help="re-derive clearing and settlement from chain data")
    audit.add_argument("dir", help="output folder of a run recorded on chain")
    audit.add_argument("--chain", help="JSON-RPC URL to audit instead of the saved embedded chain")
    audit.add_argument(
        "--keys",
        metavar="DIR",
        help="keys folder: check that its operator set up the chain (the audit signs nothing)",
    )
    audit.set_defaults(func=_cmd_audit)

    serve_cmd = sub.add_parser(
        "serve", help="the market explorer of a run folder or a node in the browser (127.0.0.1)"
    )
    serve_cmd.add_argument(
        "dir",
        nargs="?",
        help="output folder of a run (e.g. runs/ieee33); without it, --chain URL alone: the "
        "Markets found on that node, from their events",
    )
    serve_cmd.add_argument("--port", type=int, default=DEFAULT_PORT, help=PORT_HELP)
    serve_cmd.add_argument(
        "--chain",
        metavar="URL",
        help="read the run's chain events from this JSON-RPC node (pages follow it as "
        "intervals settle) instead of the saved embedded chain",
    )
    serve_cmd.add_argument(
        "--market",
        metavar="0xADDRESS",
        help="with --chain and no RUN_DIR: the Market to show (default: the newest on the node)",
    )
    serve_cmd.set_defaults(func=_cmd_serve)

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
    compare.add_argument("--force", action="store_true", help=FORCE_HELP)
    compare.set_defaults(func=_cmd_compare)

    experiment = sub.add_parser(
        "experiment",
        help=(
            "run a named experiment: attitudes | aa-convergence | aa-equilibrium | "
            "best-response | forecast-errors"
        ),
    )
    experiment.add_argument(
        "name",
        choices=[
            "attitudes",
            "aa-convergence",
            "aa-equilibrium",
            "best-response",
            "forecast-errors",
        ],
    )
    experiment.add_argument("--scenario", help="scenario TOML (best-response, forecast-errors)")
    experiment.add_argument("--set", action="append", metavar="KEY.PATH=VALUE")
    experiment.add_argument("--seed", type=int)
    experiment.add_argument("--out", help="output folder (default runs/experiment-<name>)")
    experiment.add_argument("--force", action="store_true", help=FORCE_HELP)
    experiment.set_defaults(func=_cmd_experiment)

    keys = sub.add_parser("keys", help="keys folders: encrypted keystore files, one per key")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    init = keys_sub.add_parser(
        "init",
        help=(
            "create operator.json, dso.json, grid.json, member-<id>.json and meter-<id>.json "
            "for a scenario's members (new random keys; existing files are kept)"
        ),
    )
    init.add_argument("dir", help="keys folder (created if missing)")
    init.add_argument(
        "--scenario", required=True, help="scenario TOML file or shipped name (ieee33, ...)"
    )
    init.add_argument("--set", action="append", metavar="KEY.PATH=VALUE", help="override a key")
    init.add_argument("--key-password-file", metavar="FILE", help=PASSWORD_HELP)
    init.add_argument(
        "--scrypt-n",
        type=int,
        default=DEFAULT_SCRYPT_N,
        metavar="N",
        help=f"scrypt work factor, a power of two (default {DEFAULT_SCRYPT_N}; docs/ledger.md)",
    )
    init.set_defaults(func=_cmd_keys_init)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit code (0 ok, 1 run-time failure, 2 usage)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args))
    except GridledgerError as error:
        _say(f"error: {error}")
        return error.exit_code
    except OSError as error:
        # the command's own files: unreadable input, a full disk, a vanished folder
        where = f"{error.filename}: " if error.filename else ""
        _say(f"error: {where}{error.strerror or error}")
        return 1
    except KeyboardInterrupt:
        _say("interrupted (a run on chain continues with --resume)")
        return 130
    except Exception as error:  # an internal error: a bug, never the user's mistake
        if args.verbose:
            traceback.print_exc()
        _say(
            f"internal error: {type(error).__name__}: {error}\n"
            "This is a bug in gridledger; please report it with the command you ran"
            + ("" if args.verbose else " and the output of the same command with -v")
            + "."
        )
        return 1


def _say(text: str) -> None:
    sys.stderr.write(f"gridledger: {text}\n")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
