"""The shipped ieee33 scenario under best response (issue 7).

Intervals 44-47 (11:00-12:00), distance fee, greedy clearing. Measured: 2 of the 4
intervals converge to a verified equilibrium (45, 47); 44 and 46 end in detected
+-1 tick best-response cycles that neither the inertia bursts nor the order
restarts leave within the cap (4-9 cycles per interval).
The honesty test must always pass; the convergence target is an expected failure
until the dynamics reach equilibria there (see docs/best_response.md).
"""

from __future__ import annotations

from typing import Any

import pytest

from gridledger.scenario import load_scenario
from gridledger.simulation import run


@pytest.fixture(scope="module")
def noon_run() -> tuple[list[dict[str, Any]], int]:
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
    return [o.mechanism_info for o in result.outcomes], scenario.market.br_max_rounds


@pytest.mark.slow
def test_ieee33_noon_convergence_is_reported_honestly(
    noon_run: tuple[list[dict[str, Any]], int],
) -> None:
    """Converged intervals pass the independent equilibrium check; the others are
    reported as not converged, with a Nash gain above epsilon (never hidden)."""
    infos, cap = noon_run
    assert len(infos) == 4
    for info in infos:
        assert info["br_rounds"] <= cap
        if info["br_converged"]:
            assert info["nash_max_gain"] <= 1e-4, info
    assert any(info["br_converged"] for info in infos)


@pytest.mark.slow
@pytest.mark.xfail(
    reason="issue 7 target: intervals 44 and 46 still end in cycles (bursts + restarts)",
    strict=False,
)
def test_ieee33_noon_intervals_all_converge(noon_run: tuple[list[dict[str, Any]], int]) -> None:
    infos, _ = noon_run
    assert all(info["br_converged"] for info in infos), infos
