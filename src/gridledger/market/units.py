"""Integer fixed-point units shared by the Python reference and the contracts.

- energy: watt-hours (``int``, ``e_wh``)
- price: micro-tokens per kWh (``int``, ``price_per_kwh_micro``); 1 token = 10**6 micro
- money: micro-tokens (``int``, ``*_micro``)

Money for an energy at a price is ``e_wh * price // 1000`` (floor). Solidity's
unsigned division floors the same way, so both sides agree to the unit. Every
place that rounds states where the remainder goes.

Sign convention used across gridledger: power and energy *injected* into the
grid are positive (generation), withdrawals are negative (consumption).
"""

from __future__ import annotations

__all__ = [
    "MICRO",
    "WH_PER_KWH",
    "kwh_to_wh",
    "micro_to_money",
    "micro_to_price",
    "money_micro",
    "price_to_micro",
    "wh_to_kwh",
]

MICRO = 1_000_000
WH_PER_KWH = 1_000


def kwh_to_wh(e_kwh: float) -> int:
    """Round an energy in kWh to whole Wh (half away from zero)."""
    e_wh = abs(e_kwh) * WH_PER_KWH + 0.5
    return int(e_wh) if e_kwh >= 0 else -int(e_wh)


def wh_to_kwh(e_wh: int) -> float:
    return e_wh / WH_PER_KWH


def price_to_micro(price_per_kwh: float) -> int:
    """Round a price in tokens per kWh to micro-tokens per kWh."""
    micro = abs(price_per_kwh) * MICRO + 0.5
    return int(micro) if price_per_kwh >= 0 else -int(micro)


def micro_to_price(price_per_kwh_micro: int) -> float:
    return price_per_kwh_micro / MICRO


def money_micro(e_wh: int, price_per_kwh_micro: int) -> int:
    """Money in micro-tokens for ``e_wh`` at ``price_per_kwh_micro``, floored.

    Both arguments must be non-negative, as on chain (uint).
    """
    return (e_wh * price_per_kwh_micro) // WH_PER_KWH


def micro_to_money(amount_micro: int) -> float:
    return amount_micro / MICRO
