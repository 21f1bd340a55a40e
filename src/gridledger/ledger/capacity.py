"""Will a market fit its chain? A check made before anything is deployed.

Every interval step but settlement is one transaction (registration and deposits are
paged at setup), so each must fit one block; settlement is paged over transactions
(``Market.settle(.., upTo)``), and each of its pages recomputes every member's change, so
a page of one member must fit. The gas of each step grows linearly with the members; the
coefficients below were measured by ``benchmarks/bench_gas_scale.py`` (every member bids
and reads, docs/ledger.md has the table) and are applied with the ledger's estimate
margin (:func:`~gridledger.ledger.txqueue.gas_limit`). A market whose predicted step does
not fit is refused by name (:class:`ChainCapacityExceeded`) with the largest member count
that fits. The prediction is a typical market's, not a bound: the transactions' gas still
comes from ``eth_estimateGas`` when they are sent, and a step that turns out larger than a
block stops the run by name (:class:`~gridledger.ledger.txqueue.StepTooLarge`) before
anything of it is sent.

An interval also spans blocks: its opening, each round's deadline (``round_blocks``), the
meters' window (``reading_blocks``) and the blocks its steps fill. The binding round's
locks are released by settlement or, ``settle_blocks`` later, by anyone's expiry, so the
steps after the binding round must fit in ``settle_blocks``.
"""

from __future__ import annotations

from dataclasses import dataclass

from gridledger.errors import ChainError
from gridledger.ledger.deploy import ChainTiming
from gridledger.ledger.txqueue import gas_limit

__all__ = [
    "STEP_GAS",
    "ChainCapacityExceeded",
    "StepGas",
    "check_capacity",
    "max_members",
    "predicted_gas",
]


class ChainCapacityExceeded(ChainError):
    """The market is too large for the chain it would run on (a scenario to change)."""

    exit_code = 2


@dataclass(frozen=True, slots=True)
class StepGas:
    """Gas of one step's transaction: ``base + per_member * members`` (measured)."""

    name: str
    base: int
    per_member: int


#: Per step: the slope measured by benchmarks/bench_gas_scale.py from 100 to 3,000 members
#: (random books, every member bids and reads), raised to the largest per-member gas seen in
#: the 1,026-member ieee33 run (more trades per bid; settlement's first writes to zero
#: balances), so a typical market is predicted from above.
STEP_GAS: dict[str, StepGas] = {
    "recordRound": StepGas("record a round", 80_000, 14_000),
    "clear/uniform": StepGas("clear (uniform)", 60_000, 2_800),
    "clear/greedy": StepGas("clear (greedy)", 120_000, 11_000),
    "clear/optimal": StepGas("clear (optimal)", 120_000, 6_600),
    "recordSecurity": StepGas("record the security verdict", 60_000, 1_100),
    "recordReadings": StepGas("record the readings", 60_000, 10_200),
    "settle": StepGas("settle", 100_000, 15_000),
    # a settlement page of one member (every change computed, the reserve of the whole
    # settlement checked; measured 8,030 per member at 100-300 members on the embedded chain)
    "settle/page": StepGas("settle a page of one member", 100_000, 8_500),
}

#: The steps of an interval under each clearing rule, in order.
_INTERVAL_STEPS = ("recordRound", "clear/{rule}", "recordSecurity", "recordReadings", "settle")
#: What must fit one block: each step's transaction, and a settlement page of one member.
_ONE_BLOCK = ("recordRound", "clear/{rule}", "recordSecurity", "recordReadings", "settle/page")


def predicted_gas(step: str, members: int) -> int:
    """The gas limit the ledger would give ``step`` with ``members`` members (its
    predicted gas plus the estimate margin)."""
    model = STEP_GAS[step]
    return gas_limit(model.base + model.per_member * members)


def max_members(step: str, block_gas_limit: int) -> int:
    """The most members whose ``step`` fits one block."""
    model = STEP_GAS[step]
    low, high = 0, block_gas_limit // max(model.per_member, 1) + 1
    while low < high:
        mid = (low + high + 1) // 2
        if predicted_gas(step, mid) <= block_gas_limit:
            low = mid
        else:
            high = mid - 1
    return low


def check_capacity(
    members: int, rule: str, block_gas_limit: int, timing: ChainTiming | None = None
) -> None:
    """Refuse, by name and before anything is deployed, a market of ``members`` members
    cleared by ``rule`` whose interval steps would not fit the chain's blocks or deadlines."""
    steps = [s.format(rule=rule) for s in _INTERVAL_STEPS]
    single = [s.format(rule=rule) for s in _ONE_BLOCK]
    if any(step not in STEP_GAS for step in steps):
        return  # an unknown rule: the deployment refuses it by name
    for step in single:
        need = predicted_gas(step, members)
        if need > block_gas_limit:
            fits = min(max_members(s, block_gas_limit) for s in single)
            message = (
                f"{members:,} members: one transaction to {STEP_GAS[step].name} would need "
                f"about {need:,} gas, more than a block holds on this chain "
                f"({block_gas_limit:,}); at most {fits:,} members fit (each interval step but "
                "settlement is one transaction), or use a chain with larger blocks"
            )
            raise ChainCapacityExceeded(message)
    timing = timing or ChainTiming()
    pages = -(-predicted_gas("settle", members) // block_gas_limit)
    paging = (pages - 1) * predicted_gas("settle/page", members)  # each page recomputes all
    after_binding = sum(predicted_gas(s, members) for s in steps[1:]) + paging
    step_blocks = -(-after_binding // block_gas_limit)  # packed by gas, as the ledger does
    needed = step_blocks + timing.reading_blocks
    if needed > timing.settle_blocks:
        message = (
            f"{members:,} members: after the binding round an interval needs about {needed} "
            f"blocks (its steps fill {step_blocks}, the meters' window is "
            f"{timing.reading_blocks}), more than settle_blocks = {timing.settle_blocks}: "
            "anyone could expire it before it is settled"
        )
        raise ChainCapacityExceeded(message)
