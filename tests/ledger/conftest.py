"""Shared fixtures: one embedded market per test module (deploying is the slow part)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from ledgerkit import Market, make_market


@pytest.fixture(scope="module")
def market() -> Iterator[Market]:
    yield make_market()
