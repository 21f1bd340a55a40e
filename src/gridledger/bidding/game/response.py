"""The exact best response of one member to the others' bids (see :mod:`.kernel`, :mod:`.book`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gridledger.bidding.game.book import RankedBook
from gridledger.bidding.game.model import Game, IntArray, Strategy

__all__ = ["BestResponse", "best_response", "reply_of"]


@dataclass(frozen=True, slots=True)
class BestResponse:
    """A member's best response, its payoff (micro-tokens) and the prices it tried."""

    strategy: Strategy
    payoff_micro: float
    current_payoff_micro: float
    candidates: int


def best_response(
    game: Game, index: int, profile: Sequence[Strategy], fees: IntArray | None = None
) -> BestResponse:
    """Exact best response of player ``index`` to ``profile`` (see module docstring).

    ``fees`` overrides the game's fee table for the member's model of the market
    (e.g. zeros for a fee-unaware member).
    """
    book = RankedBook(game, profile, fees)
    return reply_of(book, index)


def reply_of(book: RankedBook, index: int) -> BestResponse:
    """The exact best response of member ``index`` to the others' orders in ``book``."""
    price, e_wh, u, u_cur, n_c = book.reply(index)
    return BestResponse(Strategy(price, e_wh), u, u_cur, n_c)
