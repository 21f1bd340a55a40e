"""Fee-in-utility experiment (issue 7): variants, metrics, fee-aware AA baseline."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from gridledger.bidding.game import BestResponseError, BRSettings
from gridledger.bidding.mechanism import Position, TraderMechanism
from gridledger.market.orders import Side, Trade
from gridledger.members.member import Member, Role
from gridledger.scenario import load_scenario
from gridledger.studies.best_response import (
    ExperimentTrace,
    aa_mechanism_for,
    compare_fee_in_utility,
    compare_world,
    local_metrics,
    plot_experiment,
)
from gridledger.world import World, build_world

ZONE = np.array([0, 1, 1, 2, 2])
FEES = np.where(ZONE[:, None] == ZONE[None, :], 2_000, 30_000).astype(np.int64)
DIST = np.abs(np.arange(5)[:, None] - np.arange(5)[None, :]).astype(float)


def test_local_metrics_by_hand() -> None:
    trades = [
        Trade(1, 2, 600, 150_000, 148_000, buyer_bus=1, seller_bus=2),  # same zone, 1 km
        Trade(3, 4, 400, 180_000, 150_000, buyer_bus=1, seller_bus=4),  # across, 3 km
    ]
    m = local_metrics(trades, 2000, ZONE, DIST)
    assert m["p2p_kwh"] == pytest.approx(1.0)
    assert m["local_share"] == pytest.approx(0.6)
    assert m["p2p_share"] == pytest.approx(0.5)
    assert m["mean_distance"] == pytest.approx(0.6 * 1 + 0.4 * 3)
    assert math.isnan(local_metrics([], 0, ZONE)["local_share"])


def _member(i: int, bus: int, seller: bool) -> Member:
    return Member(
        id=i,
        name=f"m{i}",
        bus=bus,
        role=Role.PRODUCER if seller else Role.CONSUMER,
        load_annual_kwh=0.0 if seller else 1000.0,
        load_profile="h0",
        pv_kwp=5.0 if seller else 0.0,
        p_max_kw=10.0,
        cost_per_kwh=0.04 + 0.01 * (i % 3),
        utility_per_kwh=0.25,
        cost_a=0.01,
        utility_alpha=0.22 + 0.02 * (i % 3),
        utility_beta=0.05,
        risk_attitude="neutral",
        strategy="br",
    )


def test_fee_in_utility_variants_small_market() -> None:
    """Sellers and buyers in two zones: every variant runs, converges and is reported."""
    members = [_member(i, 1 + i % 4, seller=i % 2 == 1) for i in range(8)]
    by_id = {m.id: m for m in members}
    positions = [
        [
            Position(
                m.id,
                m.bus,
                Side.SELL if m.role == Role.PRODUCER else Side.BUY,
                900 + 100 * m.id + 50 * k,
                m.cost_per_kwh if m.role == Role.PRODUCER else by_id[m.id].utility_alpha,
                "neutral",
                "br",
            )
            for m in members
        ]
        for k in range(2)
    ]
    table = compare_fee_in_utility(
        members,
        positions,
        FEES,
        Fraction(1, 2),
        0.08,
        0.30,
        ZONE,
        distance=DIST,
        settings=BRSettings(k_max=60),
    )
    assert list(table.index) == ["br_fee", "br_fee_unaware", "br_no_fee"]
    assert (table["intervals"] == 2).all()
    assert (table["converged_share"] == 1.0).all()
    assert table.loc["br_no_fee", "fees_tokens"] == 0
    assert table.loc["br_fee", "fees_tokens"] > 0
    assert table.loc["br_fee", "p2p_kwh"] > 0
    # with the fee in the utilities, trades stay at least as local as without any fee
    assert table.loc["br_fee", "local_share"] >= table.loc["br_no_fee", "local_share"]


@pytest.fixture(scope="module")
def ieee33_world() -> World:
    scenario = load_scenario(
        "scenarios/ieee33.toml",
        [
            "market.clearing=greedy",
            "market.network_fee=distance",
            "horizon.first_interval=46",
            "horizon.intervals=2",
        ],
    )
    return build_world(scenario)


def test_aa_variant_is_fee_aware(ieee33_world: World) -> None:
    mech = aa_mechanism_for(ieee33_world)
    assert isinstance(mech, TraderMechanism)
    assert mech.fees is ieee33_world.fees
    assert aa_mechanism_for(ieee33_world, fee_aware=False).fees is None


def test_compare_world_two_noon_intervals(ieee33_world: World) -> None:
    trace = ExperimentTrace()
    table = compare_world(
        ieee33_world, intervals=[0, 1], settings=BRSettings(k_max=60), trace=trace
    )
    variants = ["br_fee", "br_fee_unaware", "br_no_fee", "aa", "aa_fee_unaware"]
    assert list(table.index) == variants
    assert (table.loc[["br_fee", "br_fee_unaware", "br_no_fee"], "intervals"] == 2).all()
    assert table.loc["aa", "p2p_kwh"] >= 0
    assert table.loc["br_fee", "p2p_kwh"] > 0
    assert table.loc["br_no_fee", "fees_tokens"] == 0
    # the trace: every variant's utilities for the same members, one interval's rounds
    assert list(trace.utilities) == variants
    assert len({frozenset(u) for u in trace.utilities.values()}) == 1
    assert trace.interval in (0, 1) and len(trace.rounds) >= 1
    fig = plot_experiment(table, trace)
    assert len(fig.axes) == 3


def test_compare_world_needs_a_fee() -> None:
    scenario = Path(__file__).resolve().parents[2] / "scenarios" / "ieee33.toml"
    world = build_world(
        load_scenario(scenario, ["horizon.intervals=1", 'market.network_fee="none"'])
    )
    with pytest.raises(BestResponseError, match="network_fee"):
        compare_world(world, intervals=[0])
