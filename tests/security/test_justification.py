"""The committed linearised network and justified curtailments (security/justification.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gridledger.grid.powerflow import run_ac
from gridledger.grid.sensitivities import sensitivities
from gridledger.market.justification import (
    NPCT_PER_PCT,
    LinearNetwork,
    RowMargin,
    UnjustifiedCurtailment,
    check_curtailments,
)
from gridledger.market.orders import Curtailment, Trade
from gridledger.scenario import load_scenario
from gridledger.security.congestion import CongestionSecurity, SecurityLimits
from gridledger.security.justification import (
    committed_network,
    justify,
    linear_network,
    row_margins_npct,
)
from gridledger.sim.loop import make_mechanism, run_interval
from gridledger.world import World, build_world

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "ieee33_stressed.toml"
LAST_STRESSED = 66


@pytest.fixture(scope="module")
def world() -> World:
    return build_world(load_scenario(SCENARIO, ['chain.backend="none"']))


def test_ieee33_network_rows_and_scale(world: World) -> None:
    feeder = world.feeder
    sens = sensitivities(feeder)
    net = linear_network(feeder, sens, world.interval_h)
    assert (net.n_buses, net.n_bus_rows, net.n_line_rows, net.n_trafo_rows) == (33, 32, 32, 0)
    assert net.interval_s == 900 and net.relief.min() >= 0
    # bus rows: LinDistFlow dv_dp in npct per Wh (15 min: 1 Wh = 4 W over the interval)
    expected = 100.0 * NPCT_PER_PCT * sens.dv_dp[5, 17] / (1000.0 * 0.25)
    assert net.relief[4, 17] == round(expected)
    # line rows: only the buses below a line load its upward row
    assert (net.relief[32:] > 0).sum() == int((np.abs(sens.ptdf_line) > 0).sum())
    assert net.row_of("bus", 9999) is None and net.row_of("line", 31) == 63
    assert net.element_of(63) == ("line", 31)
    assert np.array_equal(committed_network(world).relief, net.relief)


def test_row_margins_follow_the_ac_verdict(world: World) -> None:
    feeder = world.feeder
    sens = sensitivities(feeder)
    p = world.bus_injection_kw(world.members.forecast_net_kw[:, 54])
    result = run_ac(feeder, p)
    margin = row_margins_npct(feeder, sens, result, p, 1.05, 100.0)
    over = np.flatnonzero(result.v_pu[1:] > 1.05)
    assert over.size and set(np.flatnonzero(margin[:32] < 0).tolist()) == set(over.tolist())
    assert margin[over[0]] == np.floor(100.0 * (1.05 - result.v_pu[over[0] + 1]) * NPCT_PER_PCT)


@pytest.mark.parametrize(
    "rule",
    [pytest.param("greedy", marks=pytest.mark.slow), "lp"],  # greedy: slow lane, 5 s
)
def test_stressed_day_curtailments_are_justified(world: World, rule: str) -> None:
    """Every curtailment of the stressed day passes the on-chain check (reference)."""
    sec = CongestionSecurity(rule, SecurityLimits.from_spec(world.scenario.security))  # type: ignore[arg-type]
    net = sec.network(world.feeder, world.interval_h)
    mechanism = make_mechanism(world)
    curtailed = 0
    for k in range(LAST_STRESSED):
        o = run_interval(world, k, mechanism, sec)
        s = o.security
        if not s.curtailments:
            assert s.margins == () and s.certificate == ()
            continue
        curtailed += 1
        cost = check_curtailments(net, rule, s.trades, s.curtailments, s.margins, s.certificate)
        assert cost > 0 and s.violations_after == 0
        assert all(m.margin_npct < 0 <= m.allowance_npct for m in s.margins)
    assert curtailed >= 10


def _toy() -> tuple[LinearNetwork, tuple[Trade, ...]]:
    relief = np.array([[0, 100, 100], [0, 100, 400], [0, 50, 50], [0, 0, 50]], dtype=np.int64)
    net = LinearNetwork(3, 2, 2, 0, 900, relief)
    trades = (Trade(1, 2, 100, 90_000, 80_000, 0, 1), Trade(3, 4, 100, 90_000, 60_000, 0, 2))
    return net, trades


def test_unfixable_row_gets_no_curtailment() -> None:
    """A row no cut can fix is left out (reported); the verdict lists justified cuts only."""
    net, trades = _toy()
    margin = np.array([-1_000, -(10**9), 5, 5], dtype=np.int64)  # row 1 needs far too much
    j = justify("lp", net, trades, margin, np.zeros(4, dtype=np.int64))
    assert j.unresolvable == (1,)
    assert [m.element_index for m in j.margins] == [1] and j.curtailed_wh > 0
    check_curtailments(net, "lp", trades, j.curtailments, j.margins, j.certificate)


def test_lp_cuts_the_cheapest_relief_and_rounds_up() -> None:
    net, trades = _toy()
    margin = np.array([5, -1_001, 5, 5], dtype=np.int64)
    j = justify("lp", net, trades, margin, np.zeros(4, dtype=np.int64))
    # trade 1 (seller price 60000, 400 npct/Wh) is cheaper per relief: ceil(1001 / 400) = 3 Wh
    assert j.cut_wh == (0, 3)
    assert j.curtailments == (Curtailment(1, 3, "bus", 2),)
    assert j.margins == (RowMargin("bus", 2, -1_001, 0),)


def test_lp_rounding_keeps_a_row_loaded_by_a_cut_within_the_certificate() -> None:
    """Found by CI's hypothesis run: rounding every fractional cut up broke a row the cut
    loads (relief -20), the repair then cut a dear trade and the cost left the dual bound.
    The cheapest feasible floor/ceiling rounding stays inside it."""
    relief = np.zeros((9, 5), dtype=np.int64)
    relief[5] = [10, 0, 36, 186, 0]
    relief[6] = [0, 0, 68, -20, 0]
    net = LinearNetwork(5, 4, 4, 1, 900, relief)
    trades = tuple(
        Trade(2 * t, 2 * t + 1, e_wh, 200_000, price, 0, bus)
        for t, (e_wh, price, bus) in enumerate(
            [(309, 0, 0), (27, 63, 2), (59, 0, 3), (1, 0, 0), (1, 0, 0)]
        )
    )
    margin = np.array([0, 0, 0, 0, 0, -136, -589, 0, 0], dtype=np.int64)
    allowance = np.array([0, 0, 0, 0, 0, 14_688, 0, 0, 0], dtype=np.int64)
    j = justify("lp", net, trades, margin, allowance)
    assert j.unresolvable == () and j.cut_wh == (309, 26, 58, 1, 1)
    check_curtailments(net, "lp", trades, j.curtailments, j.margins, j.certificate)


def test_curtailment_naming_a_missing_element_is_unjustified() -> None:
    """The issue's example: bus 9999 does not exist, so the chain (and audit) reject it."""
    net, trades = _toy()
    with pytest.raises(UnjustifiedCurtailment) as info:
        check_curtailments(
            net, "greedy", trades, [Curtailment(0, 10, "bus", 9999)], [RowMargin("bus", 1, -5)]
        )
    assert info.value.error == "UnknownElement" and info.value.args_ == (0,)


def test_cigre_lv_network_has_a_transformer_row() -> None:
    """cigre_lv: 18 bus rows, 17 line rows and one transformer row loaded by every LV bus."""
    scenario = load_scenario(
        Path(__file__).resolve().parents[2] / "scenarios" / "cigre_lv.toml",
        ['chain.backend="none"'],
    )
    feeder = build_world(scenario).feeder
    sens = sensitivities(feeder)
    net = linear_network(feeder, sens, 0.25)
    assert (net.n_bus_rows, net.n_line_rows, net.n_trafo_rows) == (18, 17, 1)
    trafo = net.relief[net.row_of("trafo", 0)]
    # 100 % / 500 kVA per kW = 0.2 %/kW; 1 Wh in 15 min = 4 W: 8e-4 % = 800,000 npct per Wh
    assert trafo[0] == 0 and set(trafo[1:].tolist()) == {800_000}
    assert net.relief.min() >= 0 and int(net.relief.max()) < 2**31
