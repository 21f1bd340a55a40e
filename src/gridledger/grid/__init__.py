"""The feeder: named networks, AC power flow check, electrical distances, sensitivities.

Sign convention: net injection per market bus = generation - consumption (kW,
kvar), positive into the grid; market bus 0 is the slack (substation).
See docs/grid.md.
"""

from __future__ import annotations

from gridledger.grid.catalogue import (
    Feeder,
    FeederUnsupported,
    known_feeders,
    load_feeder,
    prepare_feeder,
)
from gridledger.grid.distances import (
    BranchImpedances,
    ElectricalDistances,
    branch_impedances,
    electrical_distances,
)
from gridledger.grid.powerflow import (
    PowerFlowResult,
    Violation,
    default_q_kvar,
    run_ac,
    violations,
)
from gridledger.grid.sensitivities import ScreenResult, Sensitivities, screen, sensitivities

__all__ = [
    "BranchImpedances",
    "ElectricalDistances",
    "Feeder",
    "FeederUnsupported",
    "PowerFlowResult",
    "ScreenResult",
    "Sensitivities",
    "Violation",
    "branch_impedances",
    "default_q_kvar",
    "electrical_distances",
    "known_feeders",
    "load_feeder",
    "prepare_feeder",
    "run_ac",
    "screen",
    "sensitivities",
    "violations",
]
