"""Will a market fit its chain? A check made before anything is deployed.

Registration and deposits are paged at setup; the bidding rounds, the fee rules' clearings,
the security verdict, the readings and the settlement are paged over transactions when they
do not fit a block (``upTo`` of ``Market.recordRound`` / ``clearGreedy`` / ``clearOptimal`` /
``recordSecurity`` / ``recordReadings`` / ``settle``), and every page resubmits the whole
list (a verdict's page checks every curtailment, then its margin rows, trade terms or final
entry; a settlement
page walks every trade for its readings' positions, a greedy clearing page replays the
trades verified before it; the settlement's entries are a check, then a booking, per
reading, the greedy clearing's its trades, then the seller buses left, each checked for
surplus left, the optimal clearing's its trades, then one final check over every bid), so a
page of one entry must fit one transaction. The uniform clearing is one transaction (it
costs less per member than a page of one bid of the round before it, so that page binds
first; :data:`STEP_GAS`). One
transaction may carry the smaller of a block's gas limit and the per-transaction cap
(``chain.tx_gas_cap``, EIP-7825's 16,777,216 by default). The gas of
each step grows linearly with the members; the coefficients below were measured by
``benchmarks/bench_gas_scale.py`` (every member bids and reads, docs/ledger.md has the
table) and are applied with the ledger's estimate margin
(:func:`~gridledger.ledger.txqueue.gas_limit`). A market whose predicted step does not fit
is refused by name (:class:`ChainCapacityExceeded`) with the largest member count that
fits. The prediction is a typical market's, not a bound: the transactions' gas still
comes from ``eth_estimateGas`` when they are sent, and a step that turns out larger than a
block stops the run by name (:class:`~gridledger.ledger.txqueue.StepTooLarge`) before
anything of it is sent.

An interval also spans blocks: its opening, each round's deadline (``round_blocks``), the
meters' window (``reading_blocks``) and the blocks its steps fill. The binding round's
locks are released by settlement or, ``settle_blocks`` after its first page, by anyone's
expiry, so the binding round's later pages and the steps after it must fit in
``settle_blocks``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from gridledger.errors import ChainError
from gridledger.ledger.deploy import ChainTiming, NetworkCommitment
from gridledger.ledger.shards import MAX_SHARD_BYTES
from gridledger.ledger.txqueue import gas_limit
from gridledger.market.path_fees import PathFees

__all__ = [
    "STEP_GAS",
    "ChainCapacityExceeded",
    "StepGas",
    "check_capacity",
    "check_setup",
    "data_bytes",
    "load_gas",
    "max_members",
    "pair_gas",
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
    # a page of one bid / one reading (the whole list resubmitted and hashed, one entry
    # checked; measured 3,102 and 3,064 per member at 100-300 members on anvil)
    "recordRound/page": StepGas("record a page of one bid", 80_000, 3_300),
    "recordReadings/page": StepGas("record a page of one reading", 60_000, 3_300),
    "clear/uniform": StepGas("clear (uniform)", 60_000, 2_800),
    "clear/greedy": StepGas("clear (greedy)", 120_000, 11_000),
    # the costliest page of one entry (the queues built, every earlier trade replayed
    # without its scans, then the last trade or the last seller's final check; measured
    # 0.43M, 1.18M, 3.53M and 11.01M gas at 100, 300, 1,000 and 3,000 members,
    # benchmarks/bench_gas_scale.py)
    "clear/greedy/page": StepGas(
        "verify a page of one entry of the greedy clearing", 120_000, 4_000
    ),
    # the whole check (trades, bids, final) in one transaction: 1.06M, 2.83M, 8.06M and
    # 25.66M gas at 100, 300, 1,000 and 3,000 members
    "clear/optimal": StepGas("clear (optimal)", 220_000, 8_600),
    # the costliest page of one entry: the final check (dual feasibility on the claimed bus
    # bounds, every trade's parties and welfare, the pairing order); a page of one trade or
    # of one bid (every trade's hint walked for its fill) costs less; measured 0.58M,
    # 1.29M, 3.31M and 10.60M gas at 100, 300, 1,000 and 3,000 members,
    # benchmarks/bench_gas_scale.py)
    "clear/optimal/page": StepGas(
        "verify a page of one entry of the optimal clearing", 240_000, 3_600
    ),
    # a congested verdict: an lp verdict over 450 trades with 30 violated rows costs 1.96M
    # gas (benchmarks/bench_network_tree.py), 1,900 per member of a 1,000-member market
    "recordSecurity": StepGas("record the security verdict", 60_000, 2_000),
    # a page of one entry of a congested verdict: the verdict resubmitted, signed and hashed,
    # every curtailment checked, one margin row (or trade term, or the final entry): the
    # verifier's page of the 450-trade, 30-row lp verdict above 0.52M gas
    # (benchmarks/bench_network_tree.py), the Market's part as a secure verdict's (514 per
    # member, benchmarks/bench_gas_scale.py)
    "recordSecurity/page": StepGas(
        "record a page of one entry of the security verdict", 60_000, 1_100
    ),
    "recordReadings": StepGas("record the readings", 60_000, 10_200),
    "settle": StepGas("settle", 100_000, 16_000),
    # a settlement page of one entry (the whole lists resubmitted and hashed, every trade
    # walked for its parties' positions, one reading checked or booked; measured 0.24M,
    # 0.56M, 1.52M and 4.88M gas at 100, 300, 1,000 and 3,000 members,
    # benchmarks/bench_gas_scale.py)
    "settle/page": StepGas("settle a page of one entry", 100_000, 1_700),
}

#: The steps of an interval under each clearing rule, in order.
_INTERVAL_STEPS = ("recordRound", "clear/{rule}", "recordSecurity", "recordReadings", "settle")
#: The paged steps and their pages (a page of one entry); the other steps must fit one
#: transaction whole.
_PAGED = {
    "recordRound": "recordRound/page",
    "clear/greedy": "clear/greedy/page",
    "clear/optimal": "clear/optimal/page",
    "recordSecurity": "recordSecurity/page",
    "recordReadings": "recordReadings/page",
    "settle": "settle/page",
}


#: Memory words the fee and curtailment verifiers hold per member besides the committed data
#: (bench_data_shards: a 600-bus table costs 0.68M gas more with 200 bids than its own
#: memory, the cross term of EVM memory's quadratic price).
_MEMORY_WORDS_PER_MEMBER = 20


def load_gas(n_bytes: int, members: int = 0) -> int:
    """Gas of reading ``n_bytes`` of committed data (a fee table or network) into the
    verifier's memory once: the copy and the memory (3 gas per word each, plus words**2 /
    512), the cross term with the ``members``' own memory, and 2,600 per cold shard."""
    if n_bytes <= 0:
        return 0
    words = -(-n_bytes // 32)
    shards = 1 if n_bytes <= MAX_SHARD_BYTES else 1 + -(-n_bytes // MAX_SHARD_BYTES)
    cross = 2 * words * _MEMORY_WORDS_PER_MEMBER * members // 512
    return 6 * words + words * words // 512 + cross + 2_600 * shards


def data_bytes(
    fees: npt.ArrayLike | PathFees | None, network: NetworkCommitment | None
) -> dict[str, int]:
    """Bytes of committed data each step reads: the fee table (4 B**2) for clearing, the
    network for the security verdict (steps without data read nothing). Fees in path form
    count their data and the greedy verifier's state, 4 words and a fee row per bus."""
    if isinstance(fees, PathFees):
        layout = fees.layout
        b, e = fees.n_buses, int(layout.level.shape[0])
        path = 64 + 4 * (b + e.bit_length() * e + b * int(layout.portals.shape[0]))
        fee = path + 132 * b
    else:
        n_buses = 0 if fees is None else int(np.shape(fees)[0])
        fee = 4 * n_buses * n_buses
    net = 0 if network is None else len(network.table)
    return {
        "clear/greedy": fee,
        "clear/greedy/page": fee,
        "clear/optimal": fee,
        "clear/optimal/page": fee,
        "recordSecurity": net,
        "recordSecurity/page": net,
    }


#: Fees in path form: the greedy verifier computes each fee it compares (about 270 EVM
#: instructions, against 40 for a table read), and it compares a leaving head with every active
#: bus of the other side, so its gas grows with the members squared. Gas per member**2 and per
#: portal per member**2, fitted from above to benchmarks/bench_data_shards.py (200 bids on a
#: 5,000-bus feeder with 4 portals: 17.3M gas measured, 18.8M predicted). A page of one
#: entry of a paged greedy clearing computes a fee per replayed trade and one row (a trade's
#: scan or a seller's final check): about 900 gas per member more than with a table, counted
#: as PATH_PAGE_PAIR_GAS per member**2 (the 5,000-bus feeder: 3.66M and 7.10M gas measured
#: at 300 and 1,000 bids, 4.8M and 8.6M predicted).
PATH_PAIR_GAS = 280
PATH_PORTAL_PAIR_GAS = 10
PATH_PAGE_PAIR_GAS = 1


def pair_gas(fees: npt.ArrayLike | PathFees | None) -> dict[str, int]:
    """Gas per member**2 of the steps that compute fees in path form (none for a table)."""
    if not isinstance(fees, PathFees):
        return {}
    portals = int(fees.layout.portals.shape[0])
    whole = PATH_PAIR_GAS + PATH_PORTAL_PAIR_GAS * portals
    return {"clear/greedy": whole, "clear/greedy/page": PATH_PAGE_PAIR_GAS}


def check_setup(
    members: int,
    rule: str,
    limits: tuple[int, ChainTiming | None, int | None],
    fees: npt.ArrayLike | PathFees | None,
    network: NetworkCommitment | None,
) -> None:
    """:func:`check_capacity` of a setup: ``limits`` are the block's gas limit, the timing
    and the per-transaction cap; the committed data and pair gas come from ``fees`` and
    ``network``."""
    block, timing, tx_gas = limits
    data = data_bytes(fees, network)
    check_capacity(members, rule, block, timing, tx_gas, data=data, pairs=pair_gas(fees))


def _pages(step: str, members: int, tx_gas: int) -> int:
    """Transactions a paged step takes (1 for a step that is never paged)."""
    if step not in _PAGED:
        return 1
    return max(1, -(-predicted_gas(step, members) // tx_gas))


def _paged_gas(step: str, members: int, tx_gas: int, data: int = 0) -> int:
    """Gas of a step with its pages: the whole step's, and a page of one entry's for each
    page after the first (each page resubmits the whole list)."""
    extra = _pages(step, members, tx_gas) - 1
    page = predicted_gas(_PAGED[step], members) if extra else 0
    return predicted_gas(step, members, data) + extra * page


def predicted_gas(step: str, members: int, data: int = 0, pairs: int = 0) -> int:
    """The gas limit the ledger would give ``step`` with ``members`` members (its
    predicted gas plus the estimate margin), reading ``data`` bytes of committed data and
    spending ``pairs`` gas per member**2 on fees in path form (:func:`pair_gas`)."""
    model = STEP_GAS[step]
    linear = model.base + model.per_member * members
    return gas_limit(linear + load_gas(data, members) + pairs * members * members)


def max_members(step: str, tx_gas: int, data: int = 0, pairs: int = 0) -> int:
    """The most members whose ``step`` fits one transaction of at most ``tx_gas``."""
    model = STEP_GAS[step]
    low, high = 0, tx_gas // max(model.per_member, 1) + 1
    while low < high:
        mid = (low + high + 1) // 2
        if predicted_gas(step, mid, data, pairs) <= tx_gas:
            low = mid
        else:
            high = mid - 1
    return low


def check_capacity(
    members: int,
    rule: str,
    block_gas_limit: int,
    timing: ChainTiming | None = None,
    tx_gas: int | None = None,
    *,
    data: dict[str, int] | None = None,
    pairs: dict[str, int] | None = None,
) -> None:
    """Refuse, by name and before anything is deployed, a market of ``members`` members
    cleared by ``rule`` whose interval steps would not fit the chain's transactions, blocks
    or deadlines (``tx_gas``: the most one transaction may carry, the block's limit when
    None; ``data``: the committed bytes each step reads, :func:`data_bytes`; ``pairs``: gas
    per member**2 of fees in path form, :func:`pair_gas`)."""
    data = data or {}
    pairs = pairs or {}
    one_tx = block_gas_limit if tx_gas is None else min(tx_gas, block_gas_limit)
    limit = (
        f"more than a block holds on this chain ({block_gas_limit:,})"
        if one_tx == block_gas_limit
        else f"more than one transaction may carry ({one_tx:,}, chain.tx_gas_cap)"
    )
    steps = [s.format(rule=rule) for s in _INTERVAL_STEPS]
    single = [_PAGED.get(s, s) for s in steps]
    if any(step not in STEP_GAS for step in steps):
        return  # an unknown rule: the deployment refuses it by name
    for step in single:
        need = predicted_gas(step, members, data.get(step, 0), pairs.get(step, 0))
        if need > one_tx:
            fits = min(max_members(s, one_tx, data.get(s, 0), pairs.get(s, 0)) for s in single)
            read = data.get(step, 0)
            why = [f"it reads {read:,} bytes of shards"] if read > MAX_SHARD_BYTES else []
            if pairs.get(step):
                why.append("it computes every fee it compares from the fees' path form")
            reading = f" ({'; '.join(why)})" if why else ""
            message = (
                f"{members:,} members: one transaction to {STEP_GAS[step].name} would need "
                f"about {need:,} gas{reading}, {limit}; at most {fits:,} members fit (the "
                "uniform clearing is one transaction; the other steps are paged, but a page of "
                "one entry resubmits the whole list), or use a chain with larger transactions"
            )
            raise ChainCapacityExceeded(message)
    timing = timing or ChainTiming()
    block = block_gas_limit
    after_binding = sum(
        _paged_gas(s, members, one_tx, data.get(s, 0)) + pairs.get(s, 0) * members * members
        for s in steps[1:]
    )
    # the binding round's later pages (a block each), then the steps packed by gas
    step_blocks = _pages("recordRound", members, one_tx) - 1 + -(-after_binding // block)
    needed = step_blocks + timing.reading_blocks
    if needed > timing.settle_blocks:
        message = (
            f"{members:,} members: after the binding round an interval needs about {needed} "
            f"blocks (its steps fill {step_blocks}, the meters' window is "
            f"{timing.reading_blocks}), more than settle_blocks = {timing.settle_blocks}: "
            "anyone could expire it before it is settled"
        )
        raise ChainCapacityExceeded(message)
