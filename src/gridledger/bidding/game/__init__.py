"""Best-response dynamics of the non-cooperative bidding game, to a verified Nash equilibrium.

Modules, each importing only the ones before it: ``model`` (players, strategies,
settings, payoffs), ``kernel`` (numba candidate evaluation), ``book`` (the ranked
pair book kept up to date as members move), ``response`` (one member's exact
best response), ``start`` (starting profiles), ``nash`` (the
independent equilibrium check), ``dynamics`` (the rounds), ``mechanism`` (the
``best-response`` bidding mechanism); ``synthetic`` builds test and benchmark games.
"""

from gridledger.bidding.game.dynamics import BRDiagnostics, DynamicsResult, run_dynamics
from gridledger.bidding.game.mechanism import BestResponseMechanism, players_from_positions
from gridledger.bidding.game.model import (
    BestResponseError,
    BRSettings,
    Game,
    Player,
    Strategy,
    payoff_micro,
)
from gridledger.bidding.game.nash import NashReport, check_equilibrium
from gridledger.bidding.game.response import BestResponse, best_response
from gridledger.bidding.game.start import competitive_profile, start_profile, truthful_profile

__all__ = [
    "BRDiagnostics",
    "BRSettings",
    "BestResponse",
    "BestResponseError",
    "BestResponseMechanism",
    "DynamicsResult",
    "Game",
    "NashReport",
    "Player",
    "Strategy",
    "best_response",
    "check_equilibrium",
    "competitive_profile",
    "payoff_micro",
    "players_from_positions",
    "run_dynamics",
    "start_profile",
    "truthful_profile",
]
