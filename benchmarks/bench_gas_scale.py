"""Gas of every on-chain step against the number of members (the table in docs/ledger.md).

    python benchmarks/bench_gas_scale.py                       # 100, 300, 1,000, 3,000 members
    python benchmarks/bench_gas_scale.py --sizes 100,300 --json out.json

Each size runs on anvil with 150M-gas blocks, so that every step runs whole and its gas
is measured even where it would not fit a 30M block; such cells are flagged (a settlement
there is paged: the row "a page of one member" is the node's estimate of the smallest page). Members sit
on the 32 load buses of ieee33 (fee rules: its distance fee table, kappa 1/2); one
interval with one (binding) round; every member bids (random side, energy 1-3,000 Wh,
price 0.08-0.30 tokens/kWh) and every meter reads. The greedy market runs the whole
interval; the uniform and optimal markets are deployed too, for their clearing only.
Gas is what the receipts say (21,000 base and calldata included); the limits the ledger
gave are its ``eth_estimateGas`` plus the margin (``txqueue.gas_limit``).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from markets import random_bids

from gridledger.ledger import Ledger, LedgerMember
from gridledger.ledger.anvil import start_anvil
from gridledger.ledger.contracts import artifact
from gridledger.ledger.keys import KeyRing
from gridledger.ledger.keystore import MIN_SCRYPT_N, write_keystores
from gridledger.ledger.reference import clearing_call
from gridledger.ledger.txqueue import gas_limit
from gridledger.market.settlement import Tariffs
from gridledger.scenario import load_scenario
from gridledger.world import build_world

__all__ = ["STEPS", "measure", "run"]

ROOT = Path(__file__).resolve().parents[1]
SIZES = (100, 300, 1_000, 3_000)
TX_GAS_CAP = 16_777_216  # EIP-7825: what one transaction may carry (chain.tx_gas_cap)
NODE_BLOCK_GAS = 150_000_000  # the benchmark's node: every step runs whole
TARIFFS = Tariffs(300_000, 80_000)
PASSWORD = "benchmark"
#: Steps of the table: the ledger's step name (a label's first word) and the table's name.
STEPS = (
    ("register", "registration"),
    ("deposit", "deposit"),
    ("recordRound", "record round"),
    ("recordRound/page", "record round, a page of one bid"),
    ("clear/uniform", "clear, uniform"),
    ("clear/greedy", "clear, greedy"),
    ("clear/greedy/page", "clear, greedy: the costliest page of one entry"),
    ("clear/optimal", "clear, optimal"),
    ("clear/optimal/page", "clear, optimal: the costliest page of one entry"),
    ("recordSecurity", "security"),
    ("recordReadings", "readings"),
    ("recordReadings/page", "readings, a page of one member"),
    ("settle", "settle"),
    ("settle/page", "settle, a page of one member"),
)
#: Steps that are paged when they do not fit a block (the rest must fit one).
PAGED = (
    "register",
    "deposit",
    "recordRound",
    "clear/greedy",
    "clear/optimal",
    "recordSecurity",
    "recordReadings",
    "settle",
)


def _members(n: int) -> list[LedgerMember]:
    return [LedgerMember(i, 1 + i % 32, 2, limit_wh=5_000) for i in range(n)]


def _step_gas(ledger: Ledger, before: dict[str, int]) -> int:
    """Gas the ledger's transactions used since ``before`` (a copy of ``gas_by_step``)."""
    after = ledger.stats().gas_by_step
    return sum(after.values()) - sum(before.values())


def _market(url: str, ring: KeyRing, n: int, rule: str, fees: Any) -> dict[str, int]:
    """Deploy a market of ``n`` members with ``rule`` and run one interval (greedy: all of
    it; the others: their clearing); gas of each step."""
    ledger = Ledger.connect(url, keys=ring)
    ledger.backend.tx_gas_cap = NODE_BLOCK_GAS  # measured whole, not under EIP-7825's cap
    members = _members(n)
    rng = random.Random(n)
    out: dict[str, int] = {}
    ledger.setup(
        members, TARIFFS, 1, 10**12, clearing=rule, fees=None if rule == "uniform" else fees
    )
    by_step = ledger.stats().gas_by_step
    out["register"] = by_step.get("register", 0)
    out["deposit"] = by_step.get("deposit", 0)
    bids = random_bids(members, rng, (1, 3_000), (80_000, 300_000))
    if rule == "greedy":  # a page of one bid (the node's estimate, past the deadline)
        ledger._open(0)
        ledger.txq.seal_block(new_block=True)
        words, sigs = ledger.keys.sign_round(0, 0, bids)
        out["recordRound/page"] = ledger.step_gas("recordRound", (0, 0, True, words, sigs), 1)
    ledger.record_round(0, 0, bids, binding=True)
    if rule != "uniform":
        out[f"clear/{rule}/page"] = _last_page(ledger, rule)
    before = dict(ledger.stats().gas_by_step)
    ledger.clear(0)
    out[f"clear/{rule}"] = _step_gas(ledger, before)
    round_gas = ledger.stats().gas_by_step.get("recordRound", 0)
    if rule != "greedy":
        return {**out, "recordRound": round_gas}
    out["recordRound"] = round_gas
    readings = {m.id: rng.randint(-3_000, 3_000) for m in members}

    def readings_page() -> int:
        ledger.txq.flush()
        words, sigs = ledger.keys.sign_readings(0, readings)
        return ledger.step_gas("recordReadings", (0, words, sigs), 1)

    for step, call in (
        ("recordSecurity", lambda: ledger.record_security(0, [])),
        ("recordReadings/page", lambda: out.__setitem__("recordReadings/page", readings_page())),
        (
            "recordReadings",
            lambda: ledger.record_readings(0, readings),
        ),
        ("settle/page", lambda: out.__setitem__("settle/page", ledger.settle_gas(0, 1))),
        ("settle", lambda: ledger.settle(0)),
    ):
        if step.endswith("/page"):  # an estimate (the node's run of the call), not sent
            call()
            continue
        before = dict(ledger.stats().gas_by_step)
        call()
        ledger.txq.flush()
        out[step] = _step_gas(ledger, before)
    ledger.end_interval(0)
    return out


