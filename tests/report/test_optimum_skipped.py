"""Past ``OPTIMUM_MAX_BUS_PAIRS`` the welfare optima are not solved, and the run says so.

The two LP optima are benchmarks of the clearing (``efficiency``, ``welfare_vs_optimal``),
not part of it. On a feeder with thousands of member buses the LP has millions of bus-pair
flows, so the run skips it: the interval columns are empty, the ratios are None (never a
ratio over some intervals only), and everything else is as with the optima.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from gridledger.cli import main
from gridledger.sim import loop

ROOT = Path(__file__).resolve().parents[2]
IEEE33 = ROOT / "scenarios" / "ieee33.toml"


def _run(out: Path) -> tuple[dict[str, object], pd.DataFrame]:
    args = ["run", str(IEEE33), "--chain", "none", "--out", str(out), "-q"]
    for item in ["horizon.intervals=3", "horizon.first_interval=48"]:
        args += ["--set", item]
    assert main(args) == 0
    kpis = json.loads((out / "summary.json").read_text())
    return kpis, pd.read_csv(out / "intervals.csv")


@pytest.mark.slow  # two runs, about 12 s
def test_optima_skipped_past_the_bus_pair_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    full_kpis, full = _run(tmp_path / "full")
    assert full["optimal_welfare"].notna().all() and full["bid_optimum"].notna().all()
    assert isinstance(full_kpis["efficiency"], float)
    assert isinstance(full_kpis["welfare_vs_optimal"], float)

    monkeypatch.setattr(loop, "OPTIMUM_MAX_BUS_PAIRS", 4)
    with caplog.at_level("INFO", logger="gridledger.sim.loop"):
        kpis, skipped = _run(tmp_path / "skipped")
    assert "welfare optima not computed" in caplog.text
    assert skipped["optimal_welfare"].isna().all() and skipped["bid_optimum"].isna().all()
    assert kpis["efficiency"] is None and kpis["welfare_vs_optimal"] is None
    same = [c for c in full.columns if c not in ("optimal_welfare", "bid_optimum", "runtime_s")]
    pd.testing.assert_frame_equal(full[same], skipped[same])
    assert kpis["traded_kwh"] == full_kpis["traded_kwh"]
    assert not any(isinstance(v, float) and math.isnan(v) for v in kpis.values())
    assert (tmp_path / "skipped" / "report.html").stat().st_size > 0
