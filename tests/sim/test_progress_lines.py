"""Progress off a terminal: a few plain lines on stderr, no bar and no carriage return."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
IEEE33 = ROOT / "scenarios" / "ieee33.toml"


@pytest.mark.slow  # fast lane budget: 10-30 s
def test_run_piped_prints_plain_progress_lines(tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "gridledger.cli", "run", str(IEEE33), "--chain", "none"]
    argv += ["--out", str(tmp_path), "--set", "horizon.intervals=12"]
    argv += ["--set", "horizon.first_interval=40"]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "\r" not in done.stderr
    lines = [ln for ln in done.stderr.splitlines() if re.search(r"\d+/12 intervals \(\d+ %\)", ln)]
    assert 1 <= len(lines) <= 11
    assert lines[-1].endswith("12/12 intervals (100 %)")
