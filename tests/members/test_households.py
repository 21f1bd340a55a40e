"""Members at scale: households behind each load bus (``per_load_bus``), one member per
load element (``from_loads``), their own draws, aggregation per bus for the power flow,
and short off-chain runs (ieee33 with households; SimBench MV with the extra)."""

from __future__ import annotations

import importlib.util
from collections import Counter

import numpy as np
import pytest

from gridledger.errors import ScenarioError
from gridledger.members.generator import build_members, household_sites
from gridledger.members.member import Role
from gridledger.scenario import Scenario, validate_scenario
from gridledger.sim.loop import run
from gridledger.world import build_world

HAS_SIMBENCH = importlib.util.find_spec("simbench") is not None

BUSES = [1, 2, 3, 4]
BASE = np.array([0.0, 40.0, 20.0, 10.0, 5.0])


def scenario(members: dict[str, object], **top: object) -> Scenario:
    data: dict[str, object] = {
        "seed": 3,
        "horizon": {"intervals": 8, "first_interval": 44},
        "members": {"forecaster": "perfect", **members},
        **top,
    }
    return validate_scenario(data, "test")


def test_per_load_bus_places_households_sharing_the_bus_load() -> None:
    sc = scenario({"per_load_bus": 3, "dg_buses": [4], "dg_kwp": 50.0})
    one = build_members(scenario({"dg_buses": [4], "dg_kwp": 50.0}), BUSES, BASE, 5)
    many = build_members(sc, BUSES, BASE, 5)
    members = many.members
    assert len(members) == 3 * len(BUSES) + 1
    assert [m.id for m in members] == list(range(len(members)))  # unique ints, in order
    assert Counter(m.bus for m in members if m.role != Role.PRODUCER) == {b: 3 for b in BUSES}
    # the bus's annual energy is shared: households sum to the single member's
    for bus in BUSES:
        single = next(m for m in one.members if m.bus == bus and m.role != Role.PRODUCER)
        shares = [m.load_annual_kwh for m in members if m.bus == bus and m.role != Role.PRODUCER]
        assert sum(shares) == pytest.approx(single.load_annual_kwh)
    # each household draws its own profile
    rows = [i for i, m in enumerate(members) if m.bus == 1]
    assert not np.allclose(many.load_kw[rows[0]], many.load_kw[rows[1]])
    assert members[-1].role == Role.PRODUCER and members[-1].pv_kwp == 50.0


def test_household_pv_and_orientation_from_the_ranges() -> None:
    sc = scenario(
        {
            "per_load_bus": 50,
            "pv_share": 0.3,
            "pv_buses": [2],
            "household_pv_kwp": [4.0, 9.0],
            "pv_tilt_deg": [10.0, 45.0],
            "pv_azimuth_deg": [90.0, 270.0],
        }
    )
    sites = household_sites(sc.members, sc.seed, BUSES, BASE, None)
    assert len(sites) == 200
    with_pv = [s for s in sites if s.kwp > 0]
    assert all(s.bus == 2 for s in sites if s.bus == 2 and s.kwp > 0)
    assert all(s.kwp > 0 for s in sites if s.bus == 2)  # every household on a pv bus
    others = [s for s in sites if s.bus != 2]
    share = sum(s.kwp > 0 for s in others) / len(others)
    assert 0.2 < share < 0.4
    assert all(4.0 <= s.kwp <= 9.0 and s.role == Role.PROSUMER for s in with_pv)
    assert all(10.0 <= s.tilt_deg <= 45.0 for s in sites)
    assert all(s.azimuth_deg is not None and 90.0 <= s.azimuth_deg <= 270.0 for s in sites)
    assert len({round(s.kwp, 6) for s in with_pv}) == len(with_pv)  # own sizes
    assert len({s.tilt_deg for s in sites}) == len(sites)  # own orientations
    # deterministic in the seed
    again = household_sites(sc.members, sc.seed, BUSES, BASE, None)
    assert again == sites


def test_attitudes_drawn_per_household() -> None:
    sc = scenario({"per_load_bus": 25, "attitude_shares": {"averse": 0.5, "seeking": 0.5}})
    members = build_members(sc, BUSES, BASE, 5).members
    assert Counter(m.risk_attitude for m in members) == {"averse": 50, "seeking": 50}
    at_bus1 = {m.risk_attitude for m in members if m.bus == 1}
    assert at_bus1 == {"averse", "seeking"}


