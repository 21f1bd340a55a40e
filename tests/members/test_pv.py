"""PV from pvlib's clear sky with seeded, site-correlated clouds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pvlib
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridledger.members import MemberError, clear_sky_poa_w_m2, pv_profile_kw

BERLIN = (52.5, 13.4)
MIDSUMMER = pd.Timestamp("2026-06-21")


def _clear_day(kwp: float = 10.0, **kwargs: object) -> np.ndarray:
    return pv_profile_kw(kwp, *BERLIN, MIDSUMMER, 96, 15, None, 0.0, **kwargs)  # type: ignore[arg-type]


def test_zero_at_night_positive_at_noon_on_clear_day() -> None:
    p_kw = _clear_day()
    assert np.all(p_kw[: 2 * 4] == 0.0)  # 00:00-02:00
    assert np.all(p_kw[22 * 4 :] == 0.0)  # 22:00-24:00
    noon = p_kw[12 * 4]
    assert 6.0 < noon <= 10.0
    assert int(np.argmax(p_kw)) // 4 in (11, 12)  # local standard time UTC+1
    assert np.all(p_kw <= 10.0)


def test_clear_day_matches_direct_pvlib_computation() -> None:
    """Daily energy against pvlib at 1-minute resolution (same model, finer grid)."""
    times = pd.date_range("2026-06-21 00:00", periods=1440, freq="1min", tz="Etc/GMT-1")
    site = pvlib.location.Location(*BERLIN, tz="Etc/GMT-1")
    sun = site.get_solarposition(times)
    sky = site.get_clearsky(times, model="ineichen")
    poa = (
        pvlib.irradiance.get_total_irradiance(
            30,
            180,
            sun["apparent_zenith"],
            sun["azimuth"],
            sky["dni"],
            sky["ghi"],
            sky["dhi"],
            albedo=0.2,
        )["poa_global"]
        .fillna(0.0)
        .clip(lower=0.0)
    )
    poa[sun["apparent_zenith"] >= 90] = 0.0
    reference_kwh = float((10.0 * 0.85 * poa / 1000.0).sum() / 60.0)
    ours_kwh = float(_clear_day().sum() * 0.25)
    assert ours_kwh == pytest.approx(reference_kwh, rel=0.01)
    assert 55.0 < ours_kwh < 80.0  # 10 kWp, clear midsummer day in Berlin


def test_night_is_zero_whatever_the_weather() -> None:
    clear = _clear_day()
    night = clear == 0.0
    for seed in range(5):
        p_kw = pv_profile_kw(
            10.0, *BERLIN, MIDSUMMER, 96, 15, np.random.default_rng(seed), 0.7, weather_seed=seed
        )
        assert np.all(p_kw[night] == 0.0)
        assert np.all((p_kw >= 0.0) & (p_kw <= 10.0))


def test_reproducible_for_a_seed_and_different_for_another() -> None:
    def run(seed: int, weather_seed: int = 0) -> np.ndarray:
        rng = np.random.default_rng(seed)
        return pv_profile_kw(10.0, *BERLIN, MIDSUMMER, 192, 15, rng, 0.5, weather_seed=weather_seed)

    np.testing.assert_array_equal(run(1), run(1))
    assert not np.allclose(run(1), run(2))
    assert not np.allclose(run(1, 0), run(1, 5))


def test_members_at_one_site_share_the_weather() -> None:
    start, n = pd.Timestamp("2026-05-01"), 96 * 30
    rng = np.random.default_rng(0)
    a = pv_profile_kw(5.0, *BERLIN, start, n, 15, rng, 0.5, weather_seed=3)
    b = pv_profile_kw(5.0, *BERLIN, start, n, 15, rng, 0.5, weather_seed=3)
    other = pv_profile_kw(5.0, *BERLIN, start, n, 15, rng, 0.5, weather_seed=4)
    same_site = np.corrcoef(a, b)[0, 1]
    assert not np.allclose(a, b)
    assert same_site > 0.95
    daily = a.reshape(30, 96).sum(axis=1)
    daily_other = other.reshape(30, 96).sum(axis=1)
    assert (
        np.corrcoef(daily, daily_other)[0, 1]
        < np.corrcoef(daily, b.reshape(30, 96).sum(axis=1))[0, 1]
    )


def test_window_is_a_slice_of_a_longer_window() -> None:
    long = pv_profile_kw(10.0, *BERLIN, MIDSUMMER, 3 * 96, 15, None, 0.5, weather_seed=2)
    part = pv_profile_kw(
        10.0, *BERLIN, MIDSUMMER + pd.Timedelta(hours=30), 96, 15, None, 0.5, weather_seed=2
    )
    np.testing.assert_allclose(part, long[120:216])
    hourly = pv_profile_kw(10.0, *BERLIN, MIDSUMMER, 72, 60, None, 0.5, weather_seed=2)
    np.testing.assert_allclose(hourly, long.reshape(72, 4).mean(axis=1))


def test_more_cloudiness_means_less_energy() -> None:
    start, n = pd.Timestamp("2026-04-01"), 96 * 120
    energy = [
        pv_profile_kw(1.0, *BERLIN, start, n, 15, None, c, weather_seed=1).sum() * 0.25
        for c in (0.0, 0.3, 0.6, 0.9)
    ]
    assert energy[0] > energy[1] > energy[2] > energy[3] > 0


def test_southern_site_faces_north_and_tz_aware_start() -> None:
    sydney = pv_profile_kw(5.0, -33.9, 151.2, pd.Timestamp("2026-12-21"), 96, 15, None, 0.0)
    assert sydney[12 * 4] > 3.0 and sydney[0] == 0.0
    aware = pv_profile_kw(
        10.0, *BERLIN, pd.Timestamp("2026-06-21", tz="Europe/Berlin"), 96, 15, None, 0.0
    )
    assert int(np.argmax(aware)) // 4 in (12, 13)  # CEST = UTC+2: the peak is an hour later
    assert clear_sky_poa_w_m2(*BERLIN, MIDSUMMER.date()).max() > 800.0


def test_zero_kwp_gives_zeros() -> None:
    assert not pv_profile_kw(0.0, *BERLIN, MIDSUMMER, 96).any()


@settings(max_examples=25, deadline=None)
@given(
    kwp=st.floats(0.1, 500.0),
    cloudiness=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**32 - 1),
    day=st.integers(0, 364),
)
def test_output_bounded_and_dark_at_night(
    kwp: float, cloudiness: float, seed: int, day: int
) -> None:
    start = pd.Timestamp("2026-01-01") + pd.Timedelta(days=day)
    p_kw = pv_profile_kw(kwp, *BERLIN, start, 96, 15, np.random.default_rng(seed), cloudiness)
    assert np.all(p_kw >= 0.0) and np.all(p_kw <= kwp)
    assert np.all(p_kw[:8] == 0.0)  # 00:00-02:00 local standard time


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"kwp": -1.0}, "kwp = -1.0"),
        ({"latitude": 95.0}, "latitude = 95.0"),
        ({"cloudiness": 1.5}, "cloudiness = 1.5"),
        ({"interval_min": 7}, "interval_min = 7"),
        ({"weather_seed": -1}, "weather_seed = -1"),
        ({"performance_ratio": 0.0}, "performance_ratio = 0.0"),
    ],
)
def test_invalid_arguments(kwargs: dict[str, object], needle: str) -> None:
    args: dict[str, object] = {
        "kwp": 5.0,
        "latitude": 52.5,
        "longitude": 13.4,
        "start": MIDSUMMER,
        "intervals": 4,
    }
    args.update(kwargs)
    with pytest.raises(MemberError, match=needle):
        pv_profile_kw(**args)  # type: ignore[arg-type]
