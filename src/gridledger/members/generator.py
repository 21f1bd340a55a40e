"""Build a scenario's members and their actual and forecast profiles.

The generator places one consumer on every load bus of the feeder, turns the
consumers on ``pv_buses`` into PV prosumers and adds a PV producer (DG) on
each of ``dg_buses``. At scale (``per_load_bus`` > 1 or ``from_loads``) it
places households instead: ``per_load_bus`` behind each load bus sharing the
bus's base load, or one per load element of the case; each household draws its
own PV (on ``pv_buses``, or with probability ``pv_share``), PV size, tilt and
azimuth from the scenario's ranges (a separate random stream, so the default
one-per-bus draws are unchanged). Loads follow a BDEW standard load profile scaled so the
simulated day's peak equals the bus's base load times ``load_scaling``.
Forecasts are made by the scenario's forecaster from a history that starts one
day before the horizon (so persistence and fitted models have a previous day).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from gridledger.errors import ScenarioError
from gridledger.members.forecast import make_forecaster
from gridledger.members.member import Member, Role
from gridledger.members.profiles import load_profile_kw
from gridledger.members.pv import pv_profile_kw
from gridledger.scenario import MemberOverride, MembersSpec, Scenario

__all__ = ["MemberSet", "Site", "build_members", "household_sites", "households_mode"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MemberSet:
    """Members and their profiles; arrays are (members, intervals) in kW (mean power)."""

    members: list[Member]
    load_kw: np.ndarray
    pv_kw: np.ndarray
    load_forecast_kw: np.ndarray
    pv_forecast_kw: np.ndarray

    @property
    def actual_net_kw(self) -> np.ndarray:
        """Net injection (generation positive) actually metered."""
        return self.pv_kw - self.load_kw

    @property
    def forecast_net_kw(self) -> np.ndarray:
        """Net injection members bid on."""
        return self.pv_forecast_kw - self.load_forecast_kw


@dataclass(frozen=True)
class Site:
    """Where one member sits and what it has: bus, role, PV size and orientation, base load."""

    bus: int
    role: Role
    kwp: float
    has_load: bool
    base_kw: float
    tilt_deg: float = 30.0
    azimuth_deg: float | None = None


def households_mode(spec: MembersSpec) -> bool:
    """Whether the scenario asks for households (several per bus or one per load element)."""
    return spec.per_load_bus > 1 or spec.from_loads


def household_sites(
    spec: MembersSpec,
    seed: int,
    load_buses: list[int],
    base_load_p_kw: np.ndarray,
    load_elements: tuple[np.ndarray, np.ndarray] | None,
) -> list[Site]:
    """Households: ``per_load_bus`` per load bus, or one per load element (``from_loads``).

    A household's base load is its share of the bus's (``base / per_load_bus``) or its
    element's. PV: every household on ``pv_buses`` and a ``pv_share`` of the others,
    size uniform in ``household_pv_kwp``, tilt in ``pv_tilt_deg``, azimuth in
    ``pv_azimuth_deg`` (unset: facing the equator). Draws come from their own stream.
    """
    rng = np.random.default_rng([seed, 14])
    places: list[tuple[int, float]] = []
    if spec.from_loads:
        if load_elements is None or not len(load_elements[0]):
            message = "members.from_loads: the feeder has no load elements to turn into members"
            raise ScenarioError(message)
        for bus, p_kw in zip(load_elements[0].tolist(), load_elements[1].tolist(), strict=True):
            if bus > 0 and p_kw > 0:
                places.append((int(bus), float(p_kw)))
    else:
        n = spec.per_load_bus
        places = [(bus, float(base_load_p_kw[bus]) / n) for bus in load_buses for _ in range(n)]
    pv_set = set(spec.pv_buses)
    sites: list[Site] = []
    for bus, base_kw in places:
        has_pv = bus in pv_set or rng.random() < spec.pv_share
        kwp = float(rng.uniform(*spec.household_pv_kwp)) if has_pv else 0.0
        tilt = float(rng.uniform(*spec.pv_tilt_deg))
        azimuth = float(rng.uniform(*spec.pv_azimuth_deg)) if spec.pv_azimuth_deg else None
        role = Role.PROSUMER if kwp > 0 else Role.CONSUMER
        sites.append(Site(bus, role, kwp, True, base_kw, tilt, azimuth))
    return sites


def _sizes(values: float | list[float], count: int) -> list[float]:
    return list(values) if isinstance(values, list) else [float(values)] * count


def _attitudes(spec: MembersSpec, count: int, rng: np.random.Generator) -> list[str | float]:
    names = list(spec.attitude_shares)
    shares = np.array([spec.attitude_shares[n] for n in names], dtype=float)
    # deterministic quota (largest remainder) then a seeded shuffle: shares are met exactly
    quota = np.floor(shares * count).astype(int)
    rest = count - int(quota.sum())
    order = np.argsort(-(shares * count - quota), kind="stable")
    quota[order[:rest]] += 1
    labels: list[str | float] = [n for n, q in zip(names, quota, strict=True) for _ in range(q)]
    rng.shuffle(labels)
    return labels


def build_members(
    scenario: Scenario,
    load_buses: list[int],
    base_load_p_kw: np.ndarray,
    n_buses: int,
    load_elements: tuple[np.ndarray, np.ndarray] | None = None,
) -> MemberSet:
    """Members for ``scenario`` on a feeder with the given load buses and base loads.

    ``load_buses`` are market bus indices with a load; ``base_load_p_kw`` is
    indexed by market bus; ``load_elements`` (market bus, kW) of each load element
    of the case, for ``members.from_loads``. All randomness comes from
    ``scenario.seed``.
    """
    spec = scenario.members
    horizon = scenario.horizon
    rng = np.random.default_rng(scenario.seed)
    for key, buses in (("members.pv_buses", spec.pv_buses), ("members.dg_buses", spec.dg_buses)):
        for bus in buses:
            if not 1 <= bus < n_buses:
                message = f"{key}: bus {bus} is not a bus of the feeder (1..{n_buses - 1})"
                raise ScenarioError(message)
    for override in spec.overrides:
        if override.bus not in load_buses and override.bus not in spec.dg_buses:
            message = f"members.overrides: bus {override.bus} hosts no member"
            raise ScenarioError(message)
    per_day = 24 * 60 // horizon.interval_min
    forecaster = make_forecaster(
        spec.forecaster, nmae=spec.forecast_nmae, interval_min=horizon.interval_min
    )
    history_days = max(1, forecaster.history_days)
    skip = history_days * per_day + horizon.first_interval  # history, then the offset
    total = horizon.intervals + skip
    start = pd.Timestamp(horizon.start) - pd.Timedelta(days=history_days)
    pv_size = dict(zip(spec.pv_buses, _sizes(spec.pv_kwp, len(spec.pv_buses)), strict=True))
    dg_size = dict(zip(spec.dg_buses, _sizes(spec.dg_kwp, len(spec.dg_buses)), strict=True))
    overrides = {ov.bus: ov for ov in spec.overrides}

    sites: list[Site] = []
    if households_mode(spec):
        sites = household_sites(spec, scenario.seed, load_buses, base_load_p_kw, load_elements)
    else:
        for bus in load_buses:
            kwp = pv_size.get(bus, 0.0)
            role = Role.PROSUMER if kwp > 0 else Role.CONSUMER
            sites.append(Site(bus, role, kwp, True, float(base_load_p_kw[bus])))
    for bus in spec.dg_buses:
        sites.append(Site(bus, Role.PRODUCER, dg_size[bus], False, 0.0))
    attitudes = _attitudes(spec, len(sites), rng)

    members: list[Member] = []
    loads, pvs = [], []
    unit = load_profile_kw(spec.load_profile, 1.0, start, total, horizon.interval_min)
    first_day = history_days * per_day
    day_peak_unit = float(unit[first_day : first_day + per_day].max()) or 1.0
    for member_id, site in enumerate(sites):
        bus, role, kwp, has_load = site.bus, site.role, site.kwp, site.has_load
        ov: MemberOverride | None = overrides.get(bus) if has_load else None
        if ov is not None and ov.pv_kwp is not None:
            kwp = ov.pv_kwp
            role = Role.PROSUMER if kwp > 0 else Role.CONSUMER
        annual_kwh = site.base_kw * spec.load_scaling / day_peak_unit if has_load else 0.0
        load = (
            load_profile_kw(spec.load_profile, annual_kwh, start, total, horizon.interval_min, rng)
            if has_load
            else np.zeros(total)
        )
        pv = (
            pv_profile_kw(
                kwp,
                spec.latitude,
                spec.longitude,
                start,
                total,
                horizon.interval_min,
                rng,
                spec.cloudiness,
                weather_seed=scenario.seed,
                utc_offset_h=spec.utc_offset_h,
                tilt_deg=site.tilt_deg,
                azimuth_deg=site.azimuth_deg,
            )
            if kwp > 0
            else np.zeros(total)
        )
        attitude: str | float = attitudes[member_id]
        strategy = spec.strategy or scenario.market.mechanism
        if ov is not None:
            attitude = ov.risk_attitude if ov.risk_attitude is not None else attitude
            strategy = ov.strategy or strategy
        cost = float(rng.uniform(*spec.cost_per_kwh))
        utility = float(rng.uniform(*spec.utility_per_kwh))
        peak_kw = max(float(load.max()), kwp, 1e-3)
        members.append(
            Member(
                id=member_id,
                name=f"{role.value}-{member_id:03d}@bus{bus}",
                bus=bus,
                role=role,
                load_annual_kwh=annual_kwh,
                load_profile=spec.load_profile,
                pv_kwp=kwp,
                p_max_kw=1.2 * peak_kw,
                cost_per_kwh=cost,
                utility_per_kwh=utility,
                cost_a=cost / max(kwp * horizon.interval_h, 1e-3),
                utility_alpha=utility,
                utility_beta=utility / max(float(load.max()) * horizon.interval_h, 1e-3),
                risk_attitude=attitude,
                strategy=strategy,
            )
        )
        loads.append(load)
        pvs.append(pv)
    load_kw = np.vstack(loads)
    pv_kw = np.vstack(pvs)
    load_fc = np.vstack([forecaster.forecast_series(row, rng) for row in load_kw])
    pv_fc = np.vstack([forecaster.forecast_series(row, rng) for row in pv_kw])
    pv_fc = np.where(pv_kw > 0, np.clip(pv_fc, 0.0, None), 0.0)
    load_fc = np.clip(load_fc, 0.0, None)
    log.info("built %d members (%d with PV)", len(members), sum(m.pv_kwp > 0 for m in members))
    return MemberSet(
        members=members,
        load_kw=load_kw[:, skip:],
        pv_kw=pv_kw[:, skip:],
        load_forecast_kw=load_fc[:, skip:],
        pv_forecast_kw=pv_fc[:, skip:],
    )
