"""Signatures made ahead in a background thread equal the ones made on the spot."""

from __future__ import annotations

import pytest

from gridledger.errors import ChainError
from gridledger.ledger.keys import KeyRing
from gridledger.ledger.presign import Presigner
from gridledger.market import Bid, Side

MEMBERS = [2, 5, 9]


def _ring() -> KeyRing:
    ring = KeyRing.from_seed(b"presign-test", 31337, MEMBERS)
    ring.bind_market(b"\x42" * 20)
    return ring


def _rounds() -> list[list[Bid]]:
    return [
        [
            Bid(m, Side.BUY if m % 2 else Side.SELL, 100 * (k + 1) + m, 150_000 + k, 1)
            for m in MEMBERS
        ]
        for k in range(3)
    ]


def test_rounds_and_readings_signed_ahead_are_the_ones_signed_now() -> None:
    ring, rounds = _ring(), _rounds()
    readings = {m: 10 * m - 60 for m in MEMBERS}
    ahead = Presigner(ring)
    ahead.rounds_ahead(4, rounds)
    ahead.readings_ahead(4, readings)
    for k, bids in enumerate(rounds):
        assert ahead.sign_round(4, k, bids) == ring.sign_round(4, k, bids)
    assert ahead.sign_readings(4, readings) == ring.sign_readings(4, readings)
    # other inputs than the ones signed ahead are signed now, for what is asked
    ahead.rounds_ahead(5, rounds)
    assert ahead.sign_round(5, 0, rounds[1]) == ring.sign_round(5, 0, rounds[1])
    ahead.readings_ahead(5, readings)
    other = {**readings, 2: 7}
    assert ahead.sign_readings(5, other) == ring.sign_readings(5, other)
    # nothing asked ahead: signed now; what was not used is dropped with its interval
    assert ahead.sign_round(6, 0, rounds[0]) == ring.sign_round(6, 0, rounds[0])
    ahead.forget(5)
    assert not ahead._ahead


def test_a_signer_error_is_raised_when_the_round_is_taken() -> None:
    ring = _ring()
    ahead = Presigner(ring)
    stranger = [Bid(77, Side.BUY, 100, 150_000, 1)]
    ahead.rounds_ahead(3, [stranger])  # no error yet: the ledger would raise it on recording
    with pytest.raises(ChainError, match="interval 3 round 0: bid by unknown member 77"):
        ahead.sign_round(3, 0, stranger)
