"""``gridledger compare`` prints every KPI column, with units, never truncated."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from gridledger.cli import main
from gridledger.studies.compare import COMPARE_KPIS, COMPARE_UNITS

ROOT = Path(__file__).resolve().parents[2]
IEEE33 = ROOT / "scenarios" / "ieee33.toml"


def test_compare_prints_the_full_table_with_units(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["compare", str(IEEE33), "--vary", "market.network_fee=none,distance", "-q"]
    args += ["--set", "market.clearing=greedy", "--set", "horizon.intervals=2"]
    args += ["--set", "horizon.first_interval=48"]
    assert main([*args, "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "rows x" not in out and "..." not in out and "…" not in out
    assert set(COMPARE_UNITS) == set(COMPARE_KPIS)
    for kpi, unit in COMPARE_UNITS.items():
        assert f"{kpi} ({unit})" in out
    assert "network_fee=none" in out and "network_fee=distance" in out
    # compare.csv keeps the bare KPI names
    table = pd.read_csv(tmp_path / "compare.csv", index_col=0)
    assert list(table.columns) == COMPARE_KPIS
