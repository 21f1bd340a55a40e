"""Small best-response games shared by the tests."""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from gridledger.bidding.game import Game, Player, Strategy
from gridledger.market.orders import Side

__all__ = ["FEES_2", "market_2x2"]

# Two buses (1, 2); fee 10_000 micro/kWh across, 0 within a bus; kappa = 1/2.
FEES_2 = np.array([[0, 0, 0], [0, 0, 10_000], [0, 10_000, 0]], dtype=np.int64)


def market_2x2(beta: float = 0.0) -> tuple[Game, list[Strategy]]:
    """Two buyers and two sellers on two buses, tick 1 micro; B1 (the responder, utility
    curvature ``beta``) would cut its bid from 200_000 to 160_001 at beta 0 (the closed
    form of test_best_response.py)."""
    players = (
        Player(1, 1, Side.BUY, 1000, 0.30, beta),  # B1, the responder
        Player(2, 2, Side.BUY, 1000, 0.30, 0.0),  # B2 bids 150_000
        Player(3, 1, Side.SELL, 600, 0.0, 0.0),  # S1 asks 100_000, 600 Wh
        Player(4, 2, Side.SELL, 1000, 0.0, 0.0),  # S2 asks 110_000, 1000 Wh
    )
    game = Game(players, FEES_2, Fraction(1, 2), 0, 300_000, 1)
    profile = [
        Strategy(200_000, 1000),
        Strategy(150_000, 1000),
        Strategy(100_000, 600),
        Strategy(110_000, 1000),
    ]
    return game, profile
