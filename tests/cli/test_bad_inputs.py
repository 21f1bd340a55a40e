"""Bad input to every command: one message naming the problem, an exit code, no traceback.

Each case of :data:`CASES` runs ``gridledger.cli.main`` in-process on an argv with
placeholders, after an optional setup that builds the bad input in the case's own
folder. It asserts the exit code (2 for a usage mistake, 1 for a failure at run time),
that the message names the file, key or value at fault, and that no traceback appears.

Placeholders in argv and setup paths:

- ``{tmp}``: the case's folder (also the working directory, so default output folders
  land there);
- ``{scn}``: ``{tmp}/bad.toml``, the scenario file a setup writes;
- ``{file}``: ``{tmp}/a-file.txt``, an existing ordinary file;
- ``{run}``: ``{tmp}/run``, a copy of one real short run on the embedded chain (made
  once per module by :func:`real_run`), which a setup may damage;
- ``{ieee33}``: the shipped main scenario, by absolute path.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.cli.setups import (
    SCENARIO,
    Setup,
    both,
    csv_edit,
    delete,
    earlier_results,
    edited,
    flip_hex_digit,
    folder_as,
    ledger_json,
    run_json,
    scenario_bytes,
    scenario_text,
    truncate,
    txlog_lines,
    with_keys,
    with_override,
    write_to,
)

from gridledger import cli
from gridledger.cli import main

SHORT = ["--set", "horizon.first_interval=48", "--set", "horizon.intervals=2"]
"""The short run: two intervals from 12:00 on the scenario's day."""
RESUME = ["run", "{ieee33}", *SHORT, "-q", "--resume", "--out", "{run}"]
"""Resume the copied real run as it was made (cases add one change)."""


@dataclass(frozen=True)
class Case:
    """One bad input: the command, how to build its input, what must come out."""

    argv: list[str]
    code: int
    message: str
    """Regular expression the message must match (searched, case-sensitive)."""
    setup: Setup | None = None
    stream: str = "err"
    """Where the message appears: "err" (the error) or "out" (an audit's findings)."""


# ------------------------------------------------------------------- cases
def P(case_id: str, argv: str | list[str], code: int, message: str, **kw: object) -> object:
    """One row of the table; ``argv`` as a string is split on spaces."""
    words = argv.split() if isinstance(argv, str) else argv
    return pytest.param(Case(words, code, message, **kw), id=case_id)  # type: ignore[arg-type]


RUN = "run {scn} -q --out {tmp}/out"
"""A run of the scenario a setup wrote (every scenario case fails before running)."""
RUN33 = "run {ieee33} -q"
KEYS = ["--keys", "{tmp}/keys", "--key-password-file", "{tmp}/keys-password.txt"]
"""The keys folder and password file of the :func:`~tests.cli.setups.with_keys` setup."""
"""A run of the shipped scenario; cases add options."""

