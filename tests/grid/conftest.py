"""Shared feeders for the grid tests (built once per session: they are read-only
apart from the power flow's own scratch state)."""

from __future__ import annotations

import pytest

from gridledger.grid import Feeder, load_feeder

SHIPPED = ("ieee33", "cigre_lv", "cigre_lv_full")


@pytest.fixture(scope="session")
def feeders() -> dict[str, Feeder]:
    return {name: load_feeder(name) for name in SHIPPED}


@pytest.fixture(scope="session")
def ieee33(feeders: dict[str, Feeder]) -> Feeder:
    return feeders["ieee33"]
