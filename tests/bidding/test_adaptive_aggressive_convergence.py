"""AA in a stationary symmetric call market converges to the competitive equilibrium.

Market (gridledger.studies.aa_markets.convergence_run): 10 buyers with limits
0.09..0.27 and 10 sellers with limits 0.08..0.26 tokens/kWh (step 0.02), 1 kWh
each; competitive equilibrium: 5 kWh at any price in [0.17, 0.18], p_ce = 0.175.
K = 5 rounds per interval (4 indicative + 1 binding), uniform-price clearing
(gridledger.market.clear_uniform) on integer bids.

Measured |p - p_ce| / p_ce after 1 / 3 / 10 intervals (efficiency):
neutral 0.006 / 0.006 / 0.006 (1.0 from interval 1), averse 0.012 / 0.014 / 0.010
(1.0), seeking 0.006 / 0.003 / 0.002 (0.38 in interval 1, then 1.0).
"""

from __future__ import annotations

import pytest

from gridledger.studies.aa_markets import competitive_equilibrium, convergence_run


def test_competitive_equilibrium_of_the_test_market() -> None:
    buyers = [0.09 + 0.02 * i for i in range(10)]
    sellers = [0.08 + 0.02 * j for j in range(10)]
    p_ce, q_ce = competitive_equilibrium(buyers, sellers)
    assert p_ce == pytest.approx(0.175) and q_ce == 5


@pytest.mark.parametrize("attitude", ["neutral", "averse", "seeking"])
def test_prices_converge_to_p_ce(attitude: str) -> None:
    rows = convergence_run(intervals=10, attitude=attitude)
    by_interval = {int(r["interval"]): r for r in rows}
    # bound: inside the CE price interval [0.17, 0.18] and within 2 % of its midpoint
    # (1 % for neutral members) after 3 and after 10 intervals, full efficiency then
    bound = 0.01 if attitude == "neutral" else 0.02
    for t in (3, 10):
        assert by_interval[t]["rel_error"] <= bound
        assert by_interval[t]["smith_alpha"] <= bound
        assert by_interval[t]["efficiency"] == pytest.approx(1.0)
        assert 0.17 <= by_interval[t]["price"] <= 0.18  # inside the CE price interval
    if attitude != "seeking":  # seeking members hold out in the first interval
        assert by_interval[1]["rel_error"] <= bound
        assert by_interval[1]["efficiency"] == pytest.approx(1.0)
