"""Load profiles from the BDEW standard load profiles (via demandlib 0.2.2).

Source: BDEW standard load profiles (Standardlastprofile Strom), as shipped in
demandlib 0.2.2 (works offline, the data are CSV files inside the package):

- 1999 profiles through ``demandlib.bdew.ElecSlp(year, holidays=...)``:
  ``h0`` (household, static), ``h0_dyn`` (household with the BDEW
  dynamisation polynomial applied), ``g0``..``g6`` (commerce), ``l0``..``l2``
  (agriculture). Three seasons (winter/transition/summer) times three day
  types (workday/Saturday/Sunday); holidays count as Sundays.
- 2025 revision through ``demandlib.bdew.H25/G25/L25/P25/S25(timeindex,
  holidays=...)``: ``h25`` (household, dynamic), ``g25``, ``l25``, ``p25``
  (household with PV), ``s25`` (household with PV and battery); monthly
  day-type tables.

demandlib wants holidays as a list (or dict keys) of dates; it has no holiday
calendar of its own. ``holidays="de"`` (default) passes the nine German
nationwide public holidays (computed here, Easter by the Gregorian computus);
``holidays="none"`` passes none.

Caveat of demandlib 0.2.2: ``ElecSlp`` calls ``warnings.simplefilter("error")``
globally while it builds; this module wraps the call in
``warnings.catch_warnings()`` so the caller's warning filters are restored.

Normalisation: the year profile is rescaled so its energy over the calendar
year is exactly 1 kWh; ``load_profile_kw`` multiplies by ``annual_kwh``. Values
are mean kW per interval. Time is wall-clock local time without DST shifts
(as in the BDEW tables). The normalised year is cached per (profile, year,
holidays), so many members cost one demandlib call per year.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import warnings
from functools import lru_cache

import numpy as np
import pandas as pd
from demandlib import bdew
from scipy.signal import lfilter

from gridledger.errors import MemberError

__all__ = [
    "BASE_STEP_MIN",
    "PROFILES",
    "ar1_unit",
    "check_time_grid",
    "german_holidays",
    "load_profile_kw",
    "year_profile_kw",
]

log = logging.getLogger(__name__)

BASE_STEP_MIN = 5  # every supported interval length is a multiple of this
_ELEC_SLP = ("h0", "h0_dyn", "g0", "g1", "g2", "g3", "g4", "g5", "g6", "l0", "l1", "l2")
_BDEW25 = ("h25", "g25", "l25", "p25", "s25")
PROFILES: frozenset[str] = frozenset(_ELEC_SLP + _BDEW25)
_HOLIDAY_SETS = ("de", "none")


def _easter(year: int) -> dt.date:
    """Gregorian Easter Sunday (anonymous Gregorian algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    ll = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 19 * ll) // 433
    month = (h + ll - 7 * m + 90) // 25
    day = (h + ll - 7 * m + 33 * month + 19) % 32
    return dt.date(year, month, day)


def german_holidays(year: int) -> list[dt.date]:
    """The nine nationwide German public holidays of ``year``."""
    easter = _easter(year)
    return [
        dt.date(year, 1, 1),
        easter - dt.timedelta(days=2),  # Good Friday
        easter + dt.timedelta(days=1),  # Easter Monday
        dt.date(year, 5, 1),
        easter + dt.timedelta(days=39),  # Ascension
        easter + dt.timedelta(days=50),  # Whit Monday
        dt.date(year, 10, 3),
        dt.date(year, 12, 25),
        dt.date(year, 12, 26),
    ]


def _holiday_list(holidays: str, year: int) -> list[dt.date] | None:
    if holidays not in _HOLIDAY_SETS:
        message = f"holidays = {holidays!r}: need one of {', '.join(_HOLIDAY_SETS)}"
        raise MemberError(message)
    return german_holidays(year) if holidays == "de" else None


@lru_cache(maxsize=16)
def _elec_slp_year(year: int, holidays: str) -> dict[str, np.ndarray]:
    with warnings.catch_warnings():  # ElecSlp sets simplefilter("error") globally
        warnings.simplefilter("ignore")
        frame = bdew.ElecSlp(year, holidays=_holiday_list(holidays, year)).get_profiles()
    return {name: frame[name].to_numpy(dtype=float) for name in _ELEC_SLP}


