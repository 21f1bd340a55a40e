"""Risk attitude: the mapping table and the behaviour it produces."""

from __future__ import annotations

import math

import pytest

from gridledger.bidding.adaptive_aggressive import AATrader
from gridledger.bidding.base import TraderSpec
from gridledger.bidding.risk import RISK_TABLE, attitude_value, risk_profile
from gridledger.errors import GridledgerError
from gridledger.studies.aa_markets import attitude_table


def test_named_attitudes_set_the_sign_of_r0() -> None:
    assert risk_profile("averse").r0 > 0  # bids close to the limit
    assert risk_profile("neutral").r0 == 0  # tau = p*
    assert risk_profile("seeking").r0 < 0  # holds out for margin
    averse, seeking = risk_profile("averse"), risk_profile("seeking")
    assert averse.lambda_a_up > averse.lambda_a_down  # steps up eagerly, backs off slowly
    assert seeking.lambda_a_up < seeking.lambda_a_down


def test_numbers_interpolate_the_table() -> None:
    rows = [row for _, row in RISK_TABLE]
    for row in rows:
        assert risk_profile(row.a) == row
    mid = risk_profile(0.25)  # halfway between neutral and averse
    assert mid.r0 == pytest.approx(0.25)
    assert mid.lambda_a_up == pytest.approx((0.025 + 0.04) / 2)
    assert risk_profile("averse") == risk_profile(0.5)
    assert attitude_value(-1) == -1.0


@pytest.mark.parametrize("bad", ["bold", "Averse", 1.5, -1.01, math.nan, True, None, [0.1]])
def test_bad_attitudes_are_named(bad: object) -> None:
    with pytest.raises(
        GridledgerError, match="allowed: 'seeking', 'neutral', 'averse' or a number in \\[-1, 1\\]"
    ) as info:
        risk_profile(bad)  # type: ignore[arg-type]
    assert repr(bad) in str(info.value)


def test_initial_targets_follow_attitude() -> None:
    # p* = 0.175 from past prices; a buyer with limit 0.275: averse above p*, seeking below.
    from gridledger.bidding.base import PublicView

    view = PublicView(0, 0, 5, 0.05, 0.30, past_trade_prices=[0.175] * 5)
    targets = {}
    for name in ("averse", "neutral", "seeking"):
        trader = AATrader(TraderSpec(1, "buy", 0.275, name, 0.05, 0.30))
        trader.quote(view)
        targets[name] = trader.target()
    assert targets["neutral"] == pytest.approx(0.175)
    assert targets["averse"] > targets["neutral"] > targets["seeking"]


def test_attitude_table_behaviour() -> None:
    """Averse members trade more often at a lower margin; seeking ones earn more per kWh."""
    rows = {
        str(r["attitude"]): {k: float(v) for k, v in r.items() if k != "attitude"}
        for r in attitude_table(seed=7)
    }
    averse, neutral, seeking = rows["averse"], rows["neutral"], rows["seeking"]
    assert averse["trade_rate"] > neutral["trade_rate"] > seeking["trade_rate"]
    assert seeking["margin_per_kwh"] > averse["margin_per_kwh"]
    assert averse["trade_rate"] - seeking["trade_rate"] >= 0.03
    for row in rows.values():
        assert 0 < row["trade_rate"] <= 1 and row["members"] == 60
