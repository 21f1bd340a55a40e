"""The ``Ledger`` facade: the simulation's one entry point to the chain.

One ``Ledger`` drives one market deployment on one backend. Per interval the
simulation calls, in order: :meth:`Ledger.record_round` (once per round),
:meth:`Ledger.clear`, :meth:`Ledger.record_security`, :meth:`Ledger.record_readings`,
:meth:`Ledger.settle`, :meth:`Ledger.end_interval`. That is ``rounds + 4``
transactions per interval, all sent by the operator (the aggregator) with
explicit nonces and gas limits.

Persistence (``state_dir``): ``ledger.json`` holds the deployment (addresses,
chain id, seed, members, tariffs); ``txlog.jsonl`` holds every signed raw
transaction, one line per setup or interval, appended and fsynced after the
interval's block is sealed. The embedded chain is rebuilt on
:meth:`Ledger.connect` by replaying the log (py-evm is deterministic: same
transactions, same state, same contract addresses; gas per transaction is
checked against the log). A run killed mid-interval loses only that unfinished
interval, which is not on the chain either, so it resumes at
:meth:`last_settled_interval` ``+ 1`` with nothing lost or duplicated.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from eth_utils import keccak, to_checksum_address

from gridledger.errors import ChainError
from gridledger.ledger import encoding as enc
from gridledger.ledger.backends import (
    Backend,
    CallReverted,
    EmbeddedBackend,
    LogEntry,
    RpcBackend,
    TxResult,
)
from gridledger.ledger.contracts import DecodedEvent, artifact, decode_error
from gridledger.ledger.fee_clearing import (
    dual_words,
    greedy_order,
    kappa_args,
    optimal_parties,
    pack_fee_table,
)
from gridledger.market.double_auction import sorted_books
from gridledger.market.greedy import clear_greedy
from gridledger.market.optimal import solve_optimal
from gridledger.market.orders import Bid, ClearingResult, Curtailment, Trade, validate_bids
from gridledger.market.settlement import GRID, OPERATOR, Tariffs

__all__ = [
    "CLEARING_RULE_IDS",
    "DEFAULT_SEED",
    "ROLE_CODES",
    "ChainStats",
    "Ledger",
    "LedgerMember",
    "members_for_ledger",
]

log = logging.getLogger(__name__)

DEFAULT_SEED = b"gridledger-simulation-only"
CLEARING_RULE_IDS: dict[str, int] = {"uniform": 0, "greedy": 1, "optimal": 2}
MAX_FEE_TABLE_BYTES = 24_575  # one data contract (EIP-170 code size limit - 1)
ROLE_CODES: dict[str, int] = {"consumer": 0, "producer": 1, "prosumer": 2}
LEDGER_FILE = "ledger.json"
TXLOG_FILE = "txlog.jsonl"
MAX_FEE_WEI = 100 * 10**9
REGISTER_CHUNK = 64

# Gas limits: measured cost (docs/ledger.md) times about 1.5, explicit on every transaction.
GAS_DEPLOY_TOKEN = 1_500_000
GAS_DEPLOY_MARKET = 7_000_000
GAS_DEPLOY_MARKET_FEE_RULE = 9_000_000  # the constructor also deploys the FeeClearingVerifier


def _gas_round(n: int) -> int:
    return 90_000 + 14_000 * n


def _gas_clear(n: int) -> int:
    return 120_000 + 9_000 * n


def _gas_fee_clear(n_bids: int, n_trades: int) -> int:
    return 250_000 + 12_000 * n_bids + 14_000 * n_trades


def _gas_configure(table_bytes: int) -> int:
    return 250_000 + 260 * table_bytes


def _gas_security(n_trades: int, n_curt: int) -> int:
    return 90_000 + 2_000 * n_trades + 8_000 * n_curt


def _gas_readings(n: int) -> int:
    return 100_000 + 14_000 * n


def _gas_settle(n_members: int, n_trades: int) -> int:
    return 150_000 + 16_000 * n_members + 6_000 * n_trades


@dataclass(frozen=True, slots=True)
class LedgerMember:
    """A member as the chain sees it: id, bus, role code (:data:`ROLE_CODES`)."""

    id: int
    bus: int
    role: int


def members_for_ledger(members: Sequence[Any]) -> list[LedgerMember]:
    """Map member objects with ``id``, ``bus``, ``role`` (str or enum) to ledger members."""
    out = []
    for m in members:
        role = str(getattr(m.role, "value", m.role))
        if role not in ROLE_CODES:
            message = f"member {m.id}: role {role!r} not in {sorted(ROLE_CODES)}"
            raise ChainError(message)
        out.append(LedgerMember(int(m.id), int(m.bus), ROLE_CODES[role]))
    return out


@dataclass(slots=True)
class ChainStats:
    """Transaction and gas counters of the chain's run (restored from the log on resume)."""

    tx_count: int = 0
    gas_total: int = 0
    bids_recorded: int = 0
    gas_bid_txs: int = 0
    gas_per_interval_max: int = 0
    intervals: int = 0
    wall_s: float = 0.0
    gas_by_step: dict[str, int] = field(default_factory=dict)

    @property
    def gas_per_bid(self) -> float:
        """Gas of the round transactions (21,000 base included) per recorded bid."""
        return self.gas_bid_txs / self.bids_recorded if self.bids_recorded else 0.0

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["gas_per_bid"] = round(self.gas_per_bid, 1)
        return out


