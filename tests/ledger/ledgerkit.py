"""Helpers of the ledger tests: a funded embedded market and raw-transaction probes.

Every party of the market can send its own transactions here: the operator (through the
ledger's queue), each member's account and meter, the GRID account and an outsider, all
funded at genesis. Deadlines are short (:data:`TIMING`) so that tests pass them by sealing
a few blocks (:meth:`Market.seal`).
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from eth_utils import to_checksum_address
from hypothesis import strategies as st
from tests.conftest import bid_rows

from gridledger.cli import main
from gridledger.errors import ChainError
from gridledger.ledger import EmbeddedBackend, Ledger, LedgerMember
from gridledger.ledger import encoding as enc
from gridledger.ledger.backends import TxResult
from gridledger.ledger.contracts import decode_error
from gridledger.ledger.deploy import ChainTiming, NetworkCommitment, create_address
from gridledger.ledger.keys import KeyRing
from gridledger.ledger.network_data import pack_network
from gridledger.market import Bid, Side, Tariffs, Trade, settle
from gridledger.market.justification import RULE_IDS, LinearNetwork
from gridledger.market.orders import Curtailment, apply_curtailments
from gridledger.security.justification import Justified, justify

TARIFFS = Tariffs(retail_per_kwh_micro=300_000, feed_in_per_kwh_micro=80_000)
#: Settlement tests' tariffs: a tolerance band of 5 %.
BAND_TARIFFS = Tariffs(retail_per_kwh_micro=300_000, feed_in_per_kwh_micro=80_000, tolerance_bp=500)


def band_bus(member: int) -> int:
    """Settlement tests' buses: members on buses 1-4."""
    return member % 4 + 1


def band_rows(n: int) -> st.SearchStrategy[list[tuple[int, Side, int, int]]]:
    """One round of ``n`` members' bids for the settlement tests (prices up to retail)."""
    return bid_rows(
        n,
        e_wh=st.integers(1, 4_000),
        price_per_kwh_micro=st.integers(60_000, BAND_TARIFFS.retail_per_kwh_micro),
    )


N_MEMBERS = 12
ROUNDS = 2
DEPOSIT = 10**9
LIMIT_WH = 1_000_000
SEED = b"tests-seed"
TIMING = ChainTiming(round_blocks=2, reading_blocks=2, settle_blocks=6)
ZERO_SIG = bytes(32)
ZERO_ADDRESS = "0x" + "00" * 20


def bus_of(member: int) -> int:
    return member % 5 + 1


def bids_of(rows: Sequence[tuple[int, Side, int, int]]) -> list[Bid]:
    """Bids from (member, side, Wh, price micro/kWh) rows, each at its member's bus."""
    return [Bid(m, side, e, p, bus_of(m)) for m, side, e, p in rows]


