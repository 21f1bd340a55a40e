"""The static world of a run: feeder, distances, members, tariffs and the fee table.

Built once from a scenario by :func:`build_world`. It sits above ``grid``,
``members`` and ``market`` (it combines them) and below the stages that use it
(``security``, ``bidding`` and ``sim``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from gridledger.grid import (
    ElectricalDistances,
    Feeder,
    branch_impedances,
    electrical_distances,
    load_feeder,
)
from gridledger.market.fees import fee_table
from gridledger.market.orders import Trade
from gridledger.market.path_fees import TABLE_MAX_BUSES, PathFees, path_fees
from gridledger.market.settlement import Tariffs, tolerance_bp_from_pct
from gridledger.market.units import price_to_micro
from gridledger.market.welfare import welfare_micro as trade_welfare_micro
from gridledger.members.generator import MemberSet, build_members
from gridledger.scenario import Scenario

__all__ = ["World", "build_world", "true_limits_micro", "welfare_micro"]


@dataclass
class World:
    """Everything static for one run."""

    scenario: Scenario
    feeder: Feeder
    distances: ElectricalDistances
    members: MemberSet
    tariffs: Tariffs
    fees: np.ndarray | None
    kappa: Fraction
    fee_paths: PathFees | None = None  # the fees in path form (market.fee_form)

    @property
    def committed_fees(self) -> np.ndarray | PathFees | None:
        """The fees as the chain commits them: in path form when they are defined so."""
        return self.fee_paths if self.fee_paths is not None else self.fees

    @property
    def interval_h(self) -> float:
        return self.scenario.horizon.interval_h

    @property
    def n_buses(self) -> int:
        return len(self.feeder.bus_ids)

    def bus_injection_kw(self, member_net_kw: np.ndarray) -> np.ndarray:
        """Sum members' net injections (kW) per market bus."""
        out = np.zeros(self.n_buses)
        buses = np.array([m.bus for m in self.members.members])
        np.add.at(out, buses, member_net_kw)
        return out


def _fee_table(scenario: Scenario, distances: ElectricalDistances) -> np.ndarray | None:
    if scenario.market.network_fee == "none":
        return None
    method = scenario.market.network_fee
    params = dict(scenario.market.fee_params.get(method, {}))
    uses_ptdf_distance = method == "distance" and params.get("metric") == "ptdf"
    return fee_table(
        method,
        params,
        path_km=distances.path_km,
        path_ohm=distances.path_ohm,
        ptdf_distance=distances.ptdf_distance if uses_ptdf_distance else None,
        ptdf=distances.ptdf,
        line_rating_kw=distances.line_rating_kw,
        line_length_km=distances.line_length_km,
        zone=distances.zone,
    )


def _path_fees(scenario: Scenario, feeder: Feeder) -> PathFees | None:
    """The fees in path form when the scenario defines them so (``market.fee_form``)."""
    market = scenario.market
    form = market.fee_form
    n_buses = len(feeder.bus_ids)
    if market.network_fee == "none" or form == "table":
        return None
    if form == "auto" and n_buses <= TABLE_MAX_BUSES:
        return None
    imp = branch_impedances(feeder)
    rating = np.concatenate([feeder.line_rating_kva, np.ones(feeder.n_trafos)])
    return path_fees(
        market.network_fee,
        market.fee_params.get(market.network_fee, {}),
        n_buses=n_buses,
        edge_from=feeder.tree.edge_from,
        edge_to=feeder.tree.edge_to,
        edge_km=imp.length_km,
        edge_ohm=np.hypot(imp.r_ohm, imp.x_ohm),
        edge_is_line=imp.is_line,
        edge_rating_kw=rating,
    )


def build_world(scenario: Scenario) -> World:
    """Load the feeder, build members and profiles, and the fee table."""
    security = scenario.security
    feeder = load_feeder(
        scenario.network.feeder, v_min_pu=security.v_min_pu, v_max_pu=security.v_max_pu
    )
    distances = electrical_distances(feeder)
    base = np.asarray(feeder.base_load_p_kw, dtype=float)
    load_buses = [b for b in range(1, len(feeder.bus_ids)) if base[b] > 0]
    elements = (feeder.load_element_bus, feeder.load_element_p_kw)
    members = build_members(scenario, load_buses, base, len(feeder.bus_ids), elements)
    market = scenario.market
    tariffs = Tariffs(
        retail_per_kwh_micro=price_to_micro(market.retail_per_kwh),
        feed_in_per_kwh_micro=price_to_micro(market.feed_in_per_kwh),
        tolerance_bp=tolerance_bp_from_pct(market.tolerance_pct),
    )
    kappa = Fraction(market.kappa).limit_denominator(1000)
    paths = _path_fees(scenario, feeder)
    fees = _fee_table(scenario, distances) if paths is None else paths.table
    return World(scenario, feeder, distances, members, tariffs, fees, kappa, paths)


def true_limits_micro(world: World) -> tuple[list[int], list[int]]:
    """Members' true value (buyers) and cost (sellers) per kWh in micro-tokens.

    Values are capped at the retail tariff and costs floored at the feed-in
    tariff: nobody pays more for P2P energy than for grid energy, nor sells below
    what the grid pays.
    """
    market = world.scenario.market
    members = world.members.members
    values = [price_to_micro(min(m.utility_per_kwh, market.retail_per_kwh)) for m in members]
    costs = [price_to_micro(max(m.cost_per_kwh, market.feed_in_per_kwh)) for m in members]
    return values, costs


def welfare_micro(world: World, trades: Sequence[Trade]) -> int:
    """Gains from P2P trade net of use-of-system charges, in micro-tokens.

    Sum over trades of E x (buyer's value - seller's cost - fee), with values and
    costs the members' true limit prices (not their bids); see
    :func:`gridledger.market.welfare.welfare_micro`.
    """
    values, costs = true_limits_micro(world)
    return trade_welfare_micro(trades, values, costs)
