"""Forecasters: causality, set error levels, fitted-model error, registry."""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridledger.members import (
    FORECASTERS,
    Forecaster,
    MemberError,
    load_profile_kw,
    make_forecaster,
    nmae,
    pv_profile_kw,
    score,
)

log = logging.getLogger(__name__)
DAY = 96
WEEK = 7 * DAY


@pytest.fixture(scope="module")
def load_year() -> np.ndarray:
    rng = np.random.default_rng(11)
    return load_profile_kw("h0", 4000.0, pd.Timestamp("2026-01-01"), 365 * DAY, 15, rng)


@pytest.fixture(scope="module")
def pv_weeks() -> np.ndarray:
    rng = np.random.default_rng(12)
    return pv_profile_kw(10.0, 52.5, 13.4, pd.Timestamp("2026-05-01"), 35 * DAY, 15, rng, 0.4)


def test_nmae_definition() -> None:
    actual = np.array([0.0, 2.0, 4.0, 2.0])
    forecast = np.array([1.0, 2.0, 3.0, 2.0])
    assert nmae(actual, forecast) == pytest.approx(2.0 / 8.0)
    assert nmae(np.zeros(3), np.zeros(3)) == 0.0
    assert nmae(np.zeros(3), np.ones(3)) == math.inf
    with pytest.raises(MemberError, match="shape"):
        nmae(actual, forecast[:2])


def test_every_registered_forecaster_fits_the_protocol() -> None:
    for name in FORECASTERS:
        fc = make_forecaster(name, nmae=0.1, interval_min=15)
        assert isinstance(fc, Forecaster)
        assert fc.name == name
        assert fc.history_days >= 0


def test_perfect_and_persistence_semantics() -> None:
    a = np.arange(3 * DAY, dtype=float)
    np.testing.assert_array_equal(make_forecaster("perfect").forecast_series(a), a)
    f = make_forecaster("persistence").forecast_series(a)
    assert f[0] == a[0]
    np.testing.assert_array_equal(f[1:DAY], a[: DAY - 1])
    np.testing.assert_array_equal(f[DAY:], a[:-DAY])
    hourly = make_forecaster("persistence", interval_min=60).forecast_series(a[:72])
    np.testing.assert_array_equal(hourly[24:], a[:48])


@pytest.mark.parametrize("level", [0.05, 0.1, 0.2, 0.4])
def test_noisy_realised_nmae_matches_setting(load_year: np.ndarray, level: float) -> None:
    rng = np.random.default_rng(5)
    calibrated = make_forecaster("noisy", nmae=level).forecast_series(load_year, rng)
    assert nmae(load_year, calibrated) == pytest.approx(level, rel=1e-9)
    raw = make_forecaster("noisy", nmae=level, calibrate=False).forecast_series(load_year, rng)
    assert nmae(load_year, raw) == pytest.approx(level, rel=0.03)  # in expectation only


def test_noisy_pv_forecast_is_dark_at_night_and_seeded(pv_weeks: np.ndarray) -> None:
    fc = make_forecaster("noisy", nmae=0.15)
    f = fc.forecast_series(pv_weeks, np.random.default_rng(1))
    assert np.all(f[pv_weeks == 0.0] == 0.0)
    assert nmae(pv_weeks, f) == pytest.approx(0.15, rel=1e-9)
    np.testing.assert_array_equal(f, fc.forecast_series(pv_weeks, np.random.default_rng(1)))
    assert not np.allclose(f, fc.forecast_series(pv_weeks, np.random.default_rng(2)))
    with pytest.raises(MemberError, match="rng"):
        fc.forecast_series(pv_weeks, None)


def test_fitted_and_persistence_errors_are_finite_and_reported(
    load_year: np.ndarray, pv_weeks: np.ndarray
) -> None:
    results: dict[tuple[str, str], float] = {}
    for series_name, series in (("load", load_year[: 35 * DAY]), ("pv", pv_weeks)):
        for name in ("persistence", "ar"):
            fc = make_forecaster(name)
            s = score(series, fc.forecast_series(series), skip=fc.history_days * DAY or WEEK)
            assert math.isfinite(s.nmae) and math.isfinite(s.nrmse) and math.isfinite(s.bias_kw)
            assert 0.0 < s.nmae < 1.0
            results[(series_name, name)] = s.nmae
    log.info("nMAE after a week of history: %s", results)
    # one-step-ahead regression beats day-ahead persistence on both series
    assert results[("load", "ar")] < results[("load", "persistence")]
    assert results[("pv", "ar")] < results[("pv", "persistence")]


def test_fitted_model_is_non_negative_and_handles_zero_series(pv_weeks: np.ndarray) -> None:
    fc = make_forecaster("ar")
    assert np.all(fc.forecast_series(pv_weeks) >= 0.0)
    np.testing.assert_array_equal(fc.forecast_series(np.zeros(5 * DAY)), np.zeros(5 * DAY))
    short = np.linspace(1.0, 2.0, 40)  # shorter than a day: persistence
    np.testing.assert_array_equal(fc.forecast_series(short)[1:], short[:-1])


@settings(max_examples=20, deadline=None)
@given(cut=st.integers(1, 4 * DAY - 1), name=st.sampled_from(["persistence", "ar"]))
def test_forecasts_use_only_the_past(cut: int, name: str) -> None:
    rng = np.random.default_rng(cut)
    a = 1.0 + rng.random(4 * DAY)
    b = a.copy()
    b[cut:] = 5.0 + rng.random(b.size - cut)  # change the future from `cut` on
    fc = make_forecaster(name)
    np.testing.assert_allclose(fc.forecast_series(a)[: cut + 1], fc.forecast_series(b)[: cut + 1])


def test_registry_errors() -> None:
    with pytest.raises(MemberError, match=r"forecaster 'oracle': unknown, need one of ar, noisy"):
        make_forecaster("oracle")
    with pytest.raises(MemberError, match=r"unknown parameter\(s\) \['window'\]"):
        make_forecaster("persistence", window=3)
    with pytest.raises(MemberError, match=r"nmae = 1\.5"):
        make_forecaster("noisy", nmae=1.5)
    with pytest.raises(MemberError, match="train_days = 0"):
        make_forecaster("ar", train_days=0)
    with pytest.raises(MemberError, match="interval_min = 7"):
        make_forecaster("persistence", interval_min=7).forecast_series(np.ones(3))
    with pytest.raises(MemberError, match=r"actual_kw\[1\] = nan"):
        make_forecaster("perfect").forecast_series(np.array([1.0, np.nan]))