@dataclass(frozen=True, slots=True)
class _ChainInterval:
    """``Market.intervalState`` of one interval (phase codes of ``Market.Phase``)."""

    phase: int
    rounds_recorded: int
    readings_recorded: bool
    bids_hash: bytes
    trades_hash: bytes
    delivery_hash: bytes
    readings_hash: bytes


PHASE_SECURITY = 2
PHASE_DELIVERY = 3
PHASE_SETTLED = 4


@dataclass(slots=True)
class _IntervalCache:
    bids: list[int] = field(default_factory=list)
    trades: tuple[Trade, ...] = ()
    delivery: tuple[Trade, ...] = ()
    readings: list[int] = field(default_factory=list)
    gas: int = 0


class Ledger:
    """Facade over the contracts on one backend (see the module docstring)."""

    def __init__(
        self,
        backend: Backend,
        chain: str,
        state_dir: Path | None,
        seed: bytes = DEFAULT_SEED,
        read_only: bool = False,
    ) -> None:
        self.backend = backend
        self.chain = chain
        self.state_dir = state_dir
        self.seed = seed
        self.read_only = read_only
        self.operator_key = enc.derive_key(seed, "operator")
        self.operator = enc.address_of(self.operator_key)
        self.market_abi = artifact("Market")
        self.token_abi = artifact("SettlementToken")
        self.token: bytes | None = None
        self.market: bytes | None = None
        self.members: dict[int, LedgerMember] = {}
        self.tariffs: Tariffs | None = None
        self.rounds = 0
        self.clearing = "uniform"
        self.fees: npt.NDArray[np.int64] | None = None
        self.kappa = Fraction(1, 2)
        self.mismatches: list[tuple[str, int]] = []
        self._nonce = 0
        self._domain = b""
        self._member_keys: dict[int, bytes] = {}
        self._meter_keys: dict[int, bytes] = {}
        self._cache: dict[int, _IntervalCache] = {}
        self._txlog: list[tuple[bytes, int]] = []
        self._pending: list[tuple[str, bytes, int | None]] = []
        self._recent: list[TxResult] = []
        self._stats = ChainStats()
        # After reattaching to a node, the first interval may be partly on chain already
        # (killed between the clear and the settle flush): its recorded steps are skipped.
        self._resume_check = False
        self._resume_states: dict[int, _ChainInterval] = {}

    # ------------------------------------------------------------ connect
    @classmethod
    def connect(
        cls,
        chain: str = "embedded",
        state_dir: Path | None = None,
        *,
        read_only: bool = False,
        seed: bytes = DEFAULT_SEED,
    ) -> Ledger:
        """Open ``chain`` (``"embedded"`` or an ``http(s)://`` JSON-RPC URL).

        With a ``state_dir`` holding an earlier deployment, the ledger reattaches to
        it (embedded: rebuilt by replaying ``txlog.jsonl``).
        """
        saved: dict[str, Any] | None = None
        if state_dir is not None:
            state_dir = Path(state_dir)
            path = state_dir / LEDGER_FILE
            if path.exists():
                saved = json.loads(path.read_text())
                seed = bytes.fromhex(saved["seed"])
            elif read_only:
                message = f"{path}: no saved ledger to open read-only"
                raise ChainError(message)
        operator = enc.address_of(enc.derive_key(seed, "operator"))
        backend: Backend
        if chain == "embedded":
            backend = EmbeddedBackend(funded=[operator])
        elif chain.startswith(("http://", "https://")):
            backend = RpcBackend(chain)
            backend.fund(operator, 10**24)
        else:
            message = f"chain {chain!r}: use 'embedded' or an http(s):// JSON-RPC URL"
            raise ChainError(message)
        ledger = cls(backend, chain, state_dir, seed=seed, read_only=read_only)
        if saved is not None:
            ledger._restore(saved)
            ledger._resume_check = not read_only
        ledger._nonce = backend.nonce(ledger.operator)
        return ledger

    def _restore(self, saved: dict[str, Any]) -> None:
        if self.chain == "embedded":
            self._replay()
        self.token = bytes.fromhex(saved["token"])
        self.market = bytes.fromhex(saved["market"])
        self.rounds = int(saved["rounds"])
        self.tariffs = Tariffs(
            int(saved["retail_per_kwh_micro"]),
            int(saved["feed_in_per_kwh_micro"]),
            int(saved.get("tolerance_bp", 0)),
        )
        for m in saved["members"]:
            self._add_member(LedgerMember(int(m["id"]), int(m["bus"]), int(m["role"])))
        self.clearing = str(saved.get("clearing", "uniform"))
        self.kappa = Fraction(int(saved.get("kappa_num", 1)), int(saved.get("kappa_den", 2)))
        if saved.get("fee_table") is not None:
            self.fees = unpack_fee_table(bytes.fromhex(saved["fee_table"]), int(saved["fee_buses"]))
        self._domain = enc.domain_separator(self.backend.chain_id, self.market)
        if saved.get("chain_id") != self.backend.chain_id:
            message = f"{self.state_dir}: saved chain id {saved.get('chain_id')} != node's {self.backend.chain_id}"
            raise ChainError(message)

    def _replay(self) -> None:
        assert self.state_dir is not None
        path = self.state_dir / TXLOG_FILE
        if not path.exists():
            return
        started = time.perf_counter()
        groups = 0
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                log.warning(
                    "%s:%d: incomplete record ignored (run killed while writing)", path, number
                )
                break
            raws = [bytes.fromhex(h) for h in record["txs"]]
            results = self.backend.send(raws)
            for k, (res, gas) in enumerate(zip(results, record["gas"], strict=True)):
                if not res.status or res.gas_used != gas:
                    message = (
                        f"{path}:{number}: replayed transaction #{k} ({record['label']}) gave "
                        f"status={res.status} gas={res.gas_used}, the log says gas={gas}"
                    )
                    raise ChainError(message)
            self.backend.seal()
            groups += 1
            if "stats" in record:
                self._stats = ChainStats(**record["stats"])
        log.info(
            "replayed %d blocks from %s in %.1f s", groups, path, time.perf_counter() - started
        )

    # ------------------------------------------------------------ helpers
    def _add_member(self, m: LedgerMember) -> None:
        self.members[m.id] = m
        self._member_keys[m.id] = enc.derive_key(self.seed, f"member/{m.id}")
        self._meter_keys[m.id] = enc.derive_key(self.seed, f"meter/{m.id}")

    def member_address(self, member: int) -> bytes:
        """Bidding/withdrawal account of ``member``."""
        return enc.address_of(self._member_keys[member])

    def meter_address(self, member: int) -> bytes:
        """Meter account of ``member``."""
        return enc.address_of(self._meter_keys[member])

    def member_key(self, member: int) -> bytes:
        """Private key of ``member``'s account (simulation only)."""
        return self._member_keys[member]

    def _require_market(self) -> bytes:
        if self.market is None:
            message = "ledger is not set up: call setup() first"
            raise ChainError(message)
        return self.market

    def _sign_tx(
        self,
        to: bytes | None,
        data: bytes,
        gas: int,
        key: bytes | None = None,
        nonce: int | None = None,
    ) -> bytes:
        raw = enc.sign_transaction(
            self.backend.chain_id,
            key or self.operator_key,
            to,
            data,
            gas,
            self._nonce if nonce is None else nonce,
            MAX_FEE_WEI,
        )
        if nonce is None:
            self._nonce += 1
        return raw

    def _send(self, steps: Sequence[tuple[str, bytes]]) -> list[TxResult]:
        """Send operator transactions ``(label, raw)`` and check their status."""
        if self.read_only:
            message = "ledger opened read-only: no transactions allowed"
            raise ChainError(message)
        results = self.backend.send([raw for _, raw in steps])
        for (label, raw), res in zip(steps, results, strict=True):
            self._txlog.append((raw, res.gas_used))
            self._stats.tx_count += 1
            self._stats.gas_total += res.gas_used
            step = label.split()[0]
            self._stats.gas_by_step[step] = self._stats.gas_by_step.get(step, 0) + res.gas_used
            if not res.status:
                reason = decode_error(res.revert_data) if res.revert_data else "status 0"
                message = f"{label}: transaction reverted: {reason} (gas used {res.gas_used})"
                raise ChainError(message)
        return results

    def _queue(self, label: str, raw: bytes, interval: int | None = None) -> None:
        """Queue a transaction; eager backends run it now, rpc waits for :meth:`_flush`."""
        self._pending.append((label, raw, interval))
        if self.backend.eager:
            self._flush()

    def _flush(self) -> None:
        steps, self._pending = self._pending, []
        if not steps:
            return
        results = self._send([(label, raw) for label, raw, _ in steps])
        for (label, _, interval), res in zip(steps, results, strict=True):
            if interval is not None:
                self._interval(interval).gas += res.gas_used
            if label.startswith("recordRound"):
                self._stats.gas_bid_txs += res.gas_used
        self._recent.extend(results)

    def _take_recent(self) -> list[TxResult]:
        self._flush()
        out, self._recent = self._recent, []
        return out

    def _interval(self, interval: int) -> _IntervalCache:
        return self._cache.setdefault(interval, _IntervalCache())

    def _events(self, results: Sequence[TxResult], name: str) -> list[DecodedEvent]:
        market = self._require_market()
        out = []
        for res in results:
            for entry in res.logs:
                if entry.address != market:
                    continue
                event = self.market_abi.decode_log(entry.topics, entry.data, entry.block_number)
                if event is not None and event.name == name:
                    out.append(event)
        return out

    def view(self, function: str, *args: Any) -> tuple[Any, ...]:
        """Call a view function of the Market contract."""
        market = self._require_market()
        data = self.market_abi.encode_call(function, *args)
        try:
            output = self.backend.call(self.operator, market, data)
        except CallReverted as error:
            message = f"Market.{function}{args} reverted: {decode_error(error.data)}"
            raise ChainError(message) from error
        return self.market_abi.decode_output(function, output)

    def token_view(self, function: str, *args: Any) -> tuple[Any, ...]:
        """Call a view function of the settlement token."""
        if self.token is None:
            message = "ledger is not set up: call setup() first"
            raise ChainError(message)
        data = self.token_abi.encode_call(function, *args)
        return self.token_abi.decode_output(
            function, self.backend.call(self.operator, self.token, data)
        )

    # --------------------------------------------------------------- setup
    def is_set_up(self) -> bool:
        """True when a market is deployed (this session or a restored one)."""
        return self.market is not None

    def setup(
        self,
        members: Sequence[LedgerMember],
        tariffs: Tariffs,
        rounds: int,
        deposit_micro: int,
        grid_deposit_micro: int | None = None,
        *,
        clearing: str = "uniform",
        fees: npt.ArrayLike | None = None,
        kappa: Fraction | float = Fraction(1, 2),
    ) -> None:
        """Deploy, register members, mint and deposit escrow, fund the GRID account.

        ``grid_deposit_micro`` defaults to ``deposit_micro * len(members)``.
        ``clearing`` is the rule of :mod:`gridledger.market.rules` run on chain
        (``"uniform"``, ``"greedy"`` or ``"optimal"``); for the fee rules ``fees`` is the
        (B, B) table in micro-tokens per kWh (``fees[seller_bus, buyer_bus]``, None = no
        fees) and ``kappa`` the seller's share of a pair's surplus, both recorded on chain
        once (``Market.configureClearing``).
        """
        if self.market is not None:
            message = "setup(): a market is already deployed on this ledger"
            raise ChainError(message)
        if not 1 <= rounds <= 255:
            message = f"setup(): rounds={rounds} must be in 1..255"
            raise ChainError(message)
        table = self._clearing_config(clearing, fees, kappa, members)
        token_nonce, market_nonce = self._nonce, self._nonce + 1
        self.token = _create_address(self.operator, token_nonce)
        self.market = _create_address(self.operator, market_nonce)
        self.rounds = rounds
        self.tariffs = tariffs
        for m in members:
            self._add_member(m)
        self._domain = enc.domain_separator(self.backend.chain_id, self.market)
        ids = sorted(self.members)
        grid_micro = deposit_micro * len(ids) if grid_deposit_micro is None else grid_deposit_micro
        total = deposit_micro * len(ids) + grid_micro
        steps: list[tuple[str, bytes]] = [
            (
                "deploy token",
                self._sign_tx(
                    None,
                    self.token_abi.deploy_data(to_checksum_address(self.operator)),
                    GAS_DEPLOY_TOKEN,
                ),
            ),
            (
                "deploy market",
                self._sign_tx(
                    None,
                    self.market_abi.deploy_data(
                        to_checksum_address(self.operator),
                        to_checksum_address(self.token),
                        rounds,
                        tariffs.retail_per_kwh_micro,
                        tariffs.feed_in_per_kwh_micro,
                        CLEARING_RULE_IDS[clearing],
                        tariffs.tolerance_bp,
                    ),
                    GAS_DEPLOY_MARKET if table is None else GAS_DEPLOY_MARKET_FEE_RULE,
                ),
            ),
        ]
        if table is not None:
            n_buses = int(np.asarray(self.fees).shape[0])
            data = self.market_abi.encode_call(
                "configureClearing", n_buses, *kappa_args(self.kappa), table
            )
            steps.append(
                ("configure clearing", self._sign_tx(self.market, data, _gas_configure(len(table))))
            )
        for start in range(0, len(ids), REGISTER_CHUNK):
            chunk = ids[start : start + REGISTER_CHUNK]
            data = self.market_abi.encode_call(
                "registerMembers",
                chunk,
                [to_checksum_address(self.member_address(i)) for i in chunk],
                [to_checksum_address(self.meter_address(i)) for i in chunk],
                [self.members[i].bus for i in chunk],
                [self.members[i].role for i in chunk],
            )
            steps.append(
                ("register members", self._sign_tx(self.market, data, 80_000 + 60_000 * len(chunk)))
            )
        steps.append(
            (
                "mint",
                self._sign_tx(
                    self.token,
                    self.token_abi.encode_call("mint", to_checksum_address(self.operator), total),
                    120_000,
                ),
            )
        )
        steps.append(
            (
                "approve",
                self._sign_tx(
                    self.token,
                    self.token_abi.encode_call("approve", to_checksum_address(self.market), total),
                    80_000,
                ),
            )
        )
        if ids:
            data = self.market_abi.encode_call("depositMany", ids, [deposit_micro] * len(ids))
            steps.append(
                ("deposit members", self._sign_tx(self.market, data, 120_000 + 30_000 * len(ids)))
            )
        steps.append(
            (
                "deposit grid",
                self._sign_tx(
                    self.market, self.market_abi.encode_call("depositGrid", grid_micro), 120_000
                ),
            )
        )
        self._send(steps)
        self.backend.seal()
        self._checkpoint("setup", None)
        self._save_deployment(deposit_micro, grid_micro)

    def _clearing_config(
        self,
        clearing: str,
        fees: npt.ArrayLike | None,
        kappa: Fraction | float,
        members: Sequence[LedgerMember],
    ) -> bytes | None:
        """Validate the rule; for a fee rule set ``fees``/``kappa`` and return the packed table."""
        if clearing not in CLEARING_RULE_IDS:
            message = (
                f"setup(): clearing rule {clearing!r} is not implemented on chain; "
                f"use one of {sorted(CLEARING_RULE_IDS)}"
            )
            raise ChainError(message)
        self.clearing = clearing
        self.kappa = Fraction(*kappa_args(kappa))
        if clearing == "uniform":
            if fees is not None and np.any(np.asarray(fees)):
                message = "setup(): clearing 'uniform' charges no network fees; use greedy/optimal"
                raise ChainError(message)
            self.fees = None
            return None
        max_bus = max((m.bus for m in members), default=0)
        if fees is None:
            table = np.zeros((max_bus + 1, max_bus + 1), dtype=np.int64)
        else:
            table = np.asarray(fees).astype(np.int64)
        packed = pack_fee_table(table)
        if table.shape[0] <= max_bus:
            message = f"setup(): fee table covers buses 0..{table.shape[0] - 1}, a member is at bus {max_bus}"
            raise ChainError(message)
        if len(packed) > MAX_FEE_TABLE_BYTES:
            message = (
                f"setup(): fee table of {table.shape[0]} buses is {len(packed)} bytes; one data "
                f"contract holds at most {MAX_FEE_TABLE_BYTES} (78 buses)"
            )
            raise ChainError(message)
        self.fees = table
        return packed

    def _save_deployment(self, deposit_micro: int, grid_micro: int) -> None:
        if self.state_dir is None:
            return
        assert self.token is not None and self.market is not None and self.tariffs is not None
        self.state_dir.mkdir(parents=True, exist_ok=True)
        record = {
            "version": 1,
            "chain": self.chain,
            "chain_id": self.backend.chain_id,
            "seed": self.seed.hex(),
            "note": "seed-derived keys are for simulation only",
            "token": self.token.hex(),
            "market": self.market.hex(),
            "operator": self.operator.hex(),
            "rounds": self.rounds,
            "retail_per_kwh_micro": self.tariffs.retail_per_kwh_micro,
            "feed_in_per_kwh_micro": self.tariffs.feed_in_per_kwh_micro,
            "tolerance_bp": self.tariffs.tolerance_bp,
            "clearing": self.clearing,
            "kappa_num": self.kappa.numerator,
            "kappa_den": self.kappa.denominator,
            "fee_buses": None if self.fees is None else int(self.fees.shape[0]),
            "fee_table": None if self.fees is None else pack_fee_table(self.fees).hex(),
            "deposit_micro": deposit_micro,
            "grid_deposit_micro": grid_micro,
            "members": [asdict(m) for m in sorted(self.members.values(), key=lambda m: m.id)],
        }
        tmp = self.state_dir / (LEDGER_FILE + ".tmp")
        tmp.write_text(json.dumps(record, indent=2) + "\n")
        os.replace(tmp, self.state_dir / LEDGER_FILE)

    def _checkpoint(self, label: str, interval: int | None) -> None:
        entries, self._txlog = self._txlog, []
        if self.state_dir is None or not entries:
            return
        self.state_dir.mkdir(parents=True, exist_ok=True)
        record = {
            "label": label,
            "interval": interval,
            "txs": [raw.hex() for raw, _ in entries],
            "gas": [gas for _, gas in entries],
            "stats": asdict(self._stats),  # cumulative, so a resumed run reports the whole day
        }
        with open(self.state_dir / TXLOG_FILE, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    # ------------------------------------------------------------- resume
    def _on_chain(self, interval: int) -> _ChainInterval | None:
        """The chain's state of ``interval`` when it may be partly recorded (first interval
        after reattaching to a saved deployment), else None."""
        if not self._resume_check:
            return None
        if interval not in self._resume_states:
            (raw,) = self.view("intervalState", interval)
            phase, rounds, readings, _, _, _, bids_h, trades_h, delivery_h, readings_h = raw
            self._resume_states[interval] = _ChainInterval(
                int(phase),
                int(rounds),
                bool(readings),
                bytes(bids_h),
                bytes(trades_h),
                bytes(delivery_h),
                bytes(readings_h),
            )
        return self._resume_states[interval]

    def _recorded_event(self, interval: int, name: str) -> DecodedEvent:
        found = [e for e in self.events() if e.name == name and int(e.args["interval"]) == interval]
        if not found:
            message = (
                f"interval {interval}: the chain has no {name} event although its state says so"
            )
            raise ChainError(message)
        return found[-1]

    @staticmethod
    def _same(interval: int, step: str, recorded: bytes, words: Sequence[int]) -> None:
        submitted = enc.list_hash(words)
        if submitted != recorded:
            message = (
                f"resume: interval {interval} {step} is already on chain with hash "
                f"0x{recorded.hex()}, but this run would record 0x{submitted.hex()} "
                "(the resumed run diverged from the one that was killed)"
            )
            raise ChainError(message)

    # ------------------------------------------------------------ interval
    def record_round(self, interval: int, round: int, bids: Sequence[Bid]) -> None:
        """Sign each bid with its member's key and record the round as one batch."""
        self._require_market()
        validate_bids(list(bids))
        ordered = sorted(bids, key=lambda b: b.member)
        words = []
        sigs: list[bytes] = []
        for bid in ordered:
            if bid.member not in self.members:
                message = f"interval {interval} round {round}: bid by unknown member {bid.member}"
                raise ChainError(message)
            word = enc.pack_bid(bid)
            r, vs = enc.sign_compact(
                self._member_keys[bid.member], enc.bid_digest(self._domain, interval, round, word)
            )
            words.append(word)
            sigs += [r, vs]
        state = self._on_chain(interval)
        if state is not None and round < state.rounds_recorded:
            if round == state.rounds_recorded - 1:
                self._same(interval, f"round {round}", state.bids_hash, words)
            log.info("resume: interval %d round %d already on chain, skipped", interval, round)
            self._interval(interval).bids = words
            return
        data = self.market_abi.encode_call("recordRound", interval, round, words, sigs)
        self._queue(
            f"recordRound {interval}/{round}",
            self._sign_tx(self.market, data, _gas_round(len(words))),
            interval,
        )
        self._interval(interval).bids = words
        self._stats.bids_recorded += len(words)

    def clear(self, interval: int) -> ClearingResult:
        """Clear ``interval`` on chain from its last recorded round with the deployed rule.

        Uniform: the chain matches the sorted book itself. Greedy / optimal: the reference
        (:func:`~gridledger.market.greedy.clear_greedy` / :func:`~gridledger.market.optimal.
        solve_optimal`) is computed here and submitted with its hints (queue order / party
        indexes and LP duals); the chain checks it. The trades returned are the ones the
        chain emitted in ``IntervalCleared``.
        """
        self._require_market()
        cache = self._interval(interval)
        words = cache.bids
        bids = [enc.unpack_bid(w) for w in words]
        state = self._on_chain(interval)
        if state is not None and state.phase >= PHASE_SECURITY:
            self._same(interval, "bids", state.bids_hash, words)
            event = self._recorded_event(interval, "IntervalCleared")
            self._same(interval, "clearing", state.trades_hash, event.args["trades"])
            log.info("resume: interval %d already cleared on chain, skipped", interval)
            return self._cleared(cache, event)
        if self.clearing == "greedy":
            trades = enc.pack_trades(clear_greedy(bids, self.fees, self.kappa).trades)
            order, n_buys = greedy_order(bids)
            data = self.market_abi.encode_call(
                "clearGreedy", interval, words, order, n_buys, trades
            )
            gas = _gas_fee_clear(len(words), len(trades) // 2)
        elif self.clearing == "optimal":
            sol = solve_optimal(bids, self.fees, self.kappa)
            trades = enc.pack_trades(sol.trades)
            parties = optimal_parties(bids, sol.trades)
            duals = dual_words(bids, sol.buyer_dual, sol.seller_dual)
            data = self.market_abi.encode_call(
                "clearOptimal", interval, words, trades, parties, duals
            )
            gas = _gas_fee_clear(len(words), len(trades) // 2)
        else:
            index = {b.member: k for k, b in enumerate(bids)}
            buys, sells = sorted_books(bids)
            order = [index[b.member] for b in buys] + [index[b.member] for b in sells]
            data = self.market_abi.encode_call("clear", interval, words, order, len(buys))
            gas = _gas_clear(len(words))
        self._queue(f"clear {interval}", self._sign_tx(self.market, data, gas), interval)
        events = self._events(self._take_recent(), "IntervalCleared")
        if len(events) != 1:
            message = f"clear {interval}: expected one IntervalCleared event, got {len(events)}"
            raise ChainError(message)
        return self._cleared(cache, events[0])

    def _cleared(self, cache: _IntervalCache, event: DecodedEvent) -> ClearingResult:
        emitted = enc.unpack_trades(event.args["trades"])
        cache.trades = emitted
        price = int(event.args["price"]) if emitted and self.clearing == "uniform" else None
        return ClearingResult(trades=emitted, price_per_kwh_micro=price)

    def record_security(self, interval: int, curtailments: Sequence[Curtailment]) -> None:
        """Record the verdict (secure, or secure after ``curtailments``) of ``interval``."""
        self._require_market()
        cache = self._interval(interval)
        words = enc.pack_trades(cache.trades)
        from gridledger.market.orders import apply_curtailments

        try:
            cache.delivery = apply_curtailments(cache.trades, list(curtailments))
        except Exception as error:
            message = f"record_security {interval}: {error}"
            raise ChainError(message) from error
        verdict = 1 if curtailments else 0
        packed = [enc.pack_curtailment(c) for c in curtailments]
        state = self._on_chain(interval)
        if state is not None and state.phase >= PHASE_DELIVERY:
            self._same(interval, "delivery", state.delivery_hash, enc.pack_trades(cache.delivery))
            log.info("resume: interval %d security already on chain, skipped", interval)
            return
        data = self.market_abi.encode_call("recordSecurity", interval, verdict, words, packed)
        gas = _gas_security(len(cache.trades), len(packed))
        self._queue(f"recordSecurity {interval}", self._sign_tx(self.market, data, gas), interval)

    def record_readings(self, interval: int, actual_net_wh: Mapping[int, int]) -> None:
        """Sign each member's reading with its meter key and record them as one batch."""
        self._require_market()
        words = []
        sigs: list[bytes] = []
        for member in sorted(actual_net_wh):
            if member not in self.members:
                message = f"interval {interval}: reading for unknown member {member}"
                raise ChainError(message)
            word = enc.pack_reading(member, int(actual_net_wh[member]))
            r, vs = enc.sign_compact(
                self._meter_keys[member], enc.reading_digest(self._domain, interval, word)
            )
            words.append(word)
            sigs += [r, vs]
        self._interval(interval).readings = words
        state = self._on_chain(interval)
        if state is not None and state.readings_recorded:
            self._same(interval, "readings", state.readings_hash, words)
            log.info("resume: interval %d readings already on chain, skipped", interval)
            return
        data = self.market_abi.encode_call("recordReadings", interval, words, sigs)
        self._queue(
            f"recordReadings {interval}",
            self._sign_tx(self.market, data, _gas_readings(len(words))),
            interval,
        )

    def settle(self, interval: int) -> dict[int, int]:
        """Settle ``interval`` on chain; account changes as ``Settlement.deltas()``."""
        self._require_market()
        cache = self._interval(interval)
        trades = enc.pack_trades(cache.delivery)
        position = {w >> 224: k for k, w in enumerate(cache.readings)}
        missing = sorted({m for t in cache.delivery for m in (t.buyer, t.seller)} - set(position))
        if missing:
            message = f"settle {interval}: traded members {missing} have no meter reading"
            raise ChainError(message)
        parties = [(position[t.buyer] << 128) | position[t.seller] for t in cache.delivery]
        state = self._on_chain(interval)
        if state is not None and state.phase >= PHASE_SETTLED:
            log.info("resume: interval %d already settled on chain, skipped", interval)
            return deltas_from_event(self._recorded_event(interval, "IntervalSettled").args)
        data = self.market_abi.encode_call("settle", interval, trades, cache.readings, parties)
        gas = _gas_settle(len(cache.readings), len(cache.delivery))
        self._queue(f"settle {interval}", self._sign_tx(self.market, data, gas), interval)
        events = self._events(self._take_recent(), "IntervalSettled")
        if len(events) != 1:
            message = f"settle {interval}: expected one IntervalSettled event, got {len(events)}"
            raise ChainError(message)
        return deltas_from_event(events[0].args)

    def end_interval(self, interval: int) -> None:
        """Flush, seal the interval's block and persist its transactions."""
        self._flush()
        self._recent = []
        self.backend.seal()
        self._resume_check = False
        self._resume_states.clear()
        cache = self._cache.pop(interval, _IntervalCache())
        self._stats.intervals += 1
        self._stats.gas_per_interval_max = max(self._stats.gas_per_interval_max, cache.gas)
        self._checkpoint("interval", interval)

    # -------------------------------------------------------------- queries
    def stats(self) -> ChainStats:
        """Counters of the transactions sent in this session."""
        return self._stats

    def last_settled_interval(self) -> int | None:
        """Highest settled interval on chain, or None before the first settlement."""
        if self.market is None:
            return None
        (count,) = self.view("settledIntervals")
        if count == 0:
            return None
        (last,) = self.view("lastSettledInterval")
        return int(last)

    def balances(self) -> dict[int, int]:
        """Escrow balances: members by id, GRID and OPERATOR (negative = recorded debt)."""
        out = {m: int(self.view("balanceMicro", m)[0]) for m in sorted(self.members)}
        out[GRID] = int(self.view("gridBalanceMicro")[0])
        out[OPERATOR] = int(self.view("operatorBalanceMicro")[0])
        return out

    def conserved(self) -> bool:
        """The contract's own check: deposits == balances + withdrawals == tokens held."""
        return bool(self.view("conserved")[0])

    def events(self) -> list[DecodedEvent]:
        """Every Market event on chain, in chain order."""
        market = self._require_market()
        out = []
        for entry in self.backend.logs(market):
            event = self.market_abi.decode_log(entry.topics, entry.data, entry.block_number)
            if event is not None:
                out.append(event)
        return out

    def close(self) -> None:
        self.backend.close()


def deltas_from_event(args: Mapping[str, Any]) -> dict[int, int]:
    """Account changes of an ``IntervalSettled`` event in ``Settlement.deltas()`` form."""
    out = {int(m): int(d) for m, d in zip(args["members"], args["deltasMicro"], strict=True)}
    out[GRID] = int(args["gridDeltaMicro"])
    out[OPERATOR] = int(args["operatorDeltaMicro"])
    return out


def unpack_fee_table(packed: bytes, n_buses: int) -> npt.NDArray[np.int64]:
    """Inverse of :func:`~gridledger.ledger.fee_clearing.pack_fee_table`."""
    if len(packed) != 4 * n_buses * n_buses:
        message = f"fee table: {len(packed)} bytes for {n_buses} buses (expected {4 * n_buses**2})"
        raise ChainError(message)
    table = np.frombuffer(packed, dtype=">u4").astype(np.int64)
    return table.reshape(n_buses, n_buses)


def _create_address(sender: bytes, nonce: int) -> bytes:
    import rlp

    return keccak(rlp.encode([sender, nonce]))[12:]


_ = LogEntry  # re-exported type used in annotations of backends
