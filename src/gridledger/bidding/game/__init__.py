"""Best-response dynamics of the non-cooperative bidding game, to a verified Nash equilibrium."""

from gridledger.bidding.game.dynamics import (
    BestResponseMechanism,
    BRDiagnostics,
    BRSettings,
    Game,
    Player,
    Strategy,
    run_dynamics,
)

__all__ = [
    "BRDiagnostics",
    "BRSettings",
    "BestResponseMechanism",
    "Game",
    "Player",
    "Strategy",
    "run_dynamics",
]
