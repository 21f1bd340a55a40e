"""The shipped ieee33 scenario under best response reaches verified equilibria (issue 7)."""

from __future__ import annotations

import pytest

from gridledger.scenario import load_scenario
from gridledger.simulation import run


@pytest.mark.slow
def test_ieee33_noon_intervals_converge_to_verified_equilibria() -> None:
    """Intervals 44-47 (11:00-12:00), distance fee, greedy clearing: every interval
    converges within the cap and passes the independent equilibrium check."""
    scenario = load_scenario(
        "scenarios/ieee33.toml",
        [
            "market.mechanism=best-response",
            "market.clearing=greedy",
            "market.network_fee=distance",
            "horizon.first_interval=44",
            "horizon.intervals=4",
        ],
    )
    result = run(scenario)
    cap = scenario.market.br_max_rounds
    for outcome in result.outcomes:
        info = outcome.mechanism_info
        assert info["br_converged"], info
        assert info["br_rounds"] <= cap
        assert info["nash_max_gain"] <= 1e-4, info
