"""Mean buyer and seller prices in summary.json, under every clearing rule."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gridledger.cli import main

ROOT = Path(__file__).resolve().parents[2]
IEEE33 = ROOT / "scenarios" / "ieee33.toml"
NOON = ["horizon.intervals=4", "horizon.first_interval=48"]


def _run(tmp_path: Path, *sets: str) -> tuple[dict[str, object], pd.DataFrame, pd.DataFrame]:
    args = ["run", str(IEEE33), "--chain", "none", "--out", str(tmp_path), "-q"]
    for item in [*NOON, *sets]:
        args += ["--set", item]
    assert main(args) == 0
    kpis = json.loads((tmp_path / "summary.json").read_text())
    return kpis, pd.read_csv(tmp_path / "trades.csv"), pd.read_csv(tmp_path / "intervals.csv")


def test_greedy_buyers_pay_the_sellers_price_plus_the_mean_fee(tmp_path: Path) -> None:
    kpis, trades, _ = _run(tmp_path, 'market.clearing="greedy"', 'market.network_fee="distance"')
    assert len(trades) > 0
    buyer, seller = kpis["mean_buyer_price_per_kwh"], kpis["mean_seller_price_per_kwh"]
    assert isinstance(buyer, float) and isinstance(seller, float)
    assert kpis["mean_price_per_kwh"] is None  # greedy has no uniform price
    assert buyer >= seller > 0
    e_kwh = trades["e_kwh"].to_numpy(dtype=float)
    mean_fee = float(np.dot(e_kwh, trades["fee_per_kwh"].to_numpy(dtype=float)) / e_kwh.sum())
    assert mean_fee > 0
    assert buyer - seller == pytest.approx(mean_fee, abs=2e-6)


def test_uniform_without_fees_both_means_are_the_clearing_price(tmp_path: Path) -> None:
    kpis, trades, intervals = _run(
        tmp_path, 'market.clearing="uniform"', 'market.network_fee="none"'
    )
    assert len(trades) > 0
    buyer, seller = kpis["mean_buyer_price_per_kwh"], kpis["mean_seller_price_per_kwh"]
    assert buyer == seller
    # energy-weighted mean of the intervals' clearing prices
    priced = intervals[intervals["traded_kwh"] > 0]
    weights = priced["traded_kwh"].to_numpy(dtype=float)
    expected = float(np.dot(weights, priced["price_per_kwh"].to_numpy(dtype=float)) / weights.sum())
    assert buyer == pytest.approx(expected, abs=1e-5)
    assert kpis["mean_price_per_kwh"] == pytest.approx(
        float(np.nanmean(intervals["price_per_kwh"]))
    )
