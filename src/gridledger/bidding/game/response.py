"""The exact best response of one member to the others' bids (see :mod:`.kernel`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from gridledger.bidding.game.kernel import book_arrays, evaluate_candidates, snap_all
from gridledger.bidding.game.model import Game, IntArray, Strategy
from gridledger.market.orders import Side

__all__ = ["BestResponse", "best_response"]


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
    fee_tab = game.fees if fees is None else fees
    me = game.players[index]
    current = profile[index]
    bid_id, bid_p, bid_cap, bid_bus, ask_id, ask_p, ask_cap, ask_bus = book_arrays(
        game, profile, index
    )
    # others' pairs, ranked like clear_greedy
    fee_o = fee_tab[ask_bus[None, :], bid_bus[:, None]]  # (nb, ns)
    sur_o = bid_p[:, None] - ask_p[None, :] - fee_o
    kb, js = np.nonzero(sur_o >= 1)
    o_sur = sur_o[kb, js]
    o_fee = fee_o[kb, js]
    order = np.lexsort((ask_id[js], bid_id[kb], o_fee, -o_sur))
    kb, js, o_sur, o_fee = kb[order], js[order], o_sur[order], o_fee[order]
    is_buyer = me.side == Side.BUY
    if is_buyer:
        m_fee = fee_tab[ask_bus, me.bus]
        m_base = ask_p + m_fee  # my surplus = price - base
        m_cid = ask_id
        m_order = np.lexsort((m_cid, m_fee, m_base))
        # breakpoints: pair appears; I overtake buyer k at seller j
        entry = m_base + 1
        c_mine = fee_tab[ask_bus[js], me.bus]
        t = bid_p[kb] - o_fee + c_mine
        wins = (c_mine < o_fee) | ((c_mine == o_fee) & (me.member < bid_id[kb]))
        cross = t + np.where(wins, 0, 1)
        raw = np.concatenate([entry, cross, [game.low_micro, current.price_per_kwh_micro]])
        snapped = snap_all(game, raw, up=True)
        c_price = ask_p
    else:
        m_fee = fee_tab[me.bus, bid_bus]
        m_base = bid_p - m_fee  # my surplus = base - price
        m_cid = bid_id
        m_order = np.lexsort((m_cid, m_fee, -m_base))
        entry = m_base - 1
        c_mine = fee_tab[me.bus, bid_bus[kb]]
        t = ask_p[js] + o_fee - c_mine
        wins = (c_mine < o_fee) | ((c_mine == o_fee) & (me.member < ask_id[js]))
        cross = t - np.where(wins, 0, 1)
        raw = np.concatenate([entry, cross, [game.high_micro, current.price_per_kwh_micro]])
        snapped = snap_all(game, raw, up=False)
        c_price = bid_p
    cur_price = current.price_per_kwh_micro
    cand = np.unique(np.append(snapped, np.int64(cur_price)))
    at_current = int(np.searchsorted(cand, cur_price))
    lin = me.lin
    quad = me.quad
    q, u, u_cur = evaluate_candidates(
        cand,
        is_buyer,
        me.member,
        me.cap_wh,
        float(lin),
        float(quad),
        np.ascontiguousarray(m_order, dtype=np.int64),
        np.ascontiguousarray(m_base[m_order], dtype=np.int64),
        np.ascontiguousarray(m_fee[m_order], dtype=np.int64),
        np.ascontiguousarray(m_cid[m_order], dtype=np.int64),
        np.ascontiguousarray(kb, dtype=np.int64),
        np.ascontiguousarray(js, dtype=np.int64),
        np.ascontiguousarray(o_sur, dtype=np.int64),
        np.ascontiguousarray(o_fee, dtype=np.int64),
        np.ascontiguousarray(bid_id[kb], dtype=np.int64),
        np.ascontiguousarray(ask_id[js], dtype=np.int64),
        np.ascontiguousarray(bid_cap, dtype=np.int64),
        np.ascontiguousarray(ask_cap, dtype=np.int64),
        np.ascontiguousarray(c_price, dtype=np.int64),
        game.kappa.numerator,
        game.kappa.denominator,
        at_current,
        current.e_wh,
    )
    top = float(u.max())
    tol = 1e-9 * max(1.0, abs(top))
    if top <= u_cur + tol:  # the current bid is a best response: no change
        return BestResponse(current, u_cur, u_cur, len(cand))
    # among equal payoffs prefer the price closest to the current one
    ties = np.flatnonzero(u >= top - tol)
    best = int(ties[np.argmin(np.abs(cand[ties] - cur_price))])
    return BestResponse(Strategy(int(cand[best]), int(q[best])), float(u[best]), u_cur, len(cand))
