"""Zero-intelligence-constrained (ZI-C) baseline of Gode & Sunder (1993).

Every round a ZI-C trader draws a new price, uniformly between its limit price and
the market bound on the profitable side (the budget constraint): a buyer in
[feed-in, limit], a seller in [limit, retail]. Indicative rounds are redrawn; the
draw of the last round is binding. It never quotes at a loss and never learns.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gridledger.bidding.base import (
    OwnResult,
    PublicView,
    RoundInfo,
    TraderSpec,
    register_strategy,
)

__all__ = ["ZeroIntelligenceTrader"]


@dataclass
class ZeroIntelligenceTrader:
    spec: TraderSpec
    rng: np.random.Generator

    def quote(self, view: PublicView) -> float:
        s = self.spec
        if s.side == "buy":
            low, high = s.feed_in_per_kwh, min(s.limit_price_per_kwh, s.retail_per_kwh)
        else:
            low, high = max(s.limit_price_per_kwh, s.feed_in_per_kwh), s.retail_per_kwh
        if high <= low:
            return float(high if s.side == "buy" else low)
        return float(self.rng.uniform(low, high))

    def observe(self, view: PublicView, info: RoundInfo, own: OwnResult) -> None:
        return None


register_strategy("zi")(ZeroIntelligenceTrader)