def test_from_loads_one_member_per_load_element() -> None:
    elements = (np.array([1, 1, 2, 3, 0, 4]), np.array([3.0, 2.0, 20.0, 10.0, 7.0, 0.0]))
    sc = scenario({"from_loads": True})
    ms = build_members(sc, BUSES, BASE, 5, elements)
    # the slack's element and the zero-load element are not members
    assert [m.bus for m in ms.members] == [1, 1, 2, 3]
    ratio = ms.members[0].load_annual_kwh / ms.members[1].load_annual_kwh
    assert ratio == pytest.approx(3.0 / 2.0)
    with pytest.raises(ScenarioError, match="from_loads"):
        build_members(sc, BUSES, BASE, 5, (np.zeros(0, dtype=int), np.zeros(0)))


def test_default_is_one_member_per_load_bus() -> None:
    ms = build_members(scenario({"pv_buses": [2], "pv_kwp": 30.0}), BUSES, BASE, 5)
    assert [m.bus for m in ms.members] == BUSES
    assert [m.pv_kwp for m in ms.members] == [0.0, 30.0, 0.0, 0.0]


def test_world_aggregates_households_per_bus() -> None:
    sc = scenario({"per_load_bus": 4, "pv_share": 0.5})
    world = build_world(sc)
    members = world.members.members
    assert len(members) == 4 * 32
    net = world.members.actual_net_kw[:, 0]
    per_bus = world.bus_injection_kw(net)
    for bus in (1, 17, 32):
        expect = sum(n for m, n in zip(members, net, strict=True) if m.bus == bus)
        assert per_bus[bus] == pytest.approx(expect)
    assert per_bus.sum() == pytest.approx(net.sum())


def test_households_run_off_chain() -> None:
    sc = scenario(
        {"per_load_bus": 5, "pv_share": 0.3, "pv_buses": [17], "dg_buses": [32]},
        market={"clearing": "greedy", "network_fee": "distance"},
        chain={"backend": "none"},
    )
    result = run(sc, world=build_world(sc))
    assert len(result.outcomes) == 8
    bidders = {b.member for o in result.outcomes for b in o.rounds[-1]}
    assert len(bidders) > 32  # members stay separate in the market: more than one per bus
    assert sum(t.e_wh for o in result.outcomes for t in o.settlement_trades) > 0


@pytest.mark.skipif(not HAS_SIMBENCH, reason="needs the optional simbench extra")
def test_simbench_mv_from_loads_runs_off_chain() -> None:
    sc = scenario(
        {"from_loads": True, "pv_share": 0.4, "household_pv_kwp": [100.0, 400.0]},
        network={"feeder": "1-MV-rural--0-sw"},
        market={"clearing": "greedy", "network_fee": "distance"},
        security={"congestion": "greedy"},
        chain={"backend": "none"},
    )
    world = build_world(sc)
    assert world.feeder.meshed
    assert len(world.members.members) == int(np.count_nonzero(world.feeder.load_element_p_kw))
    result = run(sc, world=world)
    assert len(result.outcomes) == 8
    assert sum(t.e_wh for o in result.outcomes for t in o.settlement_trades) > 0


@pytest.mark.slow  # about 15 s: profiles of 1,026 members
def test_over_a_thousand_members_on_ieee33() -> None:
    """The issue's size: 32 households per load bus, 1,026 members with the DG."""
    sc = scenario(
        {"per_load_bus": 32, "pv_share": 0.2, "dg_buses": [17, 32], "dg_kwp": 500.0},
        horizon={"intervals": 2, "first_interval": 48},
        market={"clearing": "greedy", "network_fee": "distance", "rounds": 2},
        chain={"backend": "none"},
    )
    world = build_world(sc)
    members = world.members.members
    assert len(members) == 32 * 32 + 2
    assert len({m.id for m in members}) == len(members) == members[-1].id + 1
    assert world.members.load_kw.shape == (len(members), 2)
    result = run(sc, world=world)
    assert len({b.member for o in result.outcomes for b in o.rounds[-1]}) > 500
