"""Forecasters of a member's load or PV, with measurable error.

Every forecaster maps an actual series (mean kW per interval) to the series of
forecasts, where forecast ``f[t]`` is made before interval ``t`` and uses only
``actual[:t]`` (one-step-ahead: the latest value known is ``actual[t - 1]``).
The noisy forecaster is the exception by construction: it perturbs the truth.

Error measure (used throughout): normalised mean absolute error

    nMAE = sum_t |f_t - a_t| / sum_t |a_t|

i.e. the MAE divided by the mean absolute actual value of the same series
(for PV this mean includes the night). An all-zero actual gives 0 if the
forecast is also all zero, else infinity.

Forecasters (``make_forecaster(name, **params)``):

- ``perfect``: ``f = a``.
- ``persistence``: ``f[t] = a[t - P]`` (same interval one day earlier, P the
  intervals per day); during the first day ``f[t] = a[t - 1]``; ``f[0] = a[0]``
  (nothing precedes it; give a history day, see ``history_days``).
- ``noisy``: ``f = a + e`` with ``e_t = s |a_t| z_t``, z a unit-variance AR(1)
  (correlation time ``error_tau_min``, default 60 min), so errors scale with
  the value (zero at night for PV) and persist. With ``calibrate=True``
  (default) ``e`` is rescaled so the realised nMAE equals ``nmae`` exactly;
  otherwise ``s = nmae * sqrt(pi / 2)`` makes it equal in expectation.
- ``ar``: least-squares regression, refitted at the start of each day on the
  last ``train_days`` days before it:
  ``f[t] = c0 + c1 a[t-1] + c2 a[t-P] + c3 m[t]``, m the mean of the same time
  of day over the last ``mean_days`` days. Days with no full earlier day to
  train on use ``f[t] = c0 + c1 a[t-1]`` fitted on what is there (first day:
  persistence). Non-negative series get non-negative forecasts.

``interval_min`` (default 15) sets P; ``nmae`` and ``interval_min`` are
accepted by every forecaster through ``make_forecaster`` and ignored where
they do not apply, so a scenario can always pass both.
"""

from __future__ import annotations

import inspect
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from gridledger.errors import MemberError
from gridledger.members.profiles import ar1_unit

__all__ = [
    "FORECASTERS",
    "ArForecaster",
    "ForecastScore",
    "Forecaster",
    "NoisyForecaster",
    "PerfectForecaster",
    "PersistenceForecaster",
    "make_forecaster",
    "nmae",
    "score",
]

log = logging.getLogger(__name__)

_COMMON_PARAMS = ("nmae", "interval_min")


@runtime_checkable
class Forecaster(Protocol):
    """Turns an actual series into the forecasts made before each interval."""

    @property
    def name(self) -> str: ...

    @property
    def history_days(self) -> int:
        """Days of history before the horizon the forecaster needs to be fair."""
        ...

    def forecast_series(
        self, actual_kw: np.ndarray, rng: np.random.Generator | None = None
    ) -> np.ndarray: ...


def _as_series(actual_kw: np.ndarray) -> np.ndarray:
    a = np.asarray(actual_kw, dtype=float)
    if a.ndim != 1:
        raise MemberError(f"actual_kw: need a 1-D series, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        bad = int(np.flatnonzero(~np.isfinite(a))[0])
        raise MemberError(f"actual_kw[{bad}] = {float(a[bad])!r}: need finite values")
    return a


def _per_day(interval_min: int) -> int:
    if isinstance(interval_min, bool) or not isinstance(interval_min, int) or interval_min < 1:
        raise MemberError(f"interval_min = {interval_min!r}: need a positive integer")
    if 1440 % interval_min:
        raise MemberError(f"interval_min = {interval_min!r}: need a divisor of 1440")
    return 1440 // interval_min


def nmae(actual: np.ndarray, forecast: np.ndarray) -> float:
    """Normalised MAE: ``sum |f - a| / sum |a|`` (0 or inf for an all-zero actual)."""
    a = np.asarray(actual, dtype=float)
    f = np.asarray(forecast, dtype=float)
    if a.shape != f.shape:
        raise MemberError(f"nmae: actual shape {a.shape} != forecast shape {f.shape}")
    error = float(np.abs(f - a).sum())
    scale = float(np.abs(a).sum())
    if scale == 0.0:
        return 0.0 if error == 0.0 else math.inf
    return error / scale


@dataclass(frozen=True, slots=True)
class ForecastScore:
    """Errors of a forecast: nMAE and nRMSE (both by mean |actual|), MAE and bias in kW."""

    nmae: float
    nrmse: float
    mae_kw: float
    bias_kw: float


def score(actual: np.ndarray, forecast: np.ndarray, skip: int = 0) -> ForecastScore:
    """Score ``forecast`` against ``actual``, ignoring the first ``skip`` intervals."""
    a = np.asarray(actual, dtype=float)[skip:]
    f = np.asarray(forecast, dtype=float)[skip:]
    if a.size == 0:
        raise MemberError(f"score: nothing left after skip = {skip}")
    err = f - a
    mean_abs = float(np.abs(a).mean())
    rmse = float(np.sqrt(np.mean(err * err)))
    nrmse = rmse / mean_abs if mean_abs > 0 else (0.0 if rmse == 0 else math.inf)
    return ForecastScore(nmae(a, f), nrmse, float(np.abs(err).mean()), float(err.mean()))


@dataclass(frozen=True, slots=True)
class PerfectForecaster:
    name: str = "perfect"
    history_days: int = 0

    def forecast_series(
        self, actual_kw: np.ndarray, rng: np.random.Generator | None = None
    ) -> np.ndarray:
        return _as_series(actual_kw).copy()


def _persistence(a: np.ndarray, per_day: int) -> np.ndarray:
    f = np.empty_like(a)
    if a.size == 0:
        return f
    f[0] = a[0]
    head = min(per_day, a.size)
    f[1:head] = a[: head - 1]
    if a.size > per_day:
        f[per_day:] = a[:-per_day]
    return f


@dataclass(frozen=True, slots=True)
class PersistenceForecaster:
    interval_min: int = 15
    name: str = "persistence"
    history_days: int = 1

    def forecast_series(
        self, actual_kw: np.ndarray, rng: np.random.Generator | None = None
    ) -> np.ndarray:
        return _persistence(_as_series(actual_kw), _per_day(self.interval_min))


@dataclass(frozen=True, slots=True)
class NoisyForecaster:
    nmae: float = 0.1
    interval_min: int = 15
    error_tau_min: float = 60.0
    calibrate: bool = True
    name: str = "noisy"
    history_days: int = 0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.nmae) and 0.0 <= self.nmae <= 1.0):
            raise MemberError(f"noisy forecaster: nmae = {self.nmae!r}: need a number in [0, 1]")
        if not self.error_tau_min >= 0:
            message = f"noisy forecaster: error_tau_min = {self.error_tau_min!r}: need >= 0"
            raise MemberError(message)
        _per_day(self.interval_min)

    def forecast_series(
        self, actual_kw: np.ndarray, rng: np.random.Generator | None = None
    ) -> np.ndarray:
        a = _as_series(actual_kw)
        if rng is None:
            raise MemberError("noisy forecaster: needs a numpy Generator (rng), got None")
        if a.size == 0 or self.nmae == 0.0:
            return a.copy()
        phi = math.exp(-self.interval_min / self.error_tau_min) if self.error_tau_min > 0 else 0.0
        z = ar1_unit(rng, a.size, phi)
        e = math.sqrt(math.pi / 2.0) * self.nmae * np.abs(a) * z
        if self.calibrate:
            realised = float(np.abs(e).sum())
            if realised > 0:
                e *= self.nmae * float(np.abs(a).sum()) / realised
        return a + e