def _last_page(ledger: Ledger, rule: str) -> int:
    """The node's estimate of a fee rule's costliest page of one entry (greedy: its last trade
    or its last seller's final check, every trade before replayed; optimal: its last trade, its
    first bid or its final check): the Market's own part of the whole call (its estimate less
    the verifier's run of the whole) plus the verifier's run of that page."""
    ledger.txq.flush()
    d = ledger._deployed()
    call = clearing_call(rule, ledger._interval(0).bids, d.clearing.fees, d.clearing.kappa)
    function = "clearGreedy" if rule == "greedy" else "clearOptimal"
    n, end = call.n_trades or 0, call.entries or 0
    whole = ledger.step_gas(function, (0, *call.args), end)
    cfg = 0
    for name, shift in (("feeBuses", 128), ("kappaNum", 64), ("kappaDen", 0)):
        cfg |= int(ledger.view(name)[0]) << shift
    verifier = artifact("FeeClearingVerifier")
    (address,) = ledger.view("feeVerifier")
    (data,) = ledger.view("feeTableData")
    to = bytes.fromhex(address[2:]) if isinstance(address, str) else address
    check = "verifyGreedyPage" if rule == "greedy" else "verifyOptimalPage"

    def run(span: int) -> int:
        payload = verifier.encode_call(check, cfg, data, *call.args, span)
        return ledger.txq.estimate(f"{check} 0", to, payload)

    if not end:
        return whole
    pages = [((n - 1) << 128) | n] if n else []
    if rule == "optimal" and end > n + 1:  # a page of one bid: every trade's hint walked
        pages.append((n << 128) | (n + 1))
    pages.append(((end - 1) << 128) | end)
    return whole - run(end) + max(run(span) for span in pages)


def measure(sizes: Sequence[int]) -> dict[int, dict[str, int]]:
    """Gas per step for each size (one fresh anvil node for all)."""
    world = build_world(load_scenario(ROOT / "scenarios" / "ieee33.toml"))
    results: dict[int, dict[str, int]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "keys"
        write_keystores(folder, PASSWORD, range(max(sizes)), scrypt_n=MIN_SCRYPT_N)
        with start_anvil(block_gas_limit=NODE_BLOCK_GAS) as node:
            for n in sizes:
                started = time.perf_counter()
                ring = KeyRing.from_keystores(folder, PASSWORD, member_ids=range(n))
                row: dict[str, int] = {}
                for rule in ("greedy", "uniform", "optimal"):
                    gas = _market(node.url, ring, n, rule, world.fees)
                    for key, value in gas.items():
                        row.setdefault(key, value)
                results[n] = row
                print(f"{n} members: {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return results


def table(results: dict[int, dict[str, int]]) -> str:
    """The markdown table: gas per step (millions) and per member; ⚠ where the step's gas
    limit (its gas plus the estimate margin) is above what one transaction may carry."""
    sizes = sorted(results)
    head = "| step | " + " | ".join(f"{n:,} members" for n in sizes) + " | per member |"
    lines = [head, "|---|" + "---:|" * (len(sizes) + 1)]
    for key, name in STEPS:
        cells = []
        for n in sizes:
            gas = results[n][key]
            over = gas_limit(gas) > TX_GAS_CAP and key not in ("register", "deposit")
            mark = " ⚠" if over else ""
            cells.append(f"{gas / 1e6:.2f} M{mark}")
        big, small = sizes[-1], sizes[0]
        slope = (results[big][key] - results[small][key]) / max(big - small, 1)
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {slope:,.0f} |")
    return "\n".join(lines)


def rows(results: dict[int, dict[str, int]]) -> list[dict[str, Any]]:
    """benchmarks/run.py rows: one per step and size (gas)."""
    out = []
    for n, gas in sorted(results.items()):
        for key, _name in STEPS:
            single = key not in PAGED
            if key in ("register", "deposit"):
                note = "paged: 128 members per transaction"
            elif not single:
                note = "paged when it does not fit one transaction (its upTo)"
            elif key.endswith("/page"):
                note = "a page of one entry: with the estimate margin it must fit one transaction"
            else:
                note = "one transaction: with the estimate margin it must fit one"
            out.append(
                {
                    "name": f"gas_{key.replace('/', '_')}_{n}_members",
                    "value": gas[key],
                    "unit": "gas",
                    "target": TX_GAS_CAP if single else None,
                    "note": note,
                }
            )
    return out


def run(sizes: Sequence[int] = SIZES) -> list[dict[str, Any]]:
    """Rows for benchmarks/run.py."""
    return rows(measure(sizes))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(str(n) for n in SIZES))
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    results = measure(sizes)
    print(table(results))
    if args.json is not None:
        args.json.write_text(json.dumps({str(k): v for k, v in results.items()}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