def _bdew25_year(profile: str, year: int, holidays: str) -> np.ndarray:
    cls = {"h25": bdew.H25, "g25": bdew.G25, "l25": bdew.L25, "p25": bdew.P25, "s25": bdew.S25}
    index = pd.date_range(dt.datetime(year, 1, 1), dt.datetime(year + 1, 1, 1), freq="15min")[:-1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        series = cls[profile](index, holidays=_holiday_list(holidays, year))
    return series.to_numpy(dtype=float)


@lru_cache(maxsize=128)
def year_profile_kw(profile: str, year: int, holidays: str = "de") -> np.ndarray:
    """Mean kW per 15-min interval of ``year`` for an annual energy of 1 kWh (read-only)."""
    if profile not in PROFILES:
        message = f"load profile {profile!r}: need one of {', '.join(sorted(PROFILES))}"
        raise MemberError(message)
    if profile in _ELEC_SLP:
        raw = _elec_slp_year(year, holidays)[profile]
    else:
        raw = _bdew25_year(profile, year, holidays)
    if raw.size % 96 or np.any(~np.isfinite(raw)) or np.any(raw < 0) or raw.sum() <= 0:
        message = f"demandlib returned an unusable {profile!r} profile for {year}"
        raise MemberError(message)
    p_kw = raw / (raw.sum() * 0.25)  # energy of the year: sum(p_kw) * 0.25 h = 1 kWh
    p_kw.setflags(write=False)
    log.debug("built BDEW %s profile for %d (%d intervals)", profile, year, p_kw.size)
    return p_kw


def check_time_grid(start: pd.Timestamp, intervals: int, interval_min: int) -> pd.Timestamp:
    if isinstance(intervals, bool) or not isinstance(intervals, int | np.integer) or intervals < 1:
        raise MemberError(f"intervals = {intervals!r}: need an integer >= 1")
    if (
        isinstance(interval_min, bool)
        or not isinstance(interval_min, int | np.integer)
        or interval_min < BASE_STEP_MIN
        or interval_min % BASE_STEP_MIN
        or 1440 % interval_min
    ):
        message = (
            f"interval_min = {interval_min!r}: need a multiple of {BASE_STEP_MIN} "
            "that divides a day (5, 10, 15, 20, 30, 60, ...)"
        )
        raise MemberError(message)
    start = pd.Timestamp(start)
    if start.tzinfo is not None:
        start = start.tz_localize(None)  # wall-clock time, as the BDEW tables
    minute = start.hour * 60 + start.minute
    if minute % BASE_STEP_MIN or start.second or start.microsecond or start.nanosecond:
        message = f"start = {start}: need a time on a {BASE_STEP_MIN}-minute grid"
        raise MemberError(message)
    return start


def _window_kw(profile: str, start: pd.Timestamp, n_base: int, holidays: str) -> np.ndarray:
    """``n_base`` values on the 5-minute grid from ``start`` (kW for 1 kWh/a)."""
    year0 = start.year
    offset = int((start - pd.Timestamp(year0, 1, 1)) // pd.Timedelta(minutes=BASE_STEP_MIN))
    per_15 = 15 // BASE_STEP_MIN
    parts: list[np.ndarray] = []
    have = 0
    year = year0
    while have < offset + n_base:
        part = np.repeat(year_profile_kw(profile, year, holidays), per_15)
        parts.append(part)
        have += part.size
        year += 1
    return np.concatenate(parts)[offset : offset + n_base]


def ar1_unit(rng: np.random.Generator, n: int, phi: float) -> np.ndarray:
    """Stationary AR(1) with unit variance: z_t = phi z_(t-1) + sqrt(1 - phi^2) e_t."""
    e = rng.standard_normal(n)
    z0 = e[0]
    if n == 1 or phi == 0.0:
        return e
    rest, _ = lfilter([math.sqrt(1.0 - phi * phi)], [1.0, -phi], e[1:], zi=[phi * z0])
    return np.concatenate(([z0], rest))


def load_profile_kw(
    profile: str,
    annual_kwh: float,
    start: pd.Timestamp,
    intervals: int,
    interval_min: int = 15,
    rng: np.random.Generator | None = None,
    *,
    noise_sd: float = 0.2,
    noise_tau_min: float = 60.0,
    max_shift_min: int = 30,
    holidays: str = "de",
) -> np.ndarray:
    """Mean load in kW for each of ``intervals`` intervals from ``start``.

    The BDEW ``profile`` is scaled to ``annual_kwh`` per year. Without ``rng``
    the result is the standard profile itself. With ``rng`` a member's own
    variation is applied: the profile is shifted in time by a uniform whole
    number of 5-minute steps in [-max_shift_min, +max_shift_min], then multiplied
    by a mean-one log-normal factor ``exp(s z_t - s^2/2)`` where ``z`` is a
    unit-variance AR(1) with correlation time ``noise_tau_min`` on the interval
    grid and ``s = noise_sd``. Energy is preserved in expectation.
    """
    start = check_time_grid(start, intervals, interval_min)
    if not math.isfinite(annual_kwh) or annual_kwh < 0:
        raise MemberError(f"annual_kwh = {annual_kwh!r}: need a finite number >= 0")
    if not math.isfinite(noise_sd) or noise_sd < 0:
        raise MemberError(f"noise_sd = {noise_sd!r}: need a finite number >= 0")
    if not noise_tau_min > 0:
        raise MemberError(f"noise_tau_min = {noise_tau_min!r}: need a number > 0")
    if max_shift_min < 0 or max_shift_min % BASE_STEP_MIN:
        message = f"max_shift_min = {max_shift_min!r}: need a multiple of {BASE_STEP_MIN} >= 0"
        raise MemberError(message)
    if profile not in PROFILES:
        message = f"load profile {profile!r}: need one of {', '.join(sorted(PROFILES))}"
        raise MemberError(message)
    steps = interval_min // BASE_STEP_MIN
    if rng is not None and max_shift_min > 0:
        k = max_shift_min // BASE_STEP_MIN
        shift = int(rng.integers(-k, k + 1))
        start = start + pd.Timedelta(minutes=shift * BASE_STEP_MIN)
    base = _window_kw(profile, start, intervals * steps, holidays)
    p_kw = base.reshape(intervals, steps).mean(axis=1) * annual_kwh
    if rng is not None and noise_sd > 0:
        phi = math.exp(-interval_min / noise_tau_min)
        z = ar1_unit(rng, intervals, phi)
        p_kw = p_kw * np.exp(noise_sd * z - 0.5 * noise_sd * noise_sd)
    return p_kw
