"""Starting profiles for the best-response dynamics.

- ``truthful``: every member bids its limit price (marginal value or cost at zero
  energy) for its whole position, as in the first round of a sealed-bid market.
- ``competitive``: every member bids the competitive (Walrasian) price of its bus
  for its whole position. The prices are the bus duals of the welfare-optimal
  clearing LP (``market.optimal.solve_optimal``) of the truthful book, with each
  member's quadratic value or cost written as ``blocks`` equal steps priced at
  the marginal value (cost) at each step's midpoint (:data:`START_BLOCKS` steps).
  Buyers at bus ``q`` bid ``rho_q`` and sellers at bus ``p`` ask ``pi_p``,
  clipped to their limit prices (a member priced out of the market bids its
  limit) and snapped to the game's price grid. On every route that carries
  energy ``rho_q = pi_p + c_pq``: the profile sits where the market's prices
  would settle if members took them as given, which is a short way from an
  equilibrium of the bidding game.

The operator can publish these bus prices after a truthful first round; the
members need no one else's private parameters.
"""

from __future__ import annotations

from collections.abc import Sequence

from gridledger.bidding.game.model import (
    BestResponseError,
    Game,
    IntArray,
    Player,
    Strategy,
)
from gridledger.market.optimal import solve_optimal
from gridledger.market.orders import Bid, Side
from gridledger.market.units import MICRO

__all__ = [
    "START_BLOCKS",
    "competitive_profile",
    "start_profile",
    "stepwise_book",
    "truthful_profile",
]

_ID_STRIDE = 1 << 16  # synthetic order ids: player index x stride + step

#: Price steps per member in the LP of the competitive start. A bus price is the
#: marginal value of one step, so where a bus has a few members it is off the
#: curves' crossing by up to half a step's drop: with 8 steps up to 0.009 tokens/kWh
#: (20 ticks of the 0.2 % grid, which the dynamics then climb a tick a round), with
#: 64 about 0.001 (docs/best_response.md, "Start: competitive bus prices"). The LP
#: takes about 0.1 s at 100 members and 0.4 s at 300.
START_BLOCKS = 64


def _limit_micro(player: Player) -> int:
    return round(player.lin * MICRO)


def _on_grid(game: Game, player: Player, price_micro: int) -> int:
    """Snap a price to the grid on the member's own side (buyers up, sellers down)."""
    if player.side == Side.BUY:
        return game.snap_up(price_micro)
    return game.snap_down(price_micro)


def truthful_profile(game: Game) -> list[Strategy]:
    """Every member bids its limit price for its whole position."""
    return [Strategy(_on_grid(game, p, _limit_micro(p)), p.cap_wh) for p in game.players]


def stepwise_book(game: Game, blocks: int = START_BLOCKS) -> list[Bid]:
    """The truthful book with each member's quadratic curve as ``blocks`` price steps.

    Order ids are ``player index x 65536 + step + 1`` (only bus prices are read
    from the clearing of this book, never who trades).
    """
    book = []
    for index, p in enumerate(game.players):
        for k in range(blocks):
            e_wh = round((k + 1) * p.cap_wh / blocks) - round(k * p.cap_wh / blocks)
            mid_kwh = (k + 0.5) * p.cap_wh / blocks / 1000.0
            if p.side == Side.BUY:
                marginal = p.lin - p.quad * mid_kwh
            else:
                marginal = p.lin + 2.0 * p.quad * mid_kwh
            price = round(marginal * MICRO)
            if e_wh > 0 and price > 0:
                book.append(Bid(index * _ID_STRIDE + k + 1, p.side, e_wh, price, p.bus))
    return book


def competitive_profile(
    game: Game, fees: IntArray | None = None, blocks: int = START_BLOCKS
) -> list[Strategy]:
    """Bus competitive prices of the truthful book as bids (module docstring).

    ``fees`` is the fee table the members reason with (default: the game's).
    """
    book = stepwise_book(game, blocks)
    table = game.fees if fees is None else fees
    solution = solve_optimal(book, table, game.kappa)
    out: list[Strategy] = []
    for p in game.players:
        limit = _limit_micro(p)
        if p.side == Side.BUY:
            price = min(solution.buyer_bus_price.get(p.bus, limit), limit)
        else:
            price = max(solution.seller_bus_price.get(p.bus, limit), limit)
        out.append(Strategy(_on_grid(game, p, price), p.cap_wh))
    return out


def start_profile(
    game: Game, how: str, fees: IntArray | None = None, last: Sequence[int | None] = ()
) -> list[Strategy]:
    """Dispatch on ``how`` ("competitive", "truthful", "warm"); ``last`` gives each
    player's last price for "warm" (None: truthful)."""
    if how == "competitive":
        return competitive_profile(game, fees)
    if how == "truthful":
        return truthful_profile(game)
    if how == "warm":
        base = truthful_profile(game)
        return [
            s if price is None else Strategy(_on_grid(game, p, price), p.cap_wh)
            for p, s, price in zip(
                game.players, base, list(last) or [None] * len(base), strict=True
            )
        ]
    message = f"best-response start {how!r}: expected 'competitive', 'truthful' or 'warm'"
    raise BestResponseError(message)
