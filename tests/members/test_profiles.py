"""BDEW load profiles through demandlib: energy, shape, caching, variability."""

from __future__ import annotations

import datetime as dt
import warnings

import numpy as np
import pandas as pd
import pytest
from demandlib import bdew

from gridledger.members import MemberError, german_holidays, load_profile_kw
from gridledger.members.profiles import PROFILES, year_profile_kw


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_full_year_sums_to_annual_energy(profile: str) -> None:
    p_kw = load_profile_kw(profile, 4000.0, pd.Timestamp("2026-01-01"), 365 * 96)
    assert p_kw.sum() * 0.25 == pytest.approx(4000.0, rel=0.01)
    assert np.all(p_kw >= 0)


def test_leap_year_and_noisy_members_keep_annual_energy() -> None:
    p_kw = load_profile_kw("g0", 10_000.0, pd.Timestamp("2024-01-01"), 366 * 96)
    assert p_kw.sum() * 0.25 == pytest.approx(10_000.0, rel=1e-9)
    for seed in range(4):
        rng = np.random.default_rng(seed)
        noisy = load_profile_kw("h0", 4000.0, pd.Timestamp("2026-01-01"), 365 * 96, rng=rng)
        assert noisy.sum() * 0.25 == pytest.approx(4000.0, rel=0.01)


def test_matches_demandlib_scaled_power_profile() -> None:
    holidays = german_holidays(2026)
    with warnings.catch_warnings():  # ElecSlp leaves simplefilter("error") behind when bare
        slp = bdew.ElecSlp(2026, holidays=holidays)
    reference = slp.get_scaled_power_profiles({"h0": 3000.0})
    ours = load_profile_kw("h0", 3000.0, pd.Timestamp("2026-01-01"), 365 * 96)
    np.testing.assert_allclose(ours, reference["h0"].to_numpy(), rtol=1e-9)


def test_day_energy_and_shape_are_plausible() -> None:
    annual = 4000.0
    day = load_profile_kw("h0", annual, pd.Timestamp("2026-06-17"), 96)  # a Wednesday
    e_kwh = day.sum() * 0.25
    assert 0.6 * annual / 365 < e_kwh < 1.4 * annual / 365
    assert day[3 * 4] < day.mean() < day.max()  # 03:00 below average
    peak_hour = int(np.argmax(day)) / 4
    assert 10 <= peak_hour <= 21
    office = load_profile_kw("g1", annual, pd.Timestamp("2026-06-17"), 96)  # workday 8-18
    assert office[10 * 4] > 2 * office[2 * 4]


def test_interval_lengths_aggregate_consistently() -> None:
    start = pd.Timestamp("2026-03-02 06:00")
    p15 = load_profile_kw("h0", 5000.0, start, 96)
    p60 = load_profile_kw("h0", 5000.0, start, 24, interval_min=60)
    np.testing.assert_allclose(p60, p15.reshape(24, 4).mean(axis=1))
    p5 = load_profile_kw("h0", 5000.0, start, 288, interval_min=5)
    np.testing.assert_allclose(p5, np.repeat(p15, 3))
    p10 = load_profile_kw("h0", 5000.0, start, 144, interval_min=10)
    assert p10.sum() / 6 == pytest.approx(p15.sum() / 4)


def test_window_across_new_year() -> None:
    both = load_profile_kw("h0", 4000.0, pd.Timestamp("2025-12-31"), 192)
    np.testing.assert_allclose(both[:96], year_profile_kw("h0", 2025)[-96:] * 4000.0)
    np.testing.assert_allclose(both[96:], year_profile_kw("h0", 2026)[:96] * 4000.0)


def test_german_holidays_are_sundays() -> None:
    assert dt.date(2026, 4, 6) in german_holidays(2026)  # Easter Monday (Easter: 5 April)
    assert dt.date(2024, 5, 9) in german_holidays(2024)  # Ascension 2024
    christmas = pd.Timestamp("2026-12-25")  # a Friday
    de = load_profile_kw("h0", 4000.0, christmas, 96, holidays="de")
    none = load_profile_kw("h0", 4000.0, christmas, 96, holidays="none")
    sunday = load_profile_kw("h0", 4000.0, pd.Timestamp("2026-12-27"), 96, holidays="none")
    assert not np.allclose(de, none)
    # same winter season: Christmas under "de" follows the Sunday shape
    np.testing.assert_allclose(de / de.sum(), sunday / sunday.sum(), rtol=1e-6)


def test_variability_is_seeded() -> None:
    start = pd.Timestamp("2026-06-20")
    a = load_profile_kw("h0", 4000.0, start, 192, rng=np.random.default_rng(7))
    b = load_profile_kw("h0", 4000.0, start, 192, rng=np.random.default_rng(7))
    c = load_profile_kw("h0", 4000.0, start, 192, rng=np.random.default_rng(8))
    plain = load_profile_kw("h0", 4000.0, start, 192)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert not np.allclose(a, plain)
    assert 0.7 < a.sum() / plain.sum() < 1.3


def test_caller_warning_filters_survive_demandlib() -> None:
    year_profile_kw.cache_clear()
    from gridledger.members import profiles

    profiles._elec_slp_year.cache_clear()
    before = list(warnings.filters)
    load_profile_kw("h0", 1000.0, pd.Timestamp("2031-01-01"), 4)
    assert warnings.filters == before


def test_three_hundred_members_all_differ() -> None:
    """300 members' profiles from one rng all differ (speed: a benchmark's job, not a test's)."""
    start = pd.Timestamp("2026-06-20")
    rng = np.random.default_rng(0)
    rows = [load_profile_kw("h0", 3000.0 + i, start, 192, 15, rng) for i in range(300)]
    assert len({r.tobytes() for r in rows}) == 300


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"profile": "h7"}, "'h7'"),
        ({"annual_kwh": -5.0}, "annual_kwh = -5.0"),
        ({"interval_min": 7}, "interval_min = 7"),
        ({"intervals": 0}, "intervals = 0"),
        ({"start": pd.Timestamp("2026-06-20 00:03")}, "start = 2026-06-20 00:03"),
        ({"holidays": "fr"}, "holidays = 'fr'"),
        ({"max_shift_min": 7}, "max_shift_min = 7"),
        ({"noise_sd": -0.1}, "noise_sd = -0.1"),
    ],
)
def test_invalid_arguments(kwargs: dict[str, object], needle: str) -> None:
    args: dict[str, object] = {
        "profile": "h0",
        "annual_kwh": 1000.0,
        "start": pd.Timestamp("2026-06-20"),
        "intervals": 4,
    }
    args.update(kwargs)
    with pytest.raises(MemberError, match=needle.replace("(", r"\(")):
        load_profile_kw(**args)  # type: ignore[arg-type]
