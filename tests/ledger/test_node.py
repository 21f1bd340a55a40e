"""The pieces of node reconciliation that need no node: nonces of signed transactions and
the ``sent.jsonl`` journal."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from gridledger.ledger.keys import DEFAULT_SEED, KeyRing
from gridledger.ledger.node import SENT_FILE, SentJournal, SentStep, tx_nonce

SIGNER = KeyRing.from_seed(DEFAULT_SEED, 31337)


@given(nonce=st.integers(0, 2**40), create=st.booleans())
def test_tx_nonce_reads_the_signed_nonce(nonce: int, create: bool) -> None:
    to = None if create else b"\x11" * 20
    raw = SIGNER.sign_tx(to, b"\x01\x02", 100_000, nonce)
    assert tx_nonce(raw) == nonce


def test_journal_round_trip_skips_a_torn_line(tmp_path: Path) -> None:
    journal = SentJournal(tmp_path)
    raws = [SIGNER.sign_tx(b"\x22" * 20, b"", 50_000, n) for n in (7, 8)]
    journal.write([("recordRound 3/0", 3, 12, raws[0]), ("clear 3", 3, 0, raws[1])])
    with open(tmp_path / SENT_FILE, "ab") as handle:
        handle.write(b'{"label":"settle 3","inter')  # killed while writing
    steps = journal.entries()
    assert steps == [
        SentStep("recordRound 3/0", 3, 12, raws[0]),
        SentStep("clear 3", 3, 0, raws[1]),
    ]
    assert [s.nonce for s in steps] == [7, 8]
    journal.write([("settle 3", 3, 0, raws[1])])  # appended after the torn line is cut
    assert journal.entries()[-1] == SentStep("settle 3", 3, 0, raws[1])
    journal.replace(steps[1:])
    assert journal.entries() == steps[1:]
    journal.clear()
    assert journal.entries() == [] and (tmp_path / SENT_FILE).read_bytes() == b""
