"""Helpers of the ledger tests: a funded embedded market and raw-transaction probes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from gridledger.ledger import EmbeddedBackend, Ledger, LedgerMember
from gridledger.ledger import encoding as enc
from gridledger.ledger.contracts import decode_error
from gridledger.market import Bid, Side, Tariffs, Trade, settle
from gridledger.market.orders import Curtailment, apply_curtailments

TARIFFS = Tariffs(retail_per_kwh_micro=300_000, feed_in_per_kwh_micro=80_000)
N_MEMBERS = 12
ROUNDS = 2
DEPOSIT = 10**9


def bus_of(member: int) -> int:
    return member % 5 + 1


def bids_of(rows: Sequence[tuple[int, Side, int, int]]) -> list[Bid]:
    """Bids from (member, side, Wh, price micro/kWh) rows, each at its member's bus."""
    return [Bid(m, side, e, p, bus_of(m)) for m, side, e, p in rows]


def deliver_and_settle(
    ledger: Ledger,
    interval: int,
    trades: Sequence[Trade],
    readings: Sequence[int],
    cut_seed: Sequence[tuple[int, int]],
    element: str,
) -> None:
    """After the clearing: record curtailments drawn from ``cut_seed`` and the meter
    ``readings``, settle, and check the chain against market/settlement.py to the
    unit and money conservation (deposits = balances + withdrawals = tokens held)."""
    curtailments = []
    if trades:
        for index_seed, share in cut_seed:
            t = index_seed % len(trades)
            curtailments.append(
                Curtailment(t, trades[t].e_wh * share // 400, element, index_seed % 7)
            )
    ledger.record_security(interval, curtailments)
    metered = dict(enumerate(readings))
    ledger.record_readings(interval, metered)
    expected = settle(apply_curtailments(trades, curtailments), metered, TARIFFS).deltas()
    assert ledger.settle(interval) == expected
    ledger.end_interval(interval)
    assert ledger.conserved()
    assert (
        sum(ledger.balances().values())
        == ledger.view("totalDepositedMicro")[0] - ledger.view("totalWithdrawnMicro")[0]
    )


@dataclass
class Market:
    ledger: Ledger
    outsider_key: bytes
    outsider: bytes
    next_interval: int = 0

    def take_interval(self) -> int:
        self.next_interval += 1
        return self.next_interval - 1

    def send_raw(
        self, to: bytes, data: bytes, key: bytes | None = None, gas: int = 2_000_000
    ) -> str | None:
        """Send one transaction; the revert's error name, or None when it succeeded."""
        ledger = self.ledger
        if key is None:
            raw = ledger.txq.sign(to, data, gas)
        else:
            nonce = ledger.backend.nonce(enc.address_of(key))
            raw = ledger.txq.sign(to, data, gas, key=key, nonce=nonce)
        (result,) = ledger.backend.send([raw])
        if result.status:
            return None
        return decode_error(result.revert_data).split("(")[0]

    def market_call(self, function: str, *args: object, key: bytes | None = None) -> str | None:
        assert self.ledger.market is not None
        return self.send_raw(
            self.ledger.market, self.ledger.market_abi.encode_call(function, *args), key
        )

    def token_call(self, function: str, *args: object, key: bytes | None = None) -> str | None:
        assert self.ledger.token is not None
        return self.send_raw(
            self.ledger.token, self.ledger.token_abi.encode_call(function, *args), key
        )


def make_market(
    n_members: int = N_MEMBERS,
    rounds: int = ROUNDS,
    *,
    clearing: str = "uniform",
    fees: np.ndarray | None = None,
    kappa: Fraction = Fraction(1, 2),
) -> Market:
    outsider_key = enc.derive_key(b"tests", "outsider")
    outsider = enc.address_of(outsider_key)
    ledger_probe = enc.address_of(enc.derive_key(b"tests-seed", "operator"))
    # Fund the operator, the outsider and every member account so each can send transactions.
    members = [LedgerMember(i, bus_of(i), i % 3) for i in range(n_members)]
    member_accounts = [
        enc.address_of(enc.derive_key(b"tests-seed", f"member/{m.id}")) for m in members
    ]
    backend = EmbeddedBackend(funded=[ledger_probe, outsider, *member_accounts])
    ledger = Ledger(backend, "embedded", None, seed=b"tests-seed")
    ledger.setup(members, TARIFFS, rounds, DEPOSIT, clearing=clearing, fees=fees, kappa=kappa)
    return Market(ledger, outsider_key, outsider)