# fmt: off
CASES = [
    # ---- run: the scenario file itself
    P("toml-syntax", RUN, 2, r"bad\.toml: not valid TOML", setup=scenario_text("name = \n")),
    P("toml-binary", RUN, 2, r"bad\.toml: not a text scenario \(byte 0 is not UTF-8\)",
      setup=scenario_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")),
    P("toml-latin1", RUN, 2, r"bad\.toml: not a text scenario \(byte 16 is not UTF-8\)",
      setup=scenario_bytes(b'name = "x" # caf\xe9\n')),
    P("toml-empty", RUN, 2, r"bad\.toml: empty scenario", setup=scenario_text("")),
    P("toml-comments-only", RUN, 2, r"bad\.toml: empty scenario",
      setup=scenario_text("# nothing here\n\n")),
    P("scenario-is-folder", "run {tmp} -q --out {tmp}/out", 2, r"cannot read scenario"),
    P("scenario-missing", "run {tmp}/nope.toml -q", 2, r"nope\.toml: cannot read scenario"),
    P("shipped-name-typo", "run ieee34 -q", 2,
      r"ieee34: cannot read scenario.*shipped scenarios: cigre_lv, ieee33"),
    P("unknown-top-key", RUN, 2, r"colour = 'red': Extra inputs",
      setup=edited("seed = 42", 'seed = 42\ncolour = "red"')),
    P("unknown-table-key", RUN, 2, r"market\.speed = 3: Extra inputs",
      setup=edited("[market]", "[market]\nspeed = 3")),
    P("unknown-table", RUN, 2, r"weather = \{.*\}: Extra inputs",
      setup=scenario_text('name = "x"\n[weather]\nsunny = true\n')),
    P("seed-wrong-type", RUN, 2, r"seed = 'forty-two': Input should be a valid integer",
      setup=edited("seed = 42", 'seed = "forty-two"')),
    P("intervals-fraction", RUN, 2, r"horizon\.intervals = 1\.5: .*integer",
      setup=edited("intervals = 96", "intervals = 1.5")),
    P("start-not-date", RUN, 2, r"horizon\.start = 'midsummer': .*date",
      setup=edited("start = 2026-06-21", 'start = "midsummer"')),
    P("mechanism-unknown", RUN, 2, r"market\.mechanism = 'auction': Input should be 'zi'",
      setup=edited('mechanism = "aa"', 'mechanism = "auction"')),
    P("rounds-zero", RUN, 2, r"market\.rounds = 0: .*greater than or equal to 1",
      setup=edited("rounds = 5", "rounds = 0")),
    P("seed-inf", RUN, 2, r"seed = inf", setup=edited("seed = 42", "seed = inf")),
    P("kappa-nan", RUN, 2, r"market\.kappa = nan: Input should be a finite number",
      setup=edited("kappa = 0.5", "kappa = nan")),
    P("load-scaling-inf", RUN, 2, r"members\.load_scaling = inf: .*finite",
      setup=edited("load_scaling = 0.6", "load_scaling = inf")),
    P("cost-range-inf", RUN, 2, r"members\.cost_per_kwh\.1 = inf: .*finite",
      setup=edited("cost_per_kwh = [0.03, 0.07]", "cost_per_kwh = [0.03, inf]")),
    P("v-max-nan", RUN, 2, r"security\.v_max_pu = nan: .*finite",
      setup=edited("v_max_pu = 1.05", "v_max_pu = nan")),
    P("fee-param-inf", RUN, 2,
      r"market\.fee_params\.distance\.gamma_d = -inf: Input should be a finite number\n?$",
      setup=edited("gamma_d = 0.005", "gamma_d = -inf")),
    P("member-override-nan", RUN, 2, r"members\.overrides\.0\.pv_kwp = nan: .*finite",
      setup=with_override("pv_kwp = nan")),
    P("seed-huge", RUN, 2,
      r"seed = 18446744073709551616: .*less than or equal to 18446744073709551615",
      setup=edited("seed = 42", "seed = 18446744073709551616")),
    P("seed-negative", RUN, 2, r"seed = -1: .*greater than or equal to 0",
      setup=edited("seed = 42", "seed = -1")),
    P("pv-negative", RUN, 2, r"members\.overrides\.0\.pv_kwp = -5",
      setup=with_override("pv_kwp = -5")),
    P("feed-in-above-retail", RUN, 2,
      r"market\.feed_in_per_kwh = 0\.4: must not exceed retail_per_kwh \(0\.3\)",
      setup=edited("feed_in_per_kwh = 0.08", "feed_in_per_kwh = 0.4")),
    P("attitude-unknown", RUN, 2,
      r"members\.overrides\.0\.risk_attitude = 'bold': Input should be 'averse', 'neutral' or "
      r"'seeking'\n?$",
      setup=with_override('risk_attitude = "bold"')),
    P("retail-negative", RUN, 2, r"market\.retail_per_kwh = -0\.3: .*greater than 0",
      setup=edited("retail_per_kwh = 0.30", "retail_per_kwh = -0.3")),
    P("first-interval-past-day", RUN, 2,
      r"horizon\.first_interval = 96: .*past the day's last interval \(95 at 15 min\)",
      setup=edited("intervals = 96", "first_interval = 96")),
    P("shares-not-one", RUN, 2,
      r"members\.attitude_shares = \{.*\}: must be non-negative and sum to 1, got 1\.17",
      setup=edited("seeking = 0.33", "seeking = 0.5")),
    P("pv-sizes-mismatch", RUN, 2,
      r"members\.pv_kwp = \[250\.0, 100\.0\]: lists 2 size\(s\) for the 9 bus\(es\) of pv_buses",
      setup=edited("pv_kwp = 250.0", "pv_kwp = [250.0, 100.0]")),
    P("br-needs-greedy", RUN, 2,
      r"market\.clearing = 'uniform': mechanism 'best-response' needs clearing = 'greedy'",
      setup=edited('mechanism = "aa"', 'mechanism = "best-response"',
                   'clearing = "greedy"', 'clearing = "uniform"')),
    P("toml-bom-accepted", "run {scn} -q --out {file}", 2, r"--out .*a-file\.txt: is a file",
      setup=scenario_bytes(b'\xef\xbb\xbfname = "x"\n')),
    # ---- run: the scenario against its feeder (checked when the world is built)
    P("pv-bus-off-feeder", RUN, 2, r"members\.pv_buses: bus 99 is not a bus of the feeder",
      setup=edited("pv_buses = [5,", "pv_buses = [99,")),
    P("override-bus-empty", RUN, 2, r"members\.overrides: bus 99 hosts no member",
      setup=edited("[market]", "[[members.overrides]]\nbus = 99\n\n[market]")),
    # an unknown feeder or forecaster exits 1 (GridError, MemberError raised by the world)
    P("feeder-unknown", RUN, 1, r"unknown feeder 'nowhere'; known feeders: cigre_lv",
      setup=edited('feeder = "ieee33"', 'feeder = "nowhere"')),
    P("forecaster-unknown", RUN, 1, r"forecaster 'crystal-ball': unknown, need one of",
      setup=edited('forecaster = "noisy"', 'forecaster = "crystal-ball"')),
    # ---- run: --set, --seed, --mechanism, --chain
    P("set-no-equals", [*RUN33.split(), "--set", "seed"], 2,
      r"override 'seed': expected KEY\.PATH=VALUE"),
    P("set-empty-part", [*RUN33.split(), "--set", "market..rounds=3"], 2,
      r"override 'market\.\.rounds=3': empty part in key path"),
    P("set-empty-key", [*RUN33.split(), "--set", "=3"], 2, r"override '=3': empty part"),
    P("set-into-value", [*RUN33.split(), "--set", "seed.low=1"], 2,
      r"override 'seed\.low=1': 'seed' is a value, not a table"),
    P("set-value-for-table", [*RUN33.split(), "--set", "market=3"], 2,
      r"market = 3: Input should be a valid dictionary"),
    P("set-bare-word-for-int", [*RUN33.split(), "--set", "market.rounds=five"], 2,
      r"market\.rounds = 'five': Input should be a valid integer"),
    P("set-list-for-int", [*RUN33.split(), "--set", "market.rounds=[1, 2]"], 2,
      r"market\.rounds = \[1, 2\]: Input should be a valid integer"),
    P("set-bad-date", [*RUN33.split(), "--set", "horizon.start=2026-13-01"], 2,
      r"horizon\.start = '2026-13-01'"),
    P("set-nan", [*RUN33.split(), "--set", "market.retail_per_kwh=nan"], 2,
      r"market\.retail_per_kwh = nan: Input should be a finite number"),
    P("set-bare-string-accepted",
      [*RUN33.split(), "--set", "market.clearing=optimal", "--out", "{file}"], 2,
      r"--out .*a-file\.txt: is a file; give a folder"),
    P("set-unknown-strategy",
      [*RUN33.split(), *SHORT, "--set", "members.strategy=sniper", "--out", "{tmp}/out"], 2,
      r"members\.strategy = 'sniper' \(member 0 at bus 1\): unknown bidding strategy; "
      r"known: aa, zi"),
    P("override-unknown-strategy", RUN, 2, r"members\.overrides\.strategy = 'sniper'",
      setup=with_override('strategy = "sniper"')),
    P("seed-option-negative", f"{RUN33} --seed -1", 2, r"seed = -1"),
    P("seed-option-huge", f"{RUN33} --seed {2**64}", 2, rf"seed = {2**64}"),
    P("seed-option-text", f"{RUN33} --seed many", 2, r"--seed: invalid int value: 'many'"),
    P("interval-length", [*RUN33.split(), "--set", "horizon.interval_min=7"], 2,
      r"horizon\.interval_min = 7: Input should be 5, 10, 15, 30 or 60"),
    P("backend-wrong-type", [*RUN33.split(), "--set", "chain.backend=8545"], 2,
      r"chain\.backend = 8545: Input should be a valid string"),
    P("mechanism-option", f"{RUN33} --mechanism auction", 2, r"market\.mechanism = 'auction'"),
    P("chain-bad-ipv6", [*RUN33.split(), "--chain", "http://[::1"], 2,
      r"chain\.backend = 'http://\[::1': not a usable node URL \(Invalid IPv6 URL\)"),
    P("chain-ftp", f"{RUN33} --chain ftp://x", 2,
      r"chain\.backend = 'ftp://x': must be 'embedded', 'none' or an http\(s\) URL"),
    P("chain-port-range", f"{RUN33} --chain http://host:99999", 2,
      r"'http://host:99999': not a usable node URL \(Port out of range"),
    P("chain-no-host", f"{RUN33} --chain http://:8545", 2, r"'http://:8545': .*no host"),
    P("chain-unreachable",
      [*RUN33.split(), *SHORT, "--chain", "http://127.0.0.1:9", "--out", "{tmp}/out", *KEYS], 1,
      r"http://127\.0\.0\.1:9.*(unreachable|did not answer)", setup=with_keys),
    # ---- run: keys (docs/ledger.md, "Keys")
    P("chain-without-keys",
      [*RUN33.split(), *SHORT, "--chain", "http://127.0.0.1:9", "--out", "{tmp}/out"], 2,
      r"http://127\.0\.0\.1:9: simulation keys derived from a seed are refused on a "
      r"JSON-RPC node.*operator\.json, dso\.json, grid\.json.*--keys DIR"),
    P("keys-no-folder", f"{RUN33} --keys {{tmp}}/nope --key-password-file {{file}}", 2,
      r"nope: no such folder \(give a keys folder"),
    P("keys-no-password", [*RUN33.split(), "--keys", "{tmp}/keys"], 2,
      r"no key password: set the environment variable GRIDLEDGER_KEY_PASSWORD",
      setup=with_keys),
    P("keys-wrong-password",
      [*RUN33.split(), "--keys", "{tmp}/keys", "--key-password-file", "{file}"], 2,
      r"operator\.json: wrong key password", setup=with_keys),
    P("keys-member-missing", [*RUN33.split(), *KEYS], 2,
      r"lacks 2 keystore file\(s\): member-5\.json, meter-5\.json",
      setup=both(with_keys, delete("keys/member-5.json"), delete("keys/meter-5.json"))),
    P("keys-init-no-scenario", "keys init {tmp}/k", 2,
      r"the following arguments are required: --scenario"),
    P("keys-init-bad-n", "keys init {tmp}/k --scenario {ieee33} --key-password-file {file} "
      "--scrypt-n 5", 2, r"scrypt n = 5: must be a power of two"),
    P("keys-init-folder-is-file", "keys init {file} --scenario {ieee33} --key-password-file "
      "{file}", 2, r"a-file\.txt: not a folder \(give a keys folder\)"),
    P("no-scenario", "run", 2, r"the following arguments are required: scenario"),
    # ---- run: --out
    P("out-is-file", f"{RUN33} --out {{file}}", 2, r"--out .*a-file\.txt: is a file"),
    P("out-under-file", f"{RUN33} --out {{file}}/x", 2,
      r"--out .*a-file\.txt/x: cannot be created: .*a-file\.txt is a file"),
    P("out-uncreatable", f"{RUN33} --out /proc/1/gridledger", 2,
      r"--out /proc/1/gridledger: cannot create or write there"),
    P("out-earlier-results", f"{RUN33} --out {{tmp}}/o", 2,
      r"--out .*/o: holds earlier results \(run\.json, summary\.json\).*--force",
      setup=earlier_results("o", "run.json", "summary.json")),
    P("out-saved-chain-force", f"{RUN33} --force --out {{run}}", 2,
      r"--out .*/run: holds a saved chain .*never overwritten"),
    # ---- run --resume: another run's chain
    P("resume-other-seed", [*RESUME, "--seed", "7"], 2,
      r"--resume refused: seed is '42' there, '7' now"),
    P("resume-other-feeder", [*RESUME, "--set", 'network.feeder="cigre_lv"', "--set",
      "members.pv_buses=[]", "--set", "members.dg_buses=[]"], 2,
      r"--resume refused: network\.feeder is 'ieee33' there, 'cigre_lv' now"),
    P("resume-other-start", [*RESUME, "--set", "horizon.start=2026-06-22"], 2,
      r"--resume refused: horizon\.start is '2026-06-21' there, '2026-06-22' now"),
    P("resume-other-first", [*RESUME, "--set", "horizon.first_interval=50"], 2,
      r"horizon\.first_interval is 48 there, 50 now"),
    P("resume-other-scenario", [*RESUME, "--set", "market.kappa=0.4"], 2,
      r"the scenario differs \(market\.kappa: saved 0\.5, now 0\.4\)"),
    P("resume-shorter-horizon", [*RESUME, "--set", "horizon.intervals=1"], 2,
      r"the chain already holds 2 settled intervals, more than the horizon's 1"),
    # ---- run --resume / audit: a damaged saved chain
    P("txlog-deleted-audit", "audit {run}", 1, r"txlog\.jsonl",
      setup=delete("run/chain/txlog.jsonl")),
    P("txlog-truncated-audit", "audit {run}", 1, r"missing", stream="out",
      setup=truncate("run/chain/txlog.jsonl", 0.9)),
    P("txlog-flipped-digit-audit", "audit {run}", 1,
      r"txlog\.jsonl: saved chain damaged at record 2: .*the record was changed",
      setup=txlog_lines(flip_hex_digit)),
    P("txlog-flipped-digit-resume", RESUME, 1, r"saved chain damaged at record 2",
      setup=txlog_lines(flip_hex_digit)),
    P("txlog-dropped-line-audit", "audit {run}", 1,
      r"damaged at record 2: .*a record is missing, repeated or out of order",
      setup=txlog_lines(lambda lines: [lines[0], lines[2]])),
    P("txlog-reordered-audit", "audit {run}", 1, r"damaged at record 2: .*out of order",
      setup=txlog_lines(lambda lines: [lines[0], lines[2], lines[1]])),
    P("txlog-reordered-resume", RESUME, 1, r"damaged at record 2",
      setup=txlog_lines(lambda lines: [lines[0], lines[2], lines[1]])),
    P("txlog-garbage-line-audit", "audit {run}", 1, r"damaged at record 2: expected a JSON record",
      setup=txlog_lines(lambda lines: [lines[0], b"hello\n", lines[2]])),
    P("ledger-truncated-audit", "audit {run}", 1,
      r"ledger\.json: saved chain damaged: not a complete JSON document",
      setup=truncate("run/chain/ledger.json")),
    P("ledger-truncated-resume", RESUME, 1, r"ledger\.json: saved chain damaged",
      setup=truncate("run/chain/ledger.json")),
    P("ledger-missing-key", "audit {run}", 1, r"ledger\.json: saved chain damaged: key 'token'",
      setup=ledger_json(lambda d: d.pop("token"))),
    P("ledger-bad-hex", "audit {run}", 1, r"ledger\.json: saved chain damaged: key 'market'",
      setup=ledger_json(lambda d: d.update(market="zz" * 20))),
    P("ledger-wrong-type", "audit {run}", 1, r"ledger\.json: saved chain damaged: key 'rounds'",
      setup=ledger_json(lambda d: d.update(rounds="five"))),
    P("ledger-not-object", "audit {run}", 1, r"ledger\.json: saved chain damaged",
      setup=write_to("run/chain/ledger.json", b'["not", "an", "object"]')),
    P("ledger-old-version", "audit {run}", 1, r"ledger\.json: saved by an older gridledger",
      setup=ledger_json(lambda d: d.update(version=1))),
    P("ledger-deleted-audit", "audit {run}", 1, r"ledger\.json",
      setup=delete("run/chain/ledger.json")),
    P("txlog-is-folder-audit", "audit {run}", 1, r"txlog\.jsonl: Is a directory",
      setup=both(delete("run/chain/txlog.jsonl"), folder_as("run/chain/txlog.jsonl"))),
    P("txlog-deleted-resume", RESUME, 1, r"txlog\.jsonl", setup=delete("run/chain/txlog.jsonl")),
    P("chain-emptied-audit", "audit {run}", 1, r"chain",
      setup=both(delete("run/chain/txlog.jsonl"), delete("run/chain/ledger.json"))),
    # ---- audit: folders and nodes
    P("audit-no-folder", "audit {tmp}/nope", 2, r"nope: no such folder"),
    P("audit-not-on-chain", "audit {tmp}", 2, r"not a run recorded on chain \(no chain/ folder\)"),
    P("audit-chain-ftp", "audit {run} --chain ftp://x", 2, r"--chain 'ftp://x'"),
    P("audit-chain-bad-ipv6", ["audit", "{run}", "--chain", "http://[::1"], 2,
      r"--chain 'http://\[::1': .*Invalid IPv6 URL"),
    P("audit-chain-port-range", "audit {run} --chain http://host:99999", 2,
      r"--chain 'http://host:99999': .*Port out of range"),
    P("audit-chain-unreachable", "audit {run} --chain http://127.0.0.1:9", 1,
      r"http://127\.0\.0\.1:9.*(unreachable|did not answer)"),
    # ---- report: a damaged run folder
    P("report-no-folder", "report {tmp}/nope", 2, r"nope: no such folder"),
    P("report-a-file", "report {file}", 2, r"a-file\.txt: not a folder"),
    P("report-empty-folder", "report {tmp}", 1, r"not a gridledger output folder \(no run\.json\)"),
    P("runjson-truncated", "report {run}", 1, r"run\.json: damaged \(not valid JSON",
      setup=truncate("run/run.json")),
    P("runjson-not-object", "report {run}", 1,
      r"run\.json: damaged \(expected a JSON object, found list\)",
      setup=write_to("run/run.json", b"[1, 2]\n")),
    P("runjson-missing-key", "report {run}", 1, r"run\.json: damaged \(missing key\(s\) scenario",
      setup=run_json(lambda d: d.pop("scenario"))),
    P("runjson-bad-scenario", "report {run}", 1,
      r"run\.json \(key scenario\): invalid scenario.*\n  seed = -3",
      setup=run_json(lambda d: d["scenario"].update(seed=-3))),
    P("runjson-binary", "report {run}", 1, r"run\.json: damaged",
      setup=write_to("run/run.json", b"\xff\xfe\x00{")),
    P("csv-deleted", "report {run}", 1, r"missing table trades\.csv",
      setup=delete("run/trades.csv")),
    P("csv-garbage", "report {run}", 1, r"trades\.csv: damaged",
      setup=write_to("run/trades.csv", b"a,b\n1,2,3,4,5\n\x00\xff\n")),
    P("csv-wrong-columns", "report {run}", 1, r"trades\.csv: damaged \(.*e_kwh",
      setup=write_to("run/trades.csv", b"when,who\n1,2\n")),
    P("csv-empty", "report {run}", 1, r"trades\.csv: damaged \(empty, expected a header row",
      setup=write_to("run/trades.csv", b"")),
    P("csv-missing-column", "report {run}", 1,
      r"members\.csv: damaged \(missing column\(s\) pv_kwh\)",
      setup=csv_edit("members.csv", lambda frame: frame.drop(columns="pv_kwh"))),
    P("csv-text-for-number", "report {run}", 1,
      r"intervals\.csv: damaged \(column traded_kwh holds 'lots' where a number belongs",
      setup=csv_edit("intervals.csv", lambda frame: frame.assign(traded_kwh=["lots", "1"]))),
    P("csv-voltages-text", "report {run}", 1,
      r"bus_voltages\.csv: damaged \(column 3 holds 'high' where a number belongs",
      setup=csv_edit("bus_voltages.csv", lambda frame: frame.assign(**{"3": ["1.0", "high"]}))),
    P("runjson-interval-text", "report {run}", 1,
      r"run\.json: damaged \(key interval_h: expected hours per interval, found 'quarter'\)",
      setup=run_json(lambda d: d.update(interval_h="quarter"))),
    P("runjson-feeder-number", "report {run}", 1,
      r"run\.json: damaged \(key feeder: expected a feeder name, found 33\)",
      setup=run_json(lambda d: d.update(feeder=33))),
    P("report-html-is-folder", "report {run}", 1, r"report\.html: Is a directory",
      setup=folder_as("run/report.html")),
    # ---- compare
    P("compare-vary-no-equals", "compare {ieee33} --vary market.clearing", 2,
      r"--vary 'market\.clearing': expected KEY\.PATH=V1,V2"),
    P("compare-vary-no-values", "compare {ieee33} --vary market.clearing=,", 2,
      r"--vary 'market\.clearing=,': no values after '='"),
    P("compare-vary-bad-value",
      "compare {ieee33} --vary market.clearing=greedy,cheapest --out {tmp}/c", 2,
      r"market\.clearing = 'cheapest'"),
    P("compare-vary-bad-later",
      "compare {ieee33} --vary market.clearing=greedy --vary market.rounds=5,0 --out {tmp}/c", 2,
      r"market\.rounds = 0: "),
    P("compare-vary-unknown-key", "compare {ieee33} --vary market.speed=1,2 --out {tmp}/c", 2,
      r"market\.speed = 1: Extra inputs"),
    P("compare-set-no-equals", "compare {ieee33} --vary seed=1,2 --set seed", 2,
      r"override 'seed': expected KEY\.PATH=VALUE"),
    P("compare-scenario-broken", "compare {scn} --vary seed=1,2", 2, r"bad\.toml: not valid TOML",
      setup=scenario_text("[market\n")),
    P("compare-scenario-missing", "compare {tmp}/nope.toml --vary seed=1,2", 2,
      r"nope\.toml: cannot read scenario"),
    P("compare-out-file", "compare {ieee33} --vary seed=1,2 --out {file}", 2,
      r"--out .*a-file\.txt: is a file"),
    P("compare-out-earlier", "compare {ieee33} --vary seed=1,2 --out {tmp}/c", 2,
      r"holds earlier results \(compare\.csv\)", setup=earlier_results("c", "compare.csv")),
    P("compare-unreachable-node",
      ["compare", "{ieee33}", "--vary", "market.clearing=greedy", *SHORT,
       "--set", 'chain.backend="http://127.0.0.1:9"', "-q", "--out", "{tmp}/c",
       "--set", 'chain.keys="{tmp}/keys"',
       "--set", 'chain.key_password_file="{tmp}/keys-password.txt"'], 1,
      r"http://127\.0\.0\.1:9.*(unreachable|did not answer)", setup=with_keys),
    P("compare-no-vary", "compare {ieee33}", 2, r"the following arguments are required: --vary"),
    # ---- experiment
    P("experiment-unknown", "experiment bargain", 2, r"invalid choice: 'bargain'"),
    P("experiment-needs-scenario", "experiment best-response --out {tmp}/e", 2,
      r"'best-response' needs a scenario file \(--scenario\)"),
    P("experiment-scenario-broken", "experiment forecast-errors --scenario {scn} --out {tmp}/e", 2,
      r"bad\.toml: not a text scenario", setup=scenario_bytes(b"\xff\xfe")),
    P("experiment-scenario-missing",
      "experiment best-response --scenario {tmp}/n.toml --out {tmp}/e", 2,
      r"n\.toml: cannot read scenario"),
    P("experiment-set-bad",
      "experiment forecast-errors --scenario {ieee33} --set members.forecast_nmae=2 "
      "--out {tmp}/e",
      2, r"members\.forecast_nmae = 2: .*less than"),
    P("experiment-seed-negative", "experiment attitudes --seed -1 --out {tmp}/e", 2,
      r"--seed -1: expected an integer from 0 to 2\*\*64-1"),
    P("experiment-seed-huge", f"experiment aa-convergence --seed {2**64} --out {{tmp}}/e", 2,
      rf"--seed {2**64}: expected an integer from 0"),
    P("experiment-scenario-seed",
      "experiment forecast-errors --scenario {ieee33} --seed -2 --out {tmp}/e", 2,
      r"--seed -2: expected an integer"),
    P("experiment-out-file", "experiment attitudes --out {file}", 2,
      r"--out .*a-file\.txt: is a file"),
    P("experiment-out-earlier", "experiment attitudes --out {tmp}/e", 2,
      r"holds earlier results \(attitudes\.csv\)", setup=earlier_results("e", "attitudes.csv")),
    # ---- no command
    P("no-command", [], 2, r"the following arguments are required: command"),
    P("unknown-command", "simulate x", 2, r"invalid choice: 'simulate'"),
]
# fmt: on


@pytest.fixture(scope="module")
def real_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The output folder of one real short run on the embedded chain (read only: copy it)."""
    out = tmp_path_factory.mktemp("real-run") / "run"
    code = main(["run", str(SCENARIO), *SHORT, "-q", "--out", str(out)])
    assert code == 0, "the reference short run failed"
    assert (out / "chain" / "txlog.jsonl").is_file()
    return out


def invoke(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``main(argv)``; argparse's own exits are taken as exit codes."""
    try:
        code = main(argv)
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("case", CASES)
def test_bad_input(
    case: Case,
    tmp_path: Path,
    real_run: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GRIDLEDGER_KEY_PASSWORD", raising=False)
    (tmp_path / "a-file.txt").write_text("not a folder\n", encoding="utf-8")
    if any("{run}" in word for word in case.argv):
        shutil.copytree(real_run, tmp_path / "run")
    if case.setup is not None:
        case.setup(tmp_path)
    places = {
        "tmp": str(tmp_path),
        "scn": str(tmp_path / "bad.toml"),
        "file": str(tmp_path / "a-file.txt"),
        "run": str(tmp_path / "run"),
        "ieee33": str(SCENARIO),
    }
    argv = [word.format(**places) for word in case.argv]
    code, out, err = invoke(argv, capsys)
    shown = f"argv: {argv}\nstdout:\n{out}\nstderr:\n{err}"
    assert "Traceback" not in out + err, shown
    assert "internal error" not in err, shown
    assert code == case.code, shown
    assert re.search(case.message, err if case.stream == "err" else out), shown


def test_corpus_covers_every_command() -> None:
    cases = [param.values[0] for param in CASES]  # type: ignore[attr-defined]
    assert len(cases) >= 60
    commands = {case.argv[0] for case in cases if case.argv}
    assert {"run", "report", "audit", "compare", "experiment"} <= commands


def test_internal_error_asks_for_a_bug_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: object, **_kw: object) -> None:
        message = "simulated fault"
        raise RuntimeError(message)

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli, "load_scenario", broken)
    argv = ["run", str(SCENARIO), "-q", "--out", str(tmp_path / "out")]
    code, out, err = invoke(argv, capsys)
    assert code == 1
    assert "internal error: RuntimeError: simulated fault" in err
    assert "This is a bug in gridledger" in err
    assert "with -v" in err
    assert "Traceback" not in out + err

    code, out, err = invoke(["-v", *argv], capsys)
    assert code == 1
    assert "Traceback (most recent call last)" in err
    assert "simulated fault" in err
    assert "This is a bug in gridledger" in err


