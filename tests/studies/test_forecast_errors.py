"""The forecast-error study on a short midday window of the IEEE 33-bus scenario."""

from __future__ import annotations

from pathlib import Path

import pytest
from matplotlib.figure import Figure

from gridledger.errors import ScenarioError
from gridledger.scenario import load_scenario
from gridledger.studies.forecast_errors import forecast_error_study, plot_forecast_study

SCENARIO = Path(__file__).parents[2] / "scenarios" / "ieee33.toml"


def test_study_rows_and_figure() -> None:
    scenario = load_scenario(SCENARIO, ["horizon.first_interval=44", "chain.backend=none"])
    df = forecast_error_study(scenario, levels=(0.0, 0.2), intervals=6)
    assert list(df["level"]) == [0.0, 0.2]
    assert df["intervals"].tolist() == [6, 6]
    assert df["conservation_ok"].all()
    perfect, noisy = df.iloc[0], df.iloc[1]
    assert perfect["forecast_nmae"] == 0.0 and perfect["shortfall_kwh"] == 0.0
    assert perfect["penalties"] == 0.0
    assert perfect["p2p_traded_kwh"] == perfect["p2p_delivered_kwh"] > 0
    assert 0.1 < noisy["forecast_nmae"] < 0.4
    assert noisy["imbalance_kwh"] > perfect["imbalance_kwh"]
    assert noisy["shortfall_kwh"] > 0
    assert isinstance(plot_forecast_study(df), Figure)


def test_study_rejects_bad_levels() -> None:
    scenario = load_scenario(SCENARIO)
    with pytest.raises(ScenarioError, match=r"outside 0\.\.1"):
        forecast_error_study(scenario, levels=(5,), intervals=1)
    with pytest.raises(ScenarioError, match="empty"):
        forecast_error_study(scenario, levels=(), intervals=1)
