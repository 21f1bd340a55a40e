"""Long stateful fuzzing runs of the Market (the machine of tests/ledger/test_invariants.py).

Random call sequences by the operator, the DSO, members, meters, the GRID account and an
outsider on a fresh embedded market per example, with every invariant checked after each
step (solvency, conservation, locks, phase order, access control, settlement equal to
market/settlement.py). CI runs about 2,000 steps; this runs as many as asked.

    python scripts/fuzz_market.py --steps 20000 [--per-example 100] [--seed 7]

Exit 0 when every step held, 1 with hypothesis's minimal failing sequence on stderr.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "ledger"), str(ROOT)]

import test_invariants  # noqa: E402 - found through the path above

log = logging.getLogger("fuzz_market")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5_000, help="steps in total (about)")
    parser.add_argument("--per-example", type=int, default=100, help="steps per example")
    parser.add_argument("--seed", type=int, default=None, help="hypothesis seed (repeatable)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    start = time.perf_counter()
    try:
        counter = test_invariants.run(args.steps, args.per_example, args.seed)
    except Exception:
        log.exception("fuzz_market: an invariant or a predicted outcome failed")
        return 1
    elapsed_s = time.perf_counter() - start
    log.info("fuzz_market: %d steps held in %.1f s", counter.steps, elapsed_s)
    for name, count in sorted(counter.outcomes.items()):
        log.info("  %-40s %d", name, count)
    return 0


if __name__ == "__main__":
    sys.exit(main())
