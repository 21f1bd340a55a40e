"""Security stage: AC power-flow verdict, linearised limits and congestion management.

- :mod:`~gridledger.security.stage`: the stage protocol, its outcome, check only;
- :mod:`~gridledger.security.congestion`: the check with curtailment until secure;
- :mod:`~gridledger.security.curtailment`: the curtailment rules (greedy, LP) on a
  linearised network.
"""

from __future__ import annotations

from gridledger.scenario import Scenario
from gridledger.security.congestion import CongestionReport, CongestionSecurity, SecurityLimits
from gridledger.security.stage import CheckOnlySecurity, SecurityOutcome, SecurityStage

__all__ = [
    "CheckOnlySecurity",
    "CongestionReport",
    "CongestionSecurity",
    "SecurityLimits",
    "SecurityOutcome",
    "SecurityStage",
    "make_security",
]


def make_security(scenario: Scenario) -> SecurityStage:
    """The scenario's security stage: check only for ``congestion = none``, else curtailment."""
    spec = scenario.security
    if spec.congestion == "none":
        return CheckOnlySecurity()
    return CongestionSecurity(
        rule=spec.congestion,
        limits=SecurityLimits.from_spec(spec),
        network_form=spec.network_form,
    )