def lock_of(bid: Bid, tariffs: Tariffs = TARIFFS) -> int:
    """The escrow a binding bid locks (Market._lockBinding): a buyer its payment, a seller
    its worst-case shortfall penalty."""
    if bid.side == Side.BUY:
        return bid.e_wh * bid.price_per_kwh_micro // 1000
    shortfall = bid.e_wh * (tariffs.retail_per_kwh_micro - bid.price_per_kwh_micro)
    return -(-shortfall // 1000) + 1


def _feeder_relief() -> np.ndarray:
    """Relief (npct per Wh cut) of a radial feeder 0-1-2-3-4-5 (slack at bus 0): bus row
    r (bus r + 1 upper voltage) gains more from cuts further out; line row k (bus k to
    k + 1) from every cut beyond it."""
    buses = range(FEEDER_BUSES)
    bus_rows = [[100 * min(r + 1, b) for b in buses] for r in range(FEEDER_BUSES - 1)]
    line_rows = [[50 if b > k else 0 for b in buses] for k in range(FEEDER_BUSES - 1)]
    return np.array(bus_rows + line_rows, dtype=np.int64)


FEEDER_BUSES = 6  # members sit at buses 1..5 (bus_of)
FEEDER = LinearNetwork(
    n_buses=FEEDER_BUSES,
    n_bus_rows=FEEDER_BUSES - 1,
    n_line_rows=FEEDER_BUSES - 1,
    n_trafo_rows=0,
    interval_s=900,
    relief=_feeder_relief(),
)
FEEDER_COMMITMENT = NetworkCommitment(RULE_IDS["greedy"], pack_network(FEEDER))
# The DSO's AC margins (npct) of the feeder's rows: mostly fine, some violated.
margins_npct = st.lists(
    st.one_of(st.integers(1, 10**6), st.integers(-400_000, -1)),
    min_size=FEEDER.n_rows,
    max_size=FEEDER.n_rows,
)


def justified(trades: Sequence[Trade], margin_npct: Sequence[int]) -> Justified:
    """The curtailments the DSO justifies on :data:`FEEDER` for ``margin_npct``."""
    zeros = np.zeros(FEEDER.n_rows, dtype=np.int64)
    return justify("greedy", FEEDER, list(trades), np.array(margin_npct, dtype=np.int64), zeros)


def deliver_and_settle(
    ledger: Ledger,
    interval: int,
    trades: Sequence[Trade],
    readings: Sequence[int],
    margin_npct: Sequence[int] | None = None,
    tariffs: Tariffs = TARIFFS,
) -> None:
    """After the clearing: record the DSO's verdict (with ``margin_npct``, the curtailments
    justified on :data:`FEEDER`, which the market must have committed) and the meter
    ``readings`` (one per member), settle, and check the chain against
    market/settlement.py to the unit and money conservation (deposits - withdrawals =
    balances = tokens held)."""
    curtailments: tuple[Curtailment, ...] = ()
    if margin_npct is None:
        ledger.record_security(interval, [])
    else:
        j = justified(trades, margin_npct)
        curtailments = j.curtailments
        ledger.record_security(
            interval, curtailments, j.margins, j.certificate, unresolved=bool(j.unresolvable)
        )
    metered = dict(enumerate(readings))
    ledger.record_readings(interval, metered)
    expected = settle(apply_curtailments(trades, curtailments), metered, tariffs).deltas()
    assert ledger.settle(interval) == expected
    ledger.end_interval(interval)
    assert ledger.conserved()
    assert ledger.view("solvent")[0]
    # balances() holds the members', the GRID's and the OPERATOR's accounts.
    assert (
        sum(ledger.balances().values())
        == ledger.view("totalDepositedMicro")[0] - ledger.view("totalWithdrawnMicro")[0]
    )


@dataclass
class Market:
    """A deployed market and the keys of every party (see the module docstring)."""

    ledger: Ledger
    outsider_key: bytes
    outsider: bytes
    next_interval: int = 0
    seed: bytes = SEED

    # ------------------------------------------------------------- parties
    @property
    def dso_key(self) -> bytes:
        return enc.derive_key(self.seed, "dso")

    @property
    def grid_key(self) -> bytes:
        return enc.derive_key(self.seed, "grid")

    def member_key(self, member: int) -> bytes:
        return self.ledger.member_key(member)

    def meter_key(self, member: int) -> bytes:
        return self.ledger.keys.meter_key(member)

    @property
    def member_ids(self) -> list[int]:
        return sorted(self.ledger.members)

    def take_interval(self) -> int:
        self.next_interval += 1
        return self.next_interval - 1

    # -------------------------------------------------------- transactions
    def send_raw(
        self, to: bytes, data: bytes, key: bytes | None = None, gas: int = 3_000_000
    ) -> str | None:
        """Send one transaction; the revert's error name, or None when it succeeded."""
        ledger = self.ledger
        ledger.txq.flush()
        if key is None:
            raw = ledger.txq.sign(to, data, gas)
        else:
            nonce = ledger.backend.nonce(enc.address_of(key))
            raw = ledger.txq.sign(to, data, gas, key=key, nonce=nonce)
        result = self._send(raw)
        if result.status:
            return None
        return decode_error(result.revert_data).split("(")[0]

    def _send(self, raw: bytes) -> TxResult:
        """Send ``raw``; when the open block has no gas left for it, seal and send again."""
        try:
            (result,) = self.ledger.backend.send([raw])
        except ChainError as error:
            if "exceeds gas limit" not in str(error):
                raise
            self.seal()
            (result,) = self.ledger.backend.send([raw])
        return result

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

    def revert_of(self, function: str, *args: object) -> str | None:
        """The error of a read-only call (None when it returns)."""
        try:
            self.ledger.view(function, *args)
        except Exception as error:  # ChainError naming the decoded revert
            return str(error)
        return None

    # --------------------------------------------------------------- blocks
    def seal(self, blocks: int = 1) -> None:
        for _ in range(blocks):
            self.ledger.txq.seal_block()

    def block(self) -> int:
        """The number of the block the next transaction runs in."""
        return self.ledger.backend.block_number() + 1

    def state(self, interval: int) -> tuple:
        return self.ledger.view("intervalState", interval)[0]

    def phase(self, interval: int) -> int:
        return int(self.state(interval)[0])

    def seal_until(self, block: int) -> None:
        """Seal until the next transaction runs in ``block`` or later."""
        while self.block() < block:
            self.seal()

    def expire(self, interval: int) -> None:
        """Void ``interval`` (pending, unsettled) once its settle deadline has passed."""
        self.seal_until(int(self.state(interval)[7]) + 1)
        assert self.market_call("expireInterval", interval, key=self.outsider_key) is None
        self.ledger._cache.pop(interval, None)

    def release(self) -> None:
        """Expire the pending interval, if any, so that the next binding round can lock."""
        if self.ledger.view("hasPendingInterval")[0]:
            self.expire(int(self.ledger.view("pendingInterval")[0]))

    # -------------------------------------------------------------- signing
    @property
    def domain(self) -> bytes:
        return self.ledger.keys.domain

    def signed_bids(
        self,
        interval: int,
        round_: int,
        bids: Sequence[Bid],
        keys: Mapping[int, bytes] | None = None,
    ) -> tuple[list[int], list[bytes]]:
        """Bid words and compact signatures, in the given order, each signed by its member's
        account (or ``keys[member]``)."""
        words: list[int] = []
        sigs: list[bytes] = []
        for bid in bids:
            word = enc.pack_bid(bid)
            key = (keys or {}).get(bid.member) or self.member_key(bid.member)
            r, vs = enc.sign_compact(key, enc.bid_digest(self.domain, interval, round_, word))
            words.append(word)
            sigs += [r, vs]
        return words, sigs

    def signed_readings(
        self,
        interval: int,
        values: Mapping[int, int],
        keys: Mapping[int, bytes] | None = None,
    ) -> tuple[list[int], list[bytes]]:
        """Reading words (by member) and compact signatures by each member's meter (or
        ``keys[member]``)."""
        words: list[int] = []
        sigs: list[bytes] = []
        for member in sorted(values):
            word = enc.pack_reading(member, values[member])
            key = (keys or {}).get(member) or self.meter_key(member)
            r, vs = enc.sign_compact(key, enc.reading_digest(self.domain, interval, word))
            words.append(word)
            sigs += [r, vs]
        return words, sigs

    def verdict_sig(
        self,
        interval: int,
        trades: Sequence[int],
        verdict: int,
        evidence: tuple[Sequence[int], Sequence[int], Sequence[int]] = ((), (), ()),
        key: bytes | None = None,
    ) -> list[bytes]:
        """The DSO's (or ``key``'s) compact signature of a security verdict."""
        digest = enc.verdict_digest(self.domain, interval, trades, verdict, evidence)
        return list(enc.sign_compact(key or self.dso_key, digest))

    def security_proof(
        self,
        interval: int,
        trades: Sequence[int],
        verdict: int = 0,
        curtailments: Sequence[int] = (),
        key: bytes | None = None,
    ) -> tuple[list[int], list[int], list[int], list[bytes]]:
        """The Evidence tuple of recordSecurity (no margins, no certificate)."""
        sig = self.verdict_sig(interval, trades, verdict, (curtailments, (), ()), key)
        return (list(curtailments), [], [], sig)

    # --------------------------------------------------------------- escrow
    def deposit(self, member: int, amount_micro: int) -> None:
        """Mint ``amount_micro`` to the operator and deposit it into ``member``'s escrow."""
        ledger = self.ledger
        op = to_checksum_address(ledger.operator)
        market = to_checksum_address(ledger.market or b"")
        assert self.token_call("mint", op, amount_micro) is None
        assert self.token_call("approve", market, amount_micro) is None
        assert self.market_call("deposit", member, amount_micro) is None

    def deposit_grid(self, amount_micro: int) -> None:
        ledger = self.ledger
        op = to_checksum_address(ledger.operator)
        market = to_checksum_address(ledger.market or b"")
        assert self.token_call("mint", op, amount_micro) is None
        assert self.token_call("approve", market, amount_micro) is None
        assert self.market_call("depositGrid", amount_micro) is None

    def top_up(self, bids: Sequence[Bid]) -> None:
        """Deposit what each bidder needs so that its binding bid's lock fits its balance."""
        tariffs = self.ledger._deployed().tariffs
        for bid in bids:
            free = int(self.ledger.view("freeMicro", bid.member)[0])
            need = lock_of(bid, tariffs)
            if free < need:
                self.deposit(bid.member, need - free)

    def reserve_up(self) -> None:
        """Fund the GRID account so that grid + operator covers member debt twice over."""
        v = self.ledger.view
        backing = v("gridBalanceMicro")[0] + v("operatorBalanceMicro")[0]
        debt = v("memberDebtMicro")[0]
        if backing < 2 * debt + DEPOSIT:
            self.deposit_grid(2 * debt + DEPOSIT - backing)


def market_keys(seed: bytes, member_ids: Sequence[int]) -> KeyRing:
    return KeyRing.from_seed(seed, member_ids=member_ids)


def make_market(
    n_members: int = N_MEMBERS,
    rounds: int = ROUNDS,
    *,
    clearing: str = "uniform",
    fees: np.ndarray | None = None,
    kappa: Fraction = Fraction(1, 2),
    tariffs: Tariffs = TARIFFS,
    deposit: int = DEPOSIT,
    grid_deposit: int | None = None,
    limit_wh: int = LIMIT_WH,
    timing: ChainTiming = TIMING,
    seed: bytes = SEED,
    bus: object = bus_of,
    network: NetworkCommitment | None = None,
) -> Market:
    """Deploy a market of ``n_members`` on a new embedded chain; every party (operator,
    members' accounts and meters, GRID, an outsider) is funded to send transactions."""
    outsider_key = enc.derive_key(b"tests", "outsider")
    outsider = enc.address_of(outsider_key)
    bus_fn = bus_of if not callable(bus) else bus
    members = [LedgerMember(i, bus_fn(i), i % 3, limit_wh) for i in range(n_members)]
    ring = market_keys(seed, [m.id for m in members])
    dso = enc.address_of(enc.derive_key(seed, "dso"))  # sends only in adversarial tests
    backend = EmbeddedBackend(funded=[*ring.addresses(), dso, outsider])
    ledger = Ledger(backend, "embedded", None, keys=ring)
    ledger.setup(
        members,
        tariffs,
        rounds,
        deposit,
        grid_deposit,
        clearing=clearing,
        fees=fees,
        kappa=kappa,
        timing=timing,
        network=network,
    )
    return Market(ledger, outsider_key, outsider, seed=seed)


CONFIG_FIELDS = (
    "operator",
    "dso",
    "grid",
    "token",
    "feeVerifier",
    "uniformClearing",
    "calculator",
    "curtailmentVerifier",
    "rounds",
    "rule",
    "toleranceBp",
    "retailPerKwhMicro",
    "feedInPerKwhMicro",
    "roundBlocks",
    "readingBlocks",
    "settleBlocks",
)


def market_config(market: Market, **changes: object) -> tuple:
    """The Market constructor's Config of ``market``'s deployment with ``changes``."""
    d = market.ledger._deployed()
    uniform = d.clearing.rule == "uniform"
    h = d.helpers
    zero = bytes(20)
    values: dict[str, object] = {
        "operator": market.ledger.operator,
        "dso": d.dso,
        "grid": d.grid,
        "token": d.token,
        "feeVerifier": zero if uniform else h.clearing,
        "uniformClearing": h.clearing if uniform else zero,
        "calculator": h.calculator,
        "curtailmentVerifier": h.curtailments,
        "rounds": d.rounds,
        "rule": {"uniform": 0, "greedy": 1, "optimal": 2}[d.clearing.rule],
        "toleranceBp": d.tariffs.tolerance_bp,
        "retailPerKwhMicro": d.tariffs.retail_per_kwh_micro,
        "feedInPerKwhMicro": d.tariffs.feed_in_per_kwh_micro,
        "roundBlocks": d.timing.round_blocks,
        "readingBlocks": d.timing.reading_blocks,
        "settleBlocks": d.timing.settle_blocks,
    }
    values.update(changes)
    return tuple(
        to_checksum_address(v) if isinstance(v, bytes) else v
        for v in (values[k] for k in CONFIG_FIELDS)
    )


def deploy_market(market: Market, **changes: object) -> tuple[str | None, bytes]:
    """Deploy another Market with ``market``'s Config and ``changes`` (as the operator):
    the constructor's error name (None: deployed) and the new contract's address."""
    ledger = market.ledger
    ledger.txq.flush()
    nonce = ledger.txq.nonce
    raw = ledger.txq.sign(
        None,
        ledger.market_abi.deploy_data(
            market_config(market, **changes), library=ledger._deployed().helpers.entries
        ),
        9_000_000,
    )
    res = market._send(raw)
    error = None if res.status else decode_error(res.revert_data).split("(")[0]
    return error, create_address(ledger.operator, nonce)


def tx_gas_by_block(backend: EmbeddedBackend) -> list[list[tuple[int, int]]]:
    """(gas limit, gas used) of every transaction, per sealed block."""
    chain = backend.chain
    head = int(chain.get_canonical_head().block_number)
    out = []
    for number in range(1, head + 1):
        block = chain.get_canonical_block_by_number(number)
        receipts = block.get_receipts(chain.chaindb)
        used, before = [], 0
        for receipt in receipts:
            used.append(int(receipt.gas_used) - before)
            before = int(receipt.gas_used)
        out.append([(int(tx.gas), u) for tx, u in zip(block.transactions, used, strict=True)])
    return out


#: Skip a test without the optional simbench extra.
needs_simbench = pytest.mark.skipif(
    importlib.util.find_spec("simbench") is None,
    reason="needs the optional simbench extra: pip install -e '.[simbench]'",
)


def run_cli(scenario: str, out: Path, sets: Mapping[str, str]) -> dict[str, Any]:
    """``gridledger run scenario --out out -q --set key=value ...`` on the embedded chain:
    its summary, after checking that the chain matched the reference and audited clean."""
    args = [arg for key, value in sets.items() for arg in ("--set", f"{key}={value}")]
    assert main(["run", scenario, "--out", str(out), "-q", *args]) == 0
    summary: dict[str, Any] = json.loads((out / "summary.json").read_text())
    assert summary["onchain_matches_reference"] is True and summary["audit_findings"] == 0
    return summary
