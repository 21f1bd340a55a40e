"""Run Slither on the contracts from the committed solc-js build-info; fail on high or medium severity.

There is no native solc here, so Slither reads the Hardhat-style build-info that
``scripts/compile_contracts.mjs`` writes to ``dev-artifacts/build-info/``
(``--hardhat-ignore-compile``). The script
lays out a temporary Hardhat-like project (contracts/, artifacts/build-info/,
hardhat.config.js) so crytic-compile finds everything without running hardhat.

    python scripts/run_slither.py [--slither PATH] [--json OUT]

Exit code 0 when no finding has impact "High" or "Medium", 1 otherwise, 2 when Slither fails.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILD_INFO = ROOT / "dev-artifacts" / "build-info"
# the test harness is not deployed; analyse what ships
EXCLUDE_PATHS = "contracts/FeeClearingHarness"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--slither", default=shutil.which("slither") or "slither")
    parser.add_argument("--json", type=Path, help="write Slither's JSON report here")
    args = parser.parse_args()
    if "/" in args.slither:  # a path: make it absolute, Slither runs in a temporary folder
        args.slither = str(Path(args.slither).resolve())
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        shutil.copytree(ROOT / "contracts", work / "contracts")
        shutil.copytree(BUILD_INFO, work / "artifacts" / "build-info")
        (work / "hardhat.config.js").write_text("module.exports = {};\n")
        report = work / "slither.json"
        command = [
            args.slither,
            ".",
            "--hardhat-ignore-compile",
            "--filter-paths",
            EXCLUDE_PATHS,
            "--json",
            str(report),
        ]
        done = subprocess.run(command, cwd=work, capture_output=True, text=True, check=False)
        if not report.is_file():
            sys.stderr.write(done.stdout + done.stderr)
            print("slither: failed to produce a report", file=sys.stderr)
            return 2
        data = json.loads(report.read_text())
        if args.json:
            args.json.write_text(json.dumps(data, indent=2))
    if not data.get("success", False):
        print(f"slither: error: {data.get('error')}", file=sys.stderr)
        return 2
    findings = data.get("results", {}).get("detectors", [])
    counts = Counter(f["impact"] for f in findings)
    for finding in findings:
        first = finding["description"].strip().splitlines()[0]
        print(f"[{finding['impact']}/{finding['confidence']}] {finding['check']}: {first}")
    print("slither findings by impact:", dict(counts) or "none")
    if counts.get("High", 0) or counts.get("Medium", 0):
        found = f"{counts.get('High', 0)} high and {counts.get('Medium', 0)} medium"
        print(f"slither: {found} severity finding(s)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
