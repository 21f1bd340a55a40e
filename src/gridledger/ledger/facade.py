"""The ``Ledger`` facade: the simulation's one entry point to the chain.

One ``Ledger`` drives one market on one backend. Per interval the simulation calls
:meth:`Ledger.record_round` (per round), :meth:`Ledger.clear`, :meth:`Ledger.record_security`,
:meth:`Ledger.record_readings`, :meth:`Ledger.settle` and :meth:`Ledger.end_interval`: at least
``rounds + 4`` operator transactions (more when paged), with explicit nonces and gas limits.

With a ``state_dir`` the deployment and every sealed block's transactions are saved
(:mod:`~gridledger.ledger.store`); :meth:`Ledger.connect` reattaches to them (embedded:
rebuilt by replaying the log), and a killed run resumes at
:meth:`Ledger.last_settled_interval` ``+ 1`` with nothing lost or duplicated
(:mod:`~gridledger.ledger.resume`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from fractions import Fraction
from functools import partial
from pathlib import Path
from typing import Any

import numpy.typing as npt

from gridledger.errors import ChainError, NodeStateLost, NodeUnreachable, SavedChainDamaged
from gridledger.ledger import encoding as enc
from gridledger.ledger import store
from gridledger.ledger.backends import Backend, RpcBackend, TxResult, open_backend
from gridledger.ledger.capacity import check_setup
from gridledger.ledger.contracts import DecodedEvent
from gridledger.ledger.deploy import (
    ChainTiming,
    Deployment,
    LedgerMember,
    NetworkCommitment,
    configured_network,
    plan_deployment,
    setup_transactions,
)
from gridledger.ledger.interval_cache import IntervalCache
from gridledger.ledger.keys import KeyRing, resolve_keys
from gridledger.ledger.network_data import pack_margin
from gridledger.ledger.node import SentJournal, SentStep, reconcile
from gridledger.ledger.paging import Pager
from gridledger.ledger.presign import Presigner
from gridledger.ledger.reader import ChainReader
from gridledger.ledger.receipts import append_receipts
from gridledger.ledger.reference import (
    clearing_call,
    delivered,
    deltas_from_event,
    merge_settlement_pages,
    settlement_parties,
    verdict_entries,
)
from gridledger.ledger.resume import ResumeGuard
from gridledger.ledger.saved import (
    LEDGER_FILE,
    RunFacts,
    SavedLedger,
    deployment_from_saved,
    open_saved,
    progress_note,
    saved_from_deployment,
    write_ledger_file,
)
from gridledger.ledger.txqueue import ChainStats, TxQueue
from gridledger.market.justification import RowMargin
from gridledger.market.orders import Bid, ClearingResult, Curtailment, validate_bids
from gridledger.market.path_fees import PathFees
from gridledger.market.settlement import Tariffs

__all__ = ["Ledger"]

log = logging.getLogger(__name__)

VERDICT_UNRESOLVED = 2  # Market.VERDICT_UNRESOLVED


class Ledger(ChainReader):
    """Facade over the contracts on one backend (see the module docstring)."""

    def __init__(
        self,
        backend: Backend,
        chain: str,
        state_dir: Path | None,
        seed: bytes | None = None,
        read_only: bool = False,
        *,
        keys: KeyRing | None = None,
    ) -> None:
        self.keys = resolve_keys(chain, keys, seed)
        self.keys.bind_chain(backend.chain_id)
        super().__init__(backend, self.keys.operator)
        self.chain = chain
        self.state_dir = state_dir
        operator = None if self.keys.source == "public" else self.keys.operator_signer
        self.txq = TxQueue(backend, operator, read_only=read_only)
        self.resume = ResumeGuard(self.view, self.events)
        self.presign = Presigner(self.keys)
        self._cache: dict[int, IntervalCache] = {}
        self._txlog: store.TxLog | None = None
        self._saved: SavedLedger | None = None
        self.settle_page_members: int | None = None
        """The most entries one settlement transaction covers: readings checked or booked (n
        of each for n readings; None: as many as fit a block)."""
        self.record_page_entries: int | None = None
        """The most bids (readings, trades) one page of a round (of the readings, of a greedy
        clearing) checks (None: as many as fit a block)."""

    @classmethod
    def connect(
        cls,
        chain: str = "embedded",
        state_dir: Path | None = None,
        *,
        read_only: bool = False,
        keys: KeyRing | None = None,
        seed: bytes | None = None,
    ) -> Ledger:
        """Open ``chain`` (``"embedded"`` or an ``http(s)://`` JSON-RPC URL).

        ``keys`` signs (:class:`~gridledger.ledger.keys.KeyRing`); without keys or ``seed``
        the default seed's simulation keys, refused on a JSON-RPC node
        (:func:`~gridledger.ledger.keys.resolve_keys`; a read-only ledger of a saved chain
        needs no keys).

        With a ``state_dir`` holding an earlier deployment, the ledger reattaches to it
        (embedded: rebuilt by replaying ``txlog.jsonl``) after verifying both files
        (:mod:`~gridledger.ledger.saved`, :mod:`~gridledger.ledger.store`); the counters
        of :meth:`stats` continue from the log's last record. A setup that was killed
        before its log record leaves the ledger not set up: :meth:`setup` runs it again.
        On a JSON-RPC node the node is then checked against the folder and brought in line
        (:func:`~gridledger.ledger.node.reconcile`: a node that lost its state is a
        :class:`~gridledger.errors.NodeStateLost`; one behind the log gets the logged
        transactions again; steps it holds beyond the log are counted once).
        """
        state_dir = None if state_dir is None else Path(state_dir)
        saved, txlog = None, None
        if state_dir is not None:
            saved, txlog = open_saved(state_dir, read_only)
        recorded = None
        if saved is not None and state_dir is not None:
            record = saved.keys.model_dump()
            recorded = (state_dir / LEDGER_FILE, record, bytes.fromhex(saved.operator))
        ring = resolve_keys(chain, keys, seed, saved=recorded, read_only=read_only)
        try:
            backend = open_backend(chain, ring.operator, fund=not read_only)
        except NodeUnreachable as error:
            note = "" if read_only else progress_note(txlog)
            raise NodeUnreachable(f"{error}; {note}" if note else str(error)) from error
        ledger = cls(backend, chain, state_dir, read_only=read_only, keys=ring)
        ledger._txlog, ledger._saved = txlog, saved
        rpc = backend if isinstance(backend, RpcBackend) else None
        if rpc is not None and state_dir is not None and not read_only:
            rpc.context = ledger._progress
        if saved is not None and txlog is not None and txlog.records:
            ledger._restore(saved, txlog)
            if rpc is not None and state_dir is not None:
                found = reconcile(
                    rpc, state_dir, saved, txlog, ledger.last_settled_interval, read_only
                )
                ledger._adopt_sent(found)
            ledger.resume.active = not read_only
        if rpc is not None and state_dir is not None and not read_only:
            ledger.txq.journal = SentJournal(state_dir).write
        ledger.txq.nonce = backend.nonce(ledger.operator)
        return ledger

    def _progress(self) -> str:
        """Where the saved chain stands, for a :class:`NodeUnreachable` message."""
        return progress_note(self._txlog)

    def _adopt_sent(self, found: Sequence[tuple[SentStep, TxResult]]) -> None:
        """Count the steps the node holds beyond the log; write the record of every interval
        they settle; keep the rest (the interval in flight) in ``sent.jsonl``."""
        rest: list[SentStep] = []
        for step, res in found:
            self.txq.adopt(step.label, step.interval, step.bids, step.raw, res.gas_used)
            rest.append(step)
            if step.label == f"settle {step.interval}":  # the last (or only) page
                self.txq.close_interval(step.interval)
                self._checkpoint("interval", step.interval)
                rest = []
        if found and self.state_dir is not None:
            SentJournal(self.state_dir).replace(rest)

    def _restore(self, saved: SavedLedger, txlog: store.TxLog) -> None:
        if saved.chain_id != self.backend.chain_id:
            message = (
                f"{self.chain}: the node's chain id is {self.backend.chain_id}, "
                f"{self.state_dir}/{LEDGER_FILE} records {saved.chain_id}: it is another "
                "chain; restart the node with its state, or run into a new folder"
            )
            raise NodeStateLost(message)
        if self.chain == "embedded":
            store.replay(self.backend, txlog)
        self.txq.stats = txlog.records[-1].chain_stats()
        self._adopt(deployment_from_saved(saved))
        if not saved.set_up and not self.txq.read_only and self.state_dir is not None:
            # killed between the setup record and the rewrite of ledger.json
            self._saved = saved.model_copy(update={"set_up": True})
            write_ledger_file(self.state_dir, self._saved)

    def saved_run(self) -> RunFacts:
        """The ``run`` facts given to :meth:`setup` (saved in ``ledger.json``; {} if none)."""
        return {} if self._saved is None else dict(self._saved.run)

    def _adopt(self, d: Deployment) -> None:
        self.deployment = d
        self.members = {m.id: m for m in d.members}
        self.keys.require_members(m.id for m in d.members)
        self.keys.bind_market(d.market)

    @property
    def signer(self) -> KeyRing:
        """The keys (:attr:`keys`; the name of earlier versions)."""
        return self.keys

    def member_address(self, member: int) -> bytes:
        """Bidding/withdrawal account of ``member``."""
        return self.keys.member_address(member)

    def meter_address(self, member: int) -> bytes:
        """Meter account of ``member``."""
        return self.keys.meter_address(member)

    def member_key(self, member: int) -> bytes:
        """Private key of ``member``'s account (simulation only: held by its signer)."""
        return self.keys.member_key(member)

    # --------------------------------------------------------------- setup
    def setup(
        self,
        members: Sequence[LedgerMember],
        tariffs: Tariffs,
        rounds: int,
        deposit_micro: int,
        grid_deposit_micro: int | None = None,
        *,
        clearing: str = "uniform",
        fees: npt.ArrayLike | PathFees | None = None,
        kappa: Fraction | float = Fraction(1, 2),
        run: Mapping[str, str | int] | None = None,
        timing: ChainTiming | None = None,
        network: NetworkCommitment | None = None,
    ) -> None:
        """Deploy, register members, mint and deposit escrow, fund the GRID account.

        ``timing`` sets the deadlines in blocks (:class:`~gridledger.ledger.deploy.ChainTiming`);
        ``network`` is the DSO's linearised network, committed with the DSO's signature so
        that curtailments can be checked on chain. ``grid_deposit_micro`` defaults to
        ``deposit_micro * len(members)``.
        ``clearing`` is the rule of :mod:`gridledger.market.rules` run on chain
        (``"uniform"``, ``"greedy"`` or ``"optimal"``); for the fee rules ``fees`` is the
        (B, B) table in micro-tokens per kWh (``fees[seller_bus, buyer_bus]``, None = no
        fees) or the fees in path form (:mod:`~gridledger.market.path_fees`) and ``kappa``
        the seller's share of a pair's surplus, both recorded on chain once
        (``Market.configureClearing``). ``run`` is an opaque mapping saved in ``ledger.json``
        and returned by :meth:`saved_run` on reattach.

        With a ``state_dir``, ``ledger.json`` is written before anything is sent and marked
        set up once the setup is logged; after a kill in between, a new ledger redoes it.
        """
        if self.deployment is not None:
            message = "setup(): a market is already deployed on this ledger"
            raise ChainError(message)
        limits = (self.backend.block_gas_limit, timing, self.backend.max_tx_gas())
        check_setup(len(members), clearing, limits, fees, network)
        d, table = plan_deployment(
            self.operator,
            self.txq.nonce,
            members,
            tariffs,
            rounds,
            (deposit_micro, grid_deposit_micro),
            (clearing, fees, kappa),
            parties=(self.keys.dso_address, self.keys.grid_address),
            timing=timing or ChainTiming(),
            network=network,
        )
        pending = self._saved
        if pending is not None and bytes.fromhex(pending.token) != d.token:
            message = (
                f"{self.state_dir}: an interrupted setup sent transactions to the node "
                f"(saved token {pending.token}, the next one would be {d.token.hex()}); "
                "it cannot be redone on this node: start again in a new folder"
            )
            raise SavedChainDamaged(message)
        self._adopt(d)
        keys = (self.keys.record(), self.operator)
        saved = saved_from_deployment(self.chain, self.backend.chain_id, keys, d, dict(run or {}))
        if self.state_dir is not None:
            write_ledger_file(self.state_dir, saved)
        self._saved = saved
        abis = (self.token_abi, self.market_abi)
        network_sig = None
        if network is not None:
            domain = enc.domain_separator(self.backend.chain_id, d.market)
            digest = enc.network_digest(domain, network.cfg, configured_network(d, table))
            network_sig = self.keys.dso.sign_digest(digest)
        for label, to, data in setup_transactions(self.keys, abis, d, table, network_sig):
            self.txq.submit(label, to, data, None)
        self.txq.seal_block()
        self._checkpoint("setup", None)
        if self.state_dir is not None:
            self._saved = saved.model_copy(update={"set_up": True})
            write_ledger_file(self.state_dir, self._saved)

    # ------------------------------------------------------------ interval
    def _open(self, interval: int) -> IntervalCache:
        """The interval's cache; opens the interval on chain at its first step."""
        cache = self._interval(interval)
        if not cache.opened:
            cache.opened = True
            if not self.resume.opened(interval):
                self._submit(f"openInterval {interval}", interval)
            cache.seals = 0
        return cache

    def _await_deadline(self, cache: IntervalCache, n_bids: int, paged: bool = False) -> None:
        """Seal blocks until the open round's deadline has passed, unless every member bids
        in one transaction (then the contract lets the round close at once)."""
        if n_bids == len(self.members) and not paged:
            return
        while cache.seals < self._deployed().timing.round_blocks:
            self.txq.seal_block(new_block=True)
            cache.seals += 1

    def record_round(
        self, interval: int, round: int, bids: Sequence[Bid], binding: bool = False
    ) -> None:
        """Have each member sign its own bid and record the round, as one batch or, when it
        does not fit a block, in pages (docs/ledger.md, "Paged steps"); the ``binding``
        round (always the deployment's last) locks escrow and is cleared."""
        d = self._deployed()
        validate_bids(list(bids))
        self._within_limits(interval, {b.member: b.e_wh for b in bids}, "bid")
        cache = self._open(interval)
        words, sigs = self.presign.sign_round(interval, round, bids)
        if self.state_dir is not None and not self.txq.read_only:
            append_receipts(self.state_dir, interval, round, words, sigs)
        cache.bids = words
        binding = binding or round + 1 == d.rounds
        if self.resume.round_recorded(interval, round, words):
            cache.rounds, cache.binding = round + 1, binding
            return
        start = self.resume.round_paged(interval, round, words)
        excluded = self.resume.excluded_members(interval) if start else set()
        self._await_deadline(cache, len(words))
        label = f"recordRound {interval}/{round}"
        args = (interval, round, binding, words, sigs)
        self._paged(
            label,
            "recordRound",
            args,
            (start, len(words)),
            self.record_page_entries,
            count_bids=True,
            prepare=partial(self._await_deadline, cache, len(words), True),
        )
        cache.rounds, cache.binding, cache.seals = round + 1, binding, 0
        if binding:
            cache.bids = self._admitted(interval, words, excluded)

    def sign_ahead(
        self,
        interval: int,
        rounds: Sequence[Sequence[Bid]] = (),
        readings: Mapping[int, int] | None = None,
    ) -> None:
        """Start signing ``rounds`` (round k: ``rounds[k]``) and ``readings`` in the background
        (:mod:`~gridledger.ledger.presign`), taken by :meth:`record_round`, :meth:`record_readings`."""
        self.presign.rounds_ahead(interval, rounds)
        if readings is not None:
            self.presign.readings_ahead(interval, readings)

    def _within_limits(self, interval: int, energy_wh: Mapping[int, int], what: str) -> None:
        """Refuse, by name, a bid or reading beyond its member's connection limit on chain."""
        for member, e_wh in energy_wh.items():
            known = self.members.get(member)
            if known is not None and abs(int(e_wh)) > known.limit_wh:
                message = (
                    f"interval {interval}: member {member}'s {what} of {abs(int(e_wh))} Wh is "
                    f"above its connection limit of {known.limit_wh} Wh registered on chain at "
                    "setup; run into a new folder (the limits are set when the chain is)"
                )
                raise ChainError(message)

    def _admitted(self, interval: int, words: list[int], excluded: set[int]) -> list[int]:
        """The binding bids the chain admitted to the clearing: those whose member's escrow
        covered the bid's lock (the others are left out, each with a ``BidExcluded``;
        ``excluded``: members left out by pages recorded before a resume)."""
        events = self._recent_events()
        excluded = excluded | {int(e.args["member"]) for e in events if e.name == "BidExcluded"}
        for e in events:
            if e.name == "BidExcluded":
                log.warning(
                    "interval %d: member %d's binding bid left out: its free escrow %d "
                    "micro-tokens does not cover the lock of %d",
                    interval,
                    int(e.args["member"]),
                    int(e.args["freeMicro"]),
                    int(e.args["neededMicro"]),
                )
        return [w for w in words if (w >> 224) not in excluded]

    def clear(self, interval: int) -> ClearingResult:
        """Clear ``interval`` on chain from its binding round with the deployed rule (an
        interval without bids records an empty binding round first). Greedy / optimal: the
        reference is submitted with its hints (:func:`~gridledger.ledger.reference.clearing_call`),
        in pages if need be; the chain checks it and its ``IntervalCleared`` trades are returned."""
        d = self._deployed()
        cache = self._open(interval)
        if not cache.binding:
            self.record_round(interval, cache.rounds, [], binding=True)
        words = cache.bids
        event = self.resume.cleared(interval, words)
        if event is not None:
            return self._cleared(cache, event)
        call = clearing_call(d.clearing.rule, words, d.clearing.fees, d.clearing.kappa)
        label, args = f"clear {interval}", (interval, *call.args)
        if call.entries is not None:  # a fee rule: paged if need be
            span = (self.resume.clearing_paged(interval, call.trade_words), call.entries)
            self._paged(label, call.function, args, span, self.record_page_entries)
        else:
            self._submit(label, *args, function=call.function)
        return self._cleared(cache, self._one_event(label, "IntervalCleared"))

    def _cleared(self, cache: IntervalCache, event: DecodedEvent) -> ClearingResult:
        emitted = enc.unpack_trades(event.args["trades"])
        cache.trades = emitted
        uniform = self._deployed().clearing.rule == "uniform"
        price = int(event.args["price"]) if emitted and uniform else None
        return ClearingResult(trades=emitted, price_per_kwh_micro=price)

    def record_security(
        self,
        interval: int,
        curtailments: Sequence[Curtailment],
        margins: Sequence[RowMargin] = (),
        certificate: Sequence[int] = (),
        *,
        unresolved: bool = False,
    ) -> None:
        """Record the DSO-signed verdict of ``interval``: secure, secure after
        ``curtailments``, or ``unresolved`` (violations no cut can fix remain). ``margins``
        and ``certificate`` are the DSO's evidence for the curtailed rows, which the contract
        checks against the committed network, in pages if need be."""
        network = self._deployed().network
        cache = self._interval(interval)
        words = enc.pack_trades(cache.trades)
        cache.delivery = delivered(interval, cache.trades, curtailments)
        packed = [enc.pack_curtailment(c) for c in curtailments]
        if self.resume.security_recorded(interval, enc.pack_trades(cache.delivery)):
            return
        verdict = VERDICT_UNRESOLVED if unresolved else (1 if curtailments else 0)
        margin_words = [pack_margin(m) for m in margins]
        proof = [int(y) for y in certificate]
        digest = enc.verdict_digest(
            self.keys.domain, interval, words, verdict, (packed, margin_words, proof)
        )
        evidence = (packed, margin_words, proof, list(self.keys.dso.sign_digest(digest)))
        end = verdict_entries(network, len(packed), len(margin_words), len(cache.trades))
        span = (self.resume.security_paged(interval), end)
        label, args = f"recordSecurity {interval}", (interval, verdict, words, evidence)
        self._paged(label, "recordSecurity", args, span, self.record_page_entries)

    def record_readings(self, interval: int, actual_net_wh: Mapping[int, int]) -> None:
        """Sign each member's reading with its meter key and record them as one batch, or in
        pages when they do not fit a block."""
        self._deployed()
        self._within_limits(interval, actual_net_wh, "reading")
        words, sigs = self.presign.sign_readings(interval, actual_net_wh)
        self._interval(interval).readings = words
        if self.resume.readings_recorded(interval, words):
            return
        start = self.resume.readings_paged(interval, words)
        label = f"recordReadings {interval}"
        span = (start, len(words))
        self._paged(
            label, "recordReadings", (interval, words, sigs), span, self.record_page_entries
        )

    def settle(self, interval: int) -> dict[int, int]:
        """Settle ``interval`` on chain, paged over blocks when it does not fit one
        (docs/ledger.md, "Paged steps"); account changes as ``Settlement.deltas()``."""
        self._deployed()
        recorded = self.resume.settled(interval)
        if recorded is not None:
            return deltas_from_event(recorded.args)
        trades, readings, parties = self._settle_args(interval)
        args = (interval, trades, readings, parties)
        start = self.resume.settled_members(interval)
        label = f"settle {interval}"
        span = (start, 2 * len(readings))
        self._paged(label, "settle", args, span, self.settle_page_members)
        settled = self._one_event(label, "IntervalSettled")
        if start:  # pages booked before the resume: the whole settlement from the chain
            settled = self.resume.recorded_event(interval, "IntervalSettled")
        return deltas_from_event(settled.args)

    def _paged(
        self,
        label: str,
        function: str,
        args: tuple[Any, ...],
        span: tuple[int, int],
        cap: int | None,
        *,
        count_bids: bool = False,
        prepare: Callable[[], None] | None = None,
    ) -> None:
        """Send the entries ``span`` of ``function(*args, upTo)`` in as few pages as fit
        (:meth:`Pager.send <gridledger.ledger.paging.Pager.send>`)."""

        def submit(page_label: str, start: int, up_to: int) -> None:
            bids = up_to - start if count_bids else 0
            self._submit(page_label, *args, up_to, function=function, bids=bids)

        def gas(_start: int, up_to: int) -> int:
            return self.step_gas(function, args, up_to)

        pager = Pager(submit, gas, self.txq.seal_block, self.backend.max_tx_gas())
        pager.send(label, span, cap, prepare)

    def step_gas(self, function: str, args: tuple[Any, ...], up_to: int) -> int:
        """The node's gas estimate of the page of ``function(*args, upTo)`` ending at
        ``up_to``, after what is queued."""
        data = self.market_abi.encode_call(function, *args, up_to)
        return self.txq.estimate(f"{function} {args[0]}", self._deployed().market, data)

    def _settle_args(self, interval: int) -> tuple[list[int], list[int], list[int]]:
        """The settlement's lists: delivered trades, readings, the parties hint."""
        cache = self._interval(interval)
        parties = settlement_parties(interval, cache.delivery, cache.readings)
        return enc.pack_trades(cache.delivery), cache.readings, parties

    def settle_gas(self, interval: int, up_to: int | None = None) -> int:
        """The node's gas estimate of the settlement page of ``interval`` ending at entry
        ``up_to`` (n checks, then n bookings for n readings; None: the whole settlement in
        one call), after what is queued (its readings recorded)."""
        trades, readings, parties = self._settle_args(interval)
        end = 2 * len(readings) if up_to is None else up_to
        return self.step_gas("settle", (interval, trades, readings, parties), end)

    def end_interval(self, interval: int) -> None:
        """Flush, seal the interval's block and persist its transactions."""
        self.txq.end_interval(interval)
        self.resume.finish()
        self._cache.pop(interval, None)
        self.presign.forget(interval)
        self._checkpoint("interval", interval)

    def _submit(
        self,
        label: str,
        interval: int,
        *args: Any,
        function: str | None = None,
        bids: int = 0,
    ) -> None:
        """Queue the Market call ``function(interval, *args)``; the function defaults to the
        label's first word (the step name under which its gas is counted)."""
        name = function or label.split()[0]
        data = self.market_abi.encode_call(name, interval, *args)
        self.txq.submit(label, self._deployed().market, data, interval, bids)

    def _interval(self, interval: int) -> IntervalCache:
        return self._cache.setdefault(interval, IntervalCache())

    def _recent_events(self) -> list[DecodedEvent]:
        """The Market's events of the transactions sent since the last call (flushed; a
        settlement paged among them made whole, :func:`merge_settlement_pages`)."""
        logs = [entry for res in self.txq.take_recent() for entry in res.logs]
        return merge_settlement_pages(self.market_abi.decode_logs(logs, self._deployed().market))

    def _one_event(self, label: str, name: str) -> DecodedEvent:
        """The one ``name`` event of the Market among the transactions just sent."""
        found = [e for e in self._recent_events() if e.name == name]
        if len(found) != 1:
            message = f"{label}: expected one {name} event, got {len(found)}"
            raise ChainError(message)
        return found[0]

    def _checkpoint(self, label: str, interval: int | None) -> None:
        entries, blocks = self.txq.take_txlog()
        if self.state_dir is not None:
            if self._txlog is None:
                self._txlog = store.TxLog.open(self.state_dir)
            self._txlog.append(label, interval, entries, self.txq.stats, blocks)
            if self.txq.journal is not None and entries:
                SentJournal(self.state_dir).clear()

    def stats(self) -> ChainStats:
        """Counters of the transactions sent (restored from the log on resume)."""
        return self.txq.stats