def test_interrupt_points_at_resume(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*_args: object, **_kw: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "load_scenario", interrupted)
    code, out, err = invoke(["run", str(SCENARIO), "--out", str(tmp_path / "o")], capsys)
    assert code == 130
    assert "--resume" in err
    assert "Traceback" not in out + err


def test_installed_command_exits_without_traceback(tmp_path: Path) -> None:
    """The real process: the exit code reaches the shell and nothing but the message shows."""
    done = subprocess.run(
        [sys.executable, "-m", "gridledger.cli", "run", str(tmp_path / "missing.toml")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert "missing.toml: cannot read scenario" in done.stderr
    assert "Traceback" not in done.stdout + done.stderr


def test_undamaged_copy_passes(
    tmp_path: Path, real_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The control of the damaged-file cases: the copied run itself reports and audits."""
    run = tmp_path / "run"
    shutil.copytree(real_run, run)
    code, out, err = invoke(["report", str(run)], capsys)
    assert code == 0, err
    code, out, err = invoke(["audit", str(run)], capsys)
    assert code == 0, out + err
    assert "audit: OK" in out


def test_resume_into_an_empty_folder_starts_fresh(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """Not a mistake: --resume with nothing saved warns and runs from the start."""
    out = tmp_path / "out"
    (out / "chain").mkdir(parents=True)
    argv = ["run", str(SCENARIO), *SHORT, "-q", "--resume", "--out", str(out)]
    code, _out, err = invoke(argv, capsys)
    assert code == 0, err
    assert "no saved chain to resume; starting a fresh run" in caplog.text
    assert (out / "chain" / "txlog.jsonl").is_file()
