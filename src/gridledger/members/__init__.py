"""Members of the market: the member model, load and PV profiles, forecasters.

The scenario-driven member generator is in :mod:`gridledger.members.generator`.
"""

from gridledger.errors import MemberError
from gridledger.members.forecast import (
    FORECASTERS,
    ArForecaster,
    Forecaster,
    ForecastScore,
    NoisyForecaster,
    PerfectForecaster,
    PersistenceForecaster,
    make_forecaster,
    nmae,
    score,
)
from gridledger.members.member import RISK_ATTITUDES, Member, Role
from gridledger.members.profiles import PROFILES, german_holidays, load_profile_kw, year_profile_kw
from gridledger.members.pv import DAY_TYPES, DayType, clear_sky_poa_w_m2, pv_profile_kw

__all__ = [
    "DAY_TYPES",
    "FORECASTERS",
    "PROFILES",
    "RISK_ATTITUDES",
    "ArForecaster",
    "DayType",
    "ForecastScore",
    "Forecaster",
    "Member",
    "MemberError",
    "NoisyForecaster",
    "PerfectForecaster",
    "PersistenceForecaster",
    "Role",
    "clear_sky_poa_w_m2",
    "german_holidays",
    "load_profile_kw",
    "make_forecaster",
    "nmae",
    "pv_profile_kw",
    "score",
    "year_profile_kw",
]
