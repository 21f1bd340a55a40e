"""Members' receipts: the bids each member's signer signed and handed to the operator.

A member that signs a bid keeps a copy (its receipt). If the operator then leaves that
bid out of the round it records, the receipt proves it: the audit compares receipts with
the recorded rounds (finding ``dropped_signed_bid``). In a deployment each member keeps
its own; the simulation's member-side signers write theirs into one file of the run's
chain folder, one JSON line per round::

    {"interval": 7, "round": 2, "bids": ["<bid word hex>", ...], "sigs": ["<r>", "<vs>", ...]}
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from gridledger.errors import SavedChainDamaged

__all__ = ["RECEIPTS_FILE", "Receipts", "append_receipts", "load_receipts"]

RECEIPTS_FILE = "receipts.jsonl"

# (interval, round) -> member -> bid word
Receipts = dict[tuple[int, int], dict[int, int]]


def append_receipts(
    state_dir: Path, interval: int, round_: int, words: Sequence[int], sigs: Sequence[bytes]
) -> None:
    """Append one round's signed bids (packed words and compact signatures)."""
    line = {
        "interval": interval,
        "round": round_,
        "bids": [f"{w:064x}" for w in words],
        "sigs": [s.hex() for s in sigs],
    }
    state_dir.mkdir(parents=True, exist_ok=True)
    with open(state_dir / RECEIPTS_FILE, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(line, separators=(",", ":")) + "\n")


def load_receipts(path: Path) -> Receipts:
    """The receipts in ``path`` ({} when there is no such file); a later line for the same
    round (a resumed run signing again) replaces the earlier one."""
    if not path.exists():
        return {}
    out: Receipts = {}
    content = path.read_text(encoding="utf-8")
    lines = content.split("\n")[:-1]  # a last line without its newline was torn by a kill
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            line = json.loads(text)
            key = (int(line["interval"]), int(line["round"]))
            words = [int(w, 16) for w in line["bids"]]
        except (ValueError, KeyError, TypeError) as error:
            message = f"{path}:{number}: not a receipt line ({error})"
            raise SavedChainDamaged(message) from error
        out[key] = {w >> 224: w for w in words}
    return out
