"""Scenario files: a validated model (pydantic) and a TOML loader with overrides.

A scenario describes one study: the feeder, its members (or a generator for
them), the horizon, the market rules, the security limits, the chain backend
and the random seed. Every key is validated on load; an invalid file fails with
one message naming the file, the key, the bad value and what is allowed.

``--set KEY.PATH=VALUE`` overrides are applied to the raw TOML data before
validation, so they are checked exactly like the file.
"""

from __future__ import annotations

import copy
import datetime as dt
import tomllib
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from gridledger.errors import ScenarioError

__all__ = [
    "SHIPPED_DIR",
    "ChainSpec",
    "HorizonSpec",
    "MarketSpec",
    "MemberOverride",
    "MembersSpec",
    "NetworkSpec",
    "Scenario",
    "SecuritySpec",
    "apply_overrides",
    "load_scenario",
    "max_rounds",
    "parse_override",
    "resolve_scenario_path",
    "shipped_scenarios",
    "url_problem",
    "validate_scenario",
]

Attitude = Literal["averse", "neutral", "seeking"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class NetworkSpec(_Strict):
    """The feeder: a name from ``gridledger.grid`` (ieee33, cigre_lv, a SimBench code)."""

    feeder: str = "ieee33"


class HorizonSpec(_Strict):
    """When and how long: ``intervals`` settlement intervals of ``interval_min`` minutes."""

    start: dt.date = dt.date(2026, 6, 21)
    first_interval: int = Field(0, ge=0, le=287)
    """Offset of the first simulated interval from midnight (e.g. 44 = 11:00 at 15 min);
    less than one day's intervals. A horizon longer than the rest of the day rolls on
    into the following days (profiles and PV are generated for every day it covers)."""
    intervals: int = Field(96, ge=1, le=35_040)
    """At most one year of intervals."""
    interval_min: Literal[5, 10, 15, 30, 60] = 15

    @property
    def interval_h(self) -> float:
        return self.interval_min / 60.0

    @property
    def per_day(self) -> int:
        """Intervals in one day."""
        return 24 * 60 // self.interval_min

    @model_validator(mode="after")
    def _within_day(self) -> HorizonSpec:
        if self.first_interval >= self.per_day:
            message = (
                f"first_interval: {self.first_interval} is past the day's last interval "
                f"({self.per_day - 1} at {self.interval_min} min); move horizon.start instead"
            )
            raise ValueError(message)
        return self


class MemberOverride(_Strict):
    """Explicit settings for the member(s) at one bus, replacing the generator's choice."""

    bus: int = Field(ge=1)
    pv_kwp: float | None = Field(None, ge=0)
    risk_attitude: Attitude | float | None = None
    strategy: str | None = None


def _equal_shares() -> dict[Attitude, float]:
    return {"averse": 1 / 3, "neutral": 1 / 3, "seeking": 1 / 3}


class MembersSpec(_Strict):
    """Generator for the members.

    By default one consumer per load bus of the feeder (``per_load_bus`` households
    per load bus, or one member per load element with ``from_loads``), with a BDEW profile scaled so the
    day's peak equals the bus's base load times ``load_scaling``. Buses in
    ``pv_buses`` host PV prosumers (``pv_kwp`` each, or a list), buses in
    ``dg_buses`` host an extra producer (a PV plant of ``dg_kwp``). Risk
    attitudes are drawn with the given shares; costs and utilities uniformly
    from their ranges (tokens/kWh).
    """

    load_profile: Literal[
        "h0", "h0_dyn", "g0", "g1", "g2", "g3", "g4", "g5", "g6", "l0", "l1", "l2", "h25", "g25"
    ] = "h0_dyn"
    load_scaling: float = Field(1.0, gt=0, le=10)
    pv_buses: list[int] = Field(default_factory=list)
    pv_kwp: float | list[float] = 10.0
    dg_buses: list[int] = Field(default_factory=list)
    dg_kwp: float | list[float] = 100.0
    attitude_shares: dict[Attitude, float] = Field(default_factory=_equal_shares)
    strategy: str | None = None
    """Default bidding strategy of members (zi, aa); None follows ``market.mechanism``."""
    cost_per_kwh: tuple[float, float] = (0.04, 0.10)
    utility_per_kwh: tuple[float, float] = (0.18, 0.30)
    latitude: float = Field(52.5, ge=-90, le=90)
    longitude: float = Field(13.4, ge=-180, le=180)
    cloudiness: float = Field(0.3, ge=0, le=1)
    utc_offset_h: float = Field(2.0, ge=-12, le=14)
    """Offset of the profiles' wall clock from UTC (PV follows the sun; 2 = CEST)."""
    forecaster: str = "noisy"
    forecast_nmae: float = Field(0.1, ge=0, le=1)
    overrides: list[MemberOverride] = Field(default_factory=list)
    per_load_bus: int = Field(1, ge=1, le=1000)
    """Households behind every load bus (1 = one consumer per load bus, the default).
    With more than one, each household draws its own load profile, PV and attitude:
    the bus's base load is shared among them (docs/members.md, "Members at scale")."""
    from_loads: bool = False
    """Every load element of the feeder's case is a member (SimBench grids), instead
    of one member per load bus."""
    pv_share: float = Field(0.0, ge=0, le=1)
    """Households (per_load_bus > 1 or from_loads): share that get PV, drawn per
    household, on top of every household on ``pv_buses``."""
    household_pv_kwp: tuple[float, float] = (3.0, 15.0)
    """Households: PV size range (kWp), drawn uniformly per household with PV."""
    pv_tilt_deg: tuple[float, float] = (30.0, 30.0)
    """Households: PV tilt range (degrees from horizontal), drawn uniformly."""
    pv_azimuth_deg: tuple[float, float] | None = None
    """Households: PV azimuth range (degrees from north, 180 = south); unset = facing
    the equator."""

    @model_validator(mode="after")
    def _check(self) -> MembersSpec:
        for name in ("cost_per_kwh", "utility_per_kwh"):
            low, high = getattr(self, name)
            if not 0 <= low <= high:
                message = f"need 0 <= low <= high, got [{low}, {high}]"
                raise ValueError(f"{name}: {message}")
        for name, (low, high), top in (
            ("household_pv_kwp", self.household_pv_kwp, 10_000.0),
            ("pv_tilt_deg", self.pv_tilt_deg, 90.0),
            ("pv_azimuth_deg", self.pv_azimuth_deg or (0.0, 0.0), 360.0),
        ):
            if not 0 <= low <= high <= top:
                message = f"need 0 <= low <= high <= {top:g}, got [{low}, {high}]"
                raise ValueError(f"{name}: {message}")
        if self.from_loads and self.per_load_bus > 1:
            message = (
                f"per_load_bus: {self.per_load_bus} households per load bus cannot be combined "
                "with from_loads = true (every load element is one member); choose one"
            )
            raise ValueError(message)
        total = sum(self.attitude_shares.values())
        if abs(total - 1.0) > 1e-6 or any(v < 0 for v in self.attitude_shares.values()):
            message = f"attitude_shares: must be non-negative and sum to 1, got {total:.6g}"
            raise ValueError(message)
        for name, buses, sizes in (
            ("pv_kwp", self.pv_buses, self.pv_kwp),
            ("dg_kwp", self.dg_buses, self.dg_kwp),
        ):
            if isinstance(sizes, list) and len(sizes) != len(buses):
                message = (
                    f"{name}: lists {len(sizes)} size(s) for the {len(buses)} bus(es) of "
                    f"{name[:2]}_buses"
                )
                raise ValueError(message)
        return self


def _default_fee_params() -> dict[str, dict[str, float | str]]:
    return {
        "flat": {"gamma_u": 0.02},
        "zonal": {"gamma_in": 0.005, "gamma_out": 0.03},
        "distance": {"gamma_d": 0.005, "metric": "km"},
        "mw_mile": {"cost_per_km_year": 30000.0},
    }


class MarketSpec(_Strict):
    """Market rules: mechanism, rounds, clearing rule, network fee, tariffs."""

    mechanism: Literal["zi", "aa", "best-response"] = "aa"
    rounds: int = Field(5, ge=1, le=50)
    clearing: Literal["uniform", "greedy", "optimal", "merit_order"] = "uniform"
    network_fee: Literal["none", "flat", "zonal", "distance", "mw_mile"] = "none"
    fee_params: dict[str, dict[str, float | str]] = Field(default_factory=_default_fee_params)
    """Parameters per fee method (tokens/kWh, tokens/kWh/km, ...), see docs/clearing.md."""
    fee_form: Literal["auto", "table", "path"] = "auto"
    """How the fee is defined and committed: "table" rounds each bus pair's fee, "path"
    sums the rounded fees of the branches on the least path (any feeder size on chain),
    "auto" is "table" up to 627 buses and "path" beyond (docs/clearing.md)."""
    kappa: float = Field(0.5, ge=0, le=1)
    retail_per_kwh: float = Field(0.30, gt=0)
    feed_in_per_kwh: float = Field(0.08, ge=0)
    tolerance_pct: float = Field(0.0, ge=0, le=100)
    """Forecast-error tolerance band: per trade, deviations up to this share of the
    trade's energy settle at the trade price without penalty (docs/settlement.md)."""
    br_fees_in_utility: bool = True
    """Best response: members count the network fee in their utilities."""
    br_max_rounds: int = Field(100, ge=1, le=255)
    """Best response: iteration cap per interval (non-convergence is reported)."""
    br_epsilon: float | None = Field(None, ge=0)
    """Best response: equilibrium tolerance, a share of each member's payoff scale
    (cap x tariff span); unset = one price tick's worth (0.005 with kappa 1/2),
    docs/best_response.md."""
    br_start: Literal["competitive", "truthful", "warm"] = "competitive"
    """Best response: starting bids (bus competitive prices, limit prices, or each
    member's last price), docs/best_response.md."""
    br_order: Literal["shuffle", "seeded", "member"] = "shuffle"
    """Best response: sweep order (fresh random permutation each round, one fixed
    random permutation, or member order), docs/best_response.md."""
    br_settings: Literal["ladder", "at_scale"] = "ladder"
    """Best response: "ladder" (the 1 % grid, one tick's worth then 1e-3 and 1e-4)
    or "at_scale" (a verified 1e-3 equilibrium at 100-300 members: the 0.2 % bid
    grid, one-tick shading, aggressive-first order), docs/best_response.md."""

    @model_validator(mode="after")
    def _tariffs(self) -> MarketSpec:
        if self.mechanism == "best-response" and self.clearing != "greedy":
            message = (
                "clearing: mechanism 'best-response' needs clearing = 'greedy' (its best "
                "responses are exact for that rule)"
            )
            raise ValueError(message)
        unknown = sorted(set(self.fee_params) - {"flat", "zonal", "distance", "mw_mile"})
        if unknown:
            message = f"fee_params: unknown fee method(s) {unknown}; allowed: flat, zonal, distance, mw_mile"
            raise ValueError(message)
        if self.feed_in_per_kwh > self.retail_per_kwh:
            message = f"feed_in_per_kwh: must not exceed retail_per_kwh ({self.retail_per_kwh})"
            raise ValueError(message)
        if self.br_settings == "at_scale":
            self._check_at_scale()
        return self

    def _check_at_scale(self) -> None:
        """``br_settings = "at_scale"`` fixes the order and needs a 1 % tick that
        divides into the 0.2 % grid (the tick is 1 % of the tariff span, in micro)."""
        if "br_order" in self.model_fields_set:
            message = (
                "br_order: has no effect with br_settings = 'at_scale' (its order is "
                "aggressive-first); remove it or use br_settings = 'ladder'"
            )
            raise ValueError(message)
        # as the game computes it (market.units.price_to_micro: half a micro rounds up)
        span_micro = int(self.retail_per_kwh * 1_000_000 + 0.5) - int(
            self.feed_in_per_kwh * 1_000_000 + 0.5
        )
        tick_micro = max(1, round(0.01 * span_micro))
        if tick_micro % 5:
            message = (
                f"br_settings: 'at_scale' bids on a grid 5 times finer than the 1 % tick, "
                f"but the tick of this tariff span is {tick_micro} micro-tokens/kWh (not a "
                f"multiple of 5); adjust retail_per_kwh or feed_in_per_kwh, or use 'ladder'"
            )
            raise ValueError(message)


def max_rounds(market: MarketSpec) -> int:
    """Most bidding rounds an interval can have (the ledger is set up for this many)."""
    return market.br_max_rounds if market.mechanism == "best-response" else market.rounds


class SecuritySpec(_Strict):
    """Security limits: the voltage band and the thermal-limit policy."""

    v_min_pu: float = Field(0.95, gt=0.5, lt=1.0)
    v_max_pu: float = Field(1.05, gt=1.0, lt=1.5)
    thermal_limit_pct: float = Field(100.0, gt=0, le=200)
    congestion: Literal["none", "greedy", "lp"] = "none"
    network_form: Literal["auto", "dense", "loops"] = "auto"
    """How a meshed feeder's linearised network is committed: "dense" (one integer per row
    and bus, up to 443 buses on chain), "loops" (spanning tree plus a correction per loop,
    any size) or "auto" (dense up to 443 buses, loops beyond); docs/security_on_chain.md."""


class ChainSpec(_Strict):
    """Ledger backend: ``embedded`` (in-process py-evm), ``none``, or an http(s) URL.

    ``keys``: a keys folder (``gridledger keys init``; relative paths from the current
    folder); unset, the simulation keys of the default seed, on the embedded chain only.
    ``key_password_file``: a file whose first line is the keys' password (unset: the
    environment variable ``GRIDLEDGER_KEY_PASSWORD``).
    ``settle_page_members``: the most members one settlement transaction books (unset: as
    many as fit a block; a larger settlement is paged over several transactions anyway).
    ``record_page_entries``: the most entries one page of a bidding round, of the meter
    readings, of a fee rule's clearing or of a security verdict checks (unset: as many as
    fit a block; larger lists are paged anyway).
    ``tx_gas_cap``: the most gas one transaction may carry, 16,777,216 by default (EIP-7825,
    in force on Ethereum since the Osaka upgrade); steps that need more are paged, and a
    market whose clearing or security verdict would need more is refused before it is
    deployed. On a chain without the cap, set it to the block's gas limit.
    """

    backend: str = "embedded"
    keys: str | None = Field(None, min_length=1)
    key_password_file: str | None = Field(None, min_length=1)
    settle_page_members: int | None = Field(None, ge=1)
    record_page_entries: int | None = Field(None, ge=1)
    tx_gas_cap: int = Field(2**24, ge=1_000_000)

    @model_validator(mode="after")
    def _backend(self) -> ChainSpec:
        if self.backend in ("embedded", "none"):
            return self
        if not self.backend.startswith(("http://", "https://")):
            message = "backend: must be 'embedded', 'none' or an http(s) URL"
            raise ValueError(message)
        problem = url_problem(self.backend)
        if problem:
            message = f"backend: not a usable node URL ({problem})"
            raise ValueError(message)
        return self


def url_problem(url: str) -> str:
    """Why ``url`` is not a usable http(s) URL of a node, or "" when it is."""
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a port that is not a number in range
    except ValueError as error:
        return str(error)
    if not parts.hostname:
        return "no host"
    if port == 0:
        return "port 0"
    return ""


class Scenario(_Strict):
    """A whole study, as loaded from a TOML file."""

    name: str = "scenario"
    seed: int = Field(0, ge=0, le=2**64 - 1)
    """Every random draw of the run derives from it (64 bits)."""
    network: NetworkSpec = NetworkSpec()
    horizon: HorizonSpec = HorizonSpec()
    members: MembersSpec = MembersSpec()
    market: MarketSpec = MarketSpec()
    security: SecuritySpec = SecuritySpec()
    chain: ChainSpec = ChainSpec()


def _union_tag(part: str) -> bool:
    """Whether ``part`` of an error location names a member of a union type (pydantic adds
    ``float``, ``str``, ``literal[...]``, ``list[float]`` for ``float | str`` and such)."""
    return part in ("bool", "int", "float", "str") or "[" in part


def _format_errors(source: str, error: ValidationError) -> str:
    lines: list[str] = []
    keys_seen: set[str] = set()
    for item in error.errors():
        loc = [str(part) for part in item["loc"]]
        if loc and _union_tag(loc[-1]):  # one line per key: the union's first member's
            loc.pop()
        key = ".".join(loc) or "(top level)"
        if key in keys_seen:
            continue
        keys_seen.add(key)
        value = item.get("input")
        message = str(item["msg"]).removeprefix("Value error, ")
        # a model's own check names its field first ("first_interval: ..."): point at it
        head, sep, rest = message.partition(": ")
        if sep and head.isidentifier() and isinstance(value, dict):
            key = head if key == "(top level)" else f"{key}.{head}"
            value = value.get(head, "(default)")
            message = rest
        shown = repr(value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        lines.append(f"  {key} = {shown}: {message}")
    return f"{source}: invalid scenario ({len(lines)} problem(s)):\n" + "\n".join(lines)


def parse_override(text: str) -> tuple[list[str], Any]:
    """Parse ``KEY.PATH=VALUE``; VALUE is read as a TOML value, else as a string."""
    if "=" not in text:
        message = f"override {text!r}: expected KEY.PATH=VALUE"
        raise ScenarioError(message)
    key, raw = text.split("=", 1)
    path = [part.strip() for part in key.strip().split(".")]
    if not all(path):
        message = f"override {text!r}: empty part in key path {key!r}"
        raise ScenarioError(message)
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return path, value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of raw scenario ``data`` with ``KEY.PATH=VALUE`` overrides applied."""
    out = copy.deepcopy(data)
    for text in overrides:
        path, value = parse_override(text)
        node = out
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                message = f"override {text!r}: {part!r} is a value, not a table"
                raise ScenarioError(message)
            node = child
        node[path[-1]] = value
    return out


def validate_scenario(data: dict[str, Any], source: str) -> Scenario:
    """Validate raw scenario data; ``source`` names it in error messages."""
    try:
        return Scenario.model_validate(data)
    except ValidationError as error:
        raise ScenarioError(_format_errors(source, error)) from None


SHIPPED_DIR = Path(__file__).parent / "scenarios"
"""The scenarios that ship with the package (``scenarios/`` in a clone links here)."""


def shipped_scenarios() -> list[str]:
    """Names of the shipped scenarios (``gridledger run NAME`` works for each)."""
    return sorted(p.stem for p in SHIPPED_DIR.glob("*.toml"))


def resolve_scenario_path(path: str | Path) -> Path:
    """``path`` itself if it exists, else the shipped scenario of that name (``ieee33``)."""
    file = Path(path)
    if file.exists() or file.suffix or len(file.parts) != 1:
        return file
    shipped = SHIPPED_DIR / f"{file.name}.toml"
    return shipped if shipped.exists() else file


def load_scenario(path: str | Path, overrides: list[str] | None = None) -> Scenario:
    """Load and validate a TOML scenario, applying ``--set`` style overrides.

    ``path`` is a file, or the name of a shipped scenario (see :func:`shipped_scenarios`).
    """
    file = resolve_scenario_path(path)
    try:
        raw = file.read_text(encoding="utf-8-sig")  # a byte-order mark is not an error
    except UnicodeDecodeError as error:
        message = (
            f"{file}: not a text scenario (byte {error.start} is not UTF-8); "
            "a scenario is a TOML text file"
        )
        raise ScenarioError(message) from None
    except OSError as error:
        message = f"{file}: cannot read scenario ({error.strerror})"
        if not file.suffix and len(file.parts) == 1:
            message += f"; shipped scenarios: {', '.join(shipped_scenarios())}"
        raise ScenarioError(message) from None
    try:
        data = tomllib.loads(raw)
    except tomllib.TOMLDecodeError as error:
        message = f"{file}: not valid TOML: {error}"
        raise ScenarioError(message) from None
    if not data:
        message = (
            f"{file}: empty scenario (no keys); a scenario sets at least its name, "
            f"see the shipped ones in {SHIPPED_DIR}"
        )
        raise ScenarioError(message)
    if overrides:
        data = apply_overrides(data, overrides)
        source = f"{file} (with --set {' '.join(overrides)})"
    else:
        source = str(file)
    return validate_scenario(data, source)
