"""PV output from a clear-sky model with seeded cloud variability.

Model (all on a 5-minute base grid, then averaged to the interval):

1. Clear sky: pvlib 0.16.1 ``Location.get_clearsky(model="ineichen")``
   (Ineichen & Perez 2002 with the monthly Linke turbidity climatology shipped
   with pvlib) gives GHI, DNI, DHI at the midpoint of each 5-minute step;
   solar position by pvlib's NREL SPA (``Location.get_solarposition``).
2. Plane of array: ``pvlib.irradiance.get_total_irradiance`` with the
   isotropic sky model, tilt ``tilt_deg`` (default 30 deg), equator-facing
   (azimuth 180 deg in the northern hemisphere), ground albedo 0.2. Set to
   exactly 0 whenever the sun is at or below the horizon.
3. Clouds: a clear-sky index k_t multiplies the plane-of-array irradiance.
   Each calendar day draws a day type with probabilities from ``cloudiness``
   c in [0, 1]: clear (1 - c)^2, mixed 2c(1 - c), overcast c^2. Within the day
   k_t = mean_d + sd * z_t, z a unit-variance AR(1) (correlation time tau):

   ========  ======  ======  ===========  ================
   type      mean    sd      tau (min)    daily mean jitter
   ========  ======  ======  ===========  ================
   clear     1.00    0.00    --           0
   mixed     0.60    0.30    20           0.10
   overcast  0.25    0.10    60           0.05
   ========  ======  ======  ===========  ================

   This shared part is seeded by (``weather_seed``, latitude, longitude, day),
   so every member at the same site sees the same weather on the same day
   whatever window it asks for. Each member adds its own noise
   ``individual_share * sd * y_t`` (y a unit AR(1), tau 20 min, from the
   member's ``rng``). k is clipped to [0, 1.1] (1.1 allows cloud enhancement).
4. Power: ``p = kwp * performance_ratio * g * k * POA / 1000 W/m^2``, capped
   at ``kwp`` (inverter rating = kWp). ``performance_ratio`` (default 0.85)
   lumps temperature, wiring, soiling and inverter losses; ``g`` is the
   member's own gain (orientation, shading, soiling), uniform in
   [1 - gain_spread, 1 + gain_spread] from ``rng`` (default spread 0.05; 1
   without ``rng``), so members differ on clear days too.

Clock: times are local standard time at ``utc_offset_h`` (default
``round(longitude / 15)``, no DST). A tz-aware ``start`` uses its own UTC
offset at ``start``. Clear-sky irradiance is cached per (site, day).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
import pvlib

from gridledger.errors import MemberError
from gridledger.members.profiles import BASE_STEP_MIN, ar1_unit, check_time_grid

__all__ = ["DAY_TYPES", "DayType", "clear_sky_poa_w_m2", "pv_profile_kw"]

log = logging.getLogger(__name__)

STEPS_PER_DAY = 1440 // BASE_STEP_MIN
K_MAX = 1.1
INDIVIDUAL_TAU_MIN = 20.0
_CACHE_MAX = 20_000  # entries per cache (site-days); cleared when full


@dataclass(frozen=True, slots=True)
class DayType:
    """Clear-sky-index statistics of one kind of day."""

    name: str
    k_mean: float
    k_sd: float
    tau_min: float
    mean_jitter_sd: float


DAY_TYPES = (
    DayType("clear", 1.00, 0.00, 60.0, 0.00),
    DayType("mixed", 0.60, 0.30, 20.0, 0.10),
    DayType("overcast", 0.25, 0.10, 60.0, 0.05),
)

_Site = tuple[float, float, float, float, float, float]  # lat, lon, offset, tilt, azimuth, albedo
_clear_cache: dict[tuple[_Site, int], np.ndarray] = {}
_sky_cache: dict[tuple[int, float, float, int, float], tuple[np.ndarray, float]] = {}
_SUN_CACHE_MAX = 64  # site windows (a few days of 5-min rows each)
_sun_cache: dict[
    tuple[float, float, float, tuple[int, ...]], tuple[pd.DataFrame, pd.DataFrame]
] = {}


def _sun_and_sky(
    lat: float, lon: float, offset_h: float, days: tuple[int, ...]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Solar position and clear-sky irradiance at 5-min midpoints of ``days`` (cached).

    The same for every module at a site, whatever its orientation: a feeder with 2,000
    PV members computed it 2,000 times (50 s) before the cache.
    """
    key = (lat, lon, offset_h, days)
    hit = _sun_cache.get(key)
    if hit is not None:
        return hit
    step_s = BASE_STEP_MIN * 60
    local0 = np.array([np.datetime64(dt.date.fromordinal(d), "s") for d in days])
    grid = (np.arange(STEPS_PER_DAY) * step_s + step_s // 2).astype("timedelta64[s]")
    local = (local0[:, None] + grid[None, :]).ravel()
    times = pd.DatetimeIndex(local - pd.Timedelta(hours=offset_h)).tz_localize("UTC")
    location = pvlib.location.Location(lat, lon, tz="UTC")
    sun = location.get_solarposition(times)
    sky = location.get_clearsky(times, model="ineichen", solar_position=sun)
    if len(_sun_cache) >= _SUN_CACHE_MAX:
        _sun_cache.clear()
    _sun_cache[key] = (sun, sky)
    return sun, sky


def _compute_clear_days(site: _Site, days: list[int]) -> np.ndarray:
    """POA irradiance (W/m^2), shape (len(days), STEPS_PER_DAY), at 5-min midpoints."""
    lat, lon, offset_h, tilt, azimuth, albedo = site
    sun, sky = _sun_and_sky(lat, lon, offset_h, tuple(days))
    poa = pvlib.irradiance.get_total_irradiance(
        tilt,
        azimuth,
        sun["apparent_zenith"],
        sun["azimuth"],
        sky["dni"],
        sky["ghi"],
        sky["dhi"],
        albedo=albedo,
        model="isotropic",
    )["poa_global"].to_numpy(dtype=float)
    poa = np.nan_to_num(poa, nan=0.0)
    poa[sun["apparent_zenith"].to_numpy() >= 90.0] = 0.0
    return np.clip(poa, 0.0, None).reshape(len(days), STEPS_PER_DAY)


def _clear_window(site: _Site, days: list[int]) -> np.ndarray:
    missing = [d for d in days if (site, d) not in _clear_cache]
    if missing:
        if len(_clear_cache) + len(missing) > _CACHE_MAX:
            _clear_cache.clear()
        for d, row in zip(missing, _compute_clear_days(site, missing), strict=True):
            row.setflags(write=False)
            _clear_cache[(site, d)] = row
        log.debug("clear sky computed for %d day(s) at %s", len(missing), site[:2])
    return np.stack([_clear_cache[(site, d)] for d in days])


def _day_sky(
    weather_seed: int, lat: float, lon: float, day: int, cloudiness: float
) -> tuple[np.ndarray, float]:
    """Shared (unclipped) clear-sky index of one day and that day's sd."""
    key = (weather_seed, lat, lon, day, cloudiness)
    hit = _sky_cache.get(key)
    if hit is not None:
        return hit
    entropy = [weather_seed, day, round((lat + 90.0) * 1e6), round((lon + 180.0) * 1e6)]
    rng = np.random.default_rng(np.random.SeedSequence(entropy))
    u = float(rng.random())
    jitter = float(rng.standard_normal())
    p_clear = (1.0 - cloudiness) ** 2
    p_overcast = cloudiness**2
    kind = DAY_TYPES[0] if u < p_clear else DAY_TYPES[2] if u >= 1.0 - p_overcast else DAY_TYPES[1]
    z = ar1_unit(rng, STEPS_PER_DAY, math.exp(-BASE_STEP_MIN / kind.tau_min))
    k = kind.k_mean + kind.mean_jitter_sd * jitter + kind.k_sd * z
    k.setflags(write=False)
    if len(_sky_cache) >= _CACHE_MAX:
        _sky_cache.clear()
    _sky_cache[key] = (k, kind.k_sd)
    return k, kind.k_sd


@lru_cache(maxsize=8)
def _shared_window(
    site: _Site, weather_seed: int, cloudiness: float, first_day: int, n_days: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Clear-sky POA, shared clear-sky index and its daily sd over whole days (5-min grid)."""
    days = list(range(first_day, first_day + n_days))
    poa = _clear_window(site, days).ravel()
    skies = [_day_sky(weather_seed, site[0], site[1], d, cloudiness) for d in days]
    k = np.concatenate([sky[0] for sky in skies])
    sd = np.repeat([sky[1] for sky in skies], STEPS_PER_DAY)
    for array in (poa, k, sd):
        array.setflags(write=False)
    return poa, k, sd


def clear_sky_poa_w_m2(
    latitude: float,
    longitude: float,
    day: dt.date,
    *,
    utc_offset_h: float | None = None,
    tilt_deg: float = 30.0,
    azimuth_deg: float | None = None,
    albedo: float = 0.2,
) -> np.ndarray:
    """Clear-sky plane-of-array irradiance of one local day, 5-min midpoints (W/m^2)."""
    site = _site(latitude, longitude, utc_offset_h, tilt_deg, azimuth_deg, albedo)
    return _clear_window(site, [day.toordinal()])[0]


def _site(
    latitude: float,
    longitude: float,
    utc_offset_h: float | None,
    tilt_deg: float,
    azimuth_deg: float | None,
    albedo: float,
) -> _Site:
    checks = (
        ("latitude", latitude, -90.0, 90.0),
        ("longitude", longitude, -180.0, 180.0),
        ("tilt_deg", tilt_deg, 0.0, 90.0),
        ("albedo", albedo, 0.0, 1.0),
    )
    for name, value, low, high in checks:
        if not (math.isfinite(value) and low <= value <= high):
            raise MemberError(f"{name} = {value!r}: need a number in [{low}, {high}]")
    offset = round(longitude / 15.0) if utc_offset_h is None else float(utc_offset_h)
    if not -14.0 <= offset <= 14.0:
        raise MemberError(f"utc_offset_h = {utc_offset_h!r}: need a number in [-14, 14]")
    azimuth = (180.0 if latitude >= 0 else 0.0) if azimuth_deg is None else float(azimuth_deg)
    if not 0.0 <= azimuth <= 360.0:
        raise MemberError(f"azimuth_deg = {azimuth_deg!r}: need a number in [0, 360]")
    return (float(latitude), float(longitude), float(offset), float(tilt_deg), azimuth, albedo)


def pv_profile_kw(
    kwp: float,
    latitude: float,
    longitude: float,
    start: pd.Timestamp,
    intervals: int,
    interval_min: int = 15,
    rng: np.random.Generator | None = None,
    cloudiness: float = 0.3,
    *,
    weather_seed: int = 0,
    individual_share: float = 0.3,
    gain_spread: float = 0.05,
    performance_ratio: float = 0.85,
    tilt_deg: float = 30.0,
    azimuth_deg: float | None = None,
    albedo: float = 0.2,
    utc_offset_h: float | None = None,
) -> np.ndarray:
    """Mean PV output in kW for each of ``intervals`` intervals from ``start``.

    ``rng`` draws the member's own cloud noise (None: none, the member sees
    exactly the site's shared weather); ``weather_seed`` seeds the weather
    shared by every member at the same site. See the module docstring.
    """
    start_ts = pd.Timestamp(start)
    if start_ts.tzinfo is not None and utc_offset_h is None:
        offset = start_ts.utcoffset()
        utc_offset_h = offset.total_seconds() / 3600.0 if offset is not None else 0.0
    start_ts = check_time_grid(start_ts, intervals, interval_min)
    if not math.isfinite(kwp) or kwp < 0:
        raise MemberError(f"kwp = {kwp!r}: need a finite number >= 0")
    if not 0.0 <= cloudiness <= 1.0:
        raise MemberError(f"cloudiness = {cloudiness!r}: need a number in [0, 1]")
    if not 0.0 <= individual_share <= 1.0:
        raise MemberError(f"individual_share = {individual_share!r}: need a number in [0, 1]")
    if not 0.0 <= gain_spread < 1.0:
        raise MemberError(f"gain_spread = {gain_spread!r}: need a number in [0, 1)")
    if not 0.0 < performance_ratio <= 1.0:
        raise MemberError(f"performance_ratio = {performance_ratio!r}: need a number in (0, 1]")
    if isinstance(weather_seed, bool) or not isinstance(weather_seed, int) or weather_seed < 0:
        raise MemberError(f"weather_seed = {weather_seed!r}: need an integer >= 0")
    site = _site(latitude, longitude, utc_offset_h, tilt_deg, azimuth_deg, albedo)
    if kwp == 0:
        return np.zeros(intervals)

    steps = interval_min // BASE_STEP_MIN
    first_day = start_ts.normalize()
    offset = int((start_ts - first_day) // pd.Timedelta(minutes=BASE_STEP_MIN))
    n_base = intervals * steps
    n_days = -(-(offset + n_base) // STEPS_PER_DAY)
    days = [first_day.toordinal() + i for i in range(n_days)]
    window = slice(offset, offset + n_base)

    poa, k, sd = _shared_window(site, weather_seed, float(cloudiness), days[0], n_days)
    poa, k, sd = poa[window], k[window], sd[window]
    gain = 1.0
    if rng is not None:
        gain = 1.0 + gain_spread * float(rng.uniform(-1.0, 1.0))
        if individual_share > 0:
            y = ar1_unit(rng, n_base, math.exp(-BASE_STEP_MIN / INDIVIDUAL_TAU_MIN))
            k = k + individual_share * sd * y
    k = np.clip(k, 0.0, K_MAX)
    p_kw = np.minimum(kwp * performance_ratio * gain * k * poa / 1000.0, kwp)
    return p_kw.reshape(intervals, steps).mean(axis=1)