@dataclass(frozen=True, slots=True)
class ArForecaster:
    interval_min: int = 15
    train_days: int = 28
    mean_days: int = 7
    name: str = "ar"
    history_days: int = 7

    def __post_init__(self) -> None:
        _per_day(self.interval_min)
        for key in ("train_days", "mean_days"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise MemberError(f"ar forecaster: {key} = {value!r}: need an integer >= 1")

    def _tod_mean(self, a: np.ndarray, per_day: int) -> np.ndarray:
        """m[t]: mean of a at the same time of day over the last mean_days full days before t."""
        n_days = -(-a.size // per_day)
        days = np.zeros((n_days, per_day))
        days.ravel()[: a.size] = a
        cum = np.vstack([np.zeros(per_day), np.cumsum(days, axis=0)])
        d = np.arange(n_days)
        lo = np.maximum(0, d - self.mean_days)
        count = (d - lo).astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            m = (cum[d] - cum[lo]) / count[:, None]
        return m.ravel()[: a.size]  # NaN on the first day

    def forecast_series(
        self, actual_kw: np.ndarray, rng: np.random.Generator | None = None
    ) -> np.ndarray:
        a = _as_series(actual_kw)
        per_day = _per_day(self.interval_min)
        f = _persistence(a, per_day)
        if a.size <= per_day:
            return f
        m = self._tod_mean(a, per_day)
        ones = np.ones(a.size)
        lag1 = np.concatenate(([a[0]], a[:-1]))
        lag_day = np.concatenate((np.full(per_day, np.nan), a[:-per_day]))
        full = np.column_stack([ones, lag1, lag_day, m])
        for t0 in range(per_day, a.size, per_day):
            t1 = min(t0 + per_day, a.size)
            lo = max(1, t0 - self.train_days * per_day)
            seasonal_lo = max(lo, per_day)
            if t0 - seasonal_lo >= per_day:  # a full day with both lags: full model
                cols = slice(0, 4)
                rows = slice(seasonal_lo, t0)
            else:
                cols = slice(0, 2)
                rows = slice(lo, t0)
            x, y = full[rows, cols], a[rows]
            coef, *_ = np.linalg.lstsq(x, y, rcond=None)
            f[t0:t1] = full[t0:t1, cols] @ coef
        if np.all(a >= 0):
            np.clip(f, 0.0, None, out=f)
        return f


FORECASTERS: dict[str, Callable[..., Forecaster]] = {
    "perfect": PerfectForecaster,
    "persistence": PersistenceForecaster,
    "noisy": NoisyForecaster,
    "ar": ArForecaster,
}


def make_forecaster(name: str, **params: Any) -> Forecaster:
    """The forecaster registered as ``name``, built with ``params``.

    ``nmae`` and ``interval_min`` are dropped for forecasters that do not take
    them; any other unknown parameter is an error.
    """
    factory = FORECASTERS.get(name)
    if factory is None:
        known = ", ".join(sorted(FORECASTERS))
        raise MemberError(f"forecaster {name!r}: unknown, need one of {known}")
    accepted = set(inspect.signature(factory).parameters) - {"name", "history_days"}
    unknown = sorted(set(params) - accepted - set(_COMMON_PARAMS))
    if unknown:
        allowed = ", ".join(sorted(accepted)) or "(none)"
        raise MemberError(f"forecaster {name!r}: unknown parameter(s) {unknown}; takes {allowed}")
    used = {k: v for k, v in params.items() if k in accepted}
    log.debug("forecaster %s with %s", name, used)
    return factory(**used)
