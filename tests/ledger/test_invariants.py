"""Stateful fuzzing of the Market: random call sequences by every party, invariants after
every step.

A hypothesis ``RuleBasedStateMachine`` drives one fresh market per example through random
interleavings of: the operator (intervals, signed or mixed batches, honest or tampered
clearing, settlement, OPERATOR withdrawals), the DSO (signed or forged verdicts), members
(deposits, withdrawals, their own bids), meters (their own readings), the GRID account, an
outsider (stray tokens, expiry, calls it has no right to) and block advances. Each call's
outcome is predicted from the model and the chain's state before it (a success, or the
named error); after every step the books must hold: ``solvent()``, ``conserved()``, tokens
held >= deposits - withdrawals, balances sum to deposits - withdrawals, member debt is the
sum of negative balances, a lock only on a non-negative balance that covers it, and no
interval's phase ever goes backwards. Settlement must equal market/settlement.py.

``scripts/fuzz_market.py --steps N`` runs the same machine for long runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

import pytest
from eth_utils import to_checksum_address
from hypothesis import HealthCheck, settings
from hypothesis import seed as with_seed
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from ledgerkit import ZERO_SIG, Market, bus_of, lock_of, make_market

from gridledger.ledger import encoding as enc
from gridledger.ledger.deploy import ChainTiming
from gridledger.ledger.reference import clearing_call, settlement_parties
from gridledger.market import Bid, Side, Tariffs, clear_uniform, settle
from gridledger.market.orders import Trade

N = 3  # members 0..N-1
ROUNDS = 2
LIMIT_WH = 10_000
TARIFFS = Tariffs(retail_per_kwh_micro=300_000, feed_in_per_kwh_micro=80_000, tolerance_bp=300)
RETAIL = TARIFFS.retail_per_kwh_micro
TIMING = ChainTiming(round_blocks=2, reading_blocks=2, settle_blocks=6)
NONE, BIDDING, CLEARING, SECURITY, DELIVERY, SETTLED, EXPIRED = range(7)
HUGE = 1 << 200

members = st.integers(0, N - 1)
amounts = st.one_of(st.integers(0, 3_000_000), st.just(HUGE))
parties = st.sampled_from(["outsider", "operator", "grid", "member", "meter", "dso"])


@dataclass
class Counter:
    """Steps run by all machines of this process (reported by scripts/fuzz_market.py)."""

    steps: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)


COUNTER = Counter()


def _bid_of(data: st.DataObject, member: int, valid: bool = True) -> Bid:
    side = data.draw(st.sampled_from(Side))
    top_e, top_p = (LIMIT_WH, RETAIL) if valid else (LIMIT_WH + 50, RETAIL + 50)
    e_wh = data.draw(st.integers(1, top_e))
    price = data.draw(st.integers(0, top_p))
    return Bid(member, side, e_wh, price, bus_of(member))


class MarketMachine(RuleBasedStateMachine):
    """The Market under random calls of every party (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self.m: Market = make_market(
            n_members=N,
            rounds=ROUNDS,
            tariffs=TARIFFS,
            deposit=2_000_000,
            grid_deposit=10_000_000,
            limit_wh=LIMIT_WH,
            timing=TIMING,
        )
        self.cur = 0  # the interval being driven
        self.phase_seen: dict[int, int] = {}
        self.direct: dict[tuple[int, int], dict[int, int]] = {}  # (interval, round) -> words
        self.admitted: list[int] = []
        self.trades: tuple[Trade, ...] = ()
        self.readings: list[int] = []

    # ---------------------------------------------------------------- helpers
    def view(self, function: str, *args: object) -> object:
        return self.m.ledger.view(function, *args)[0]

    def state(self) -> tuple:
        return self.m.state(self.cur)

    def key_of(self, party: str, member: int = 0) -> bytes | None:
        m = self.m
        return {
            "outsider": m.outsider_key,
            "operator": None,
            "grid": m.grid_key,
            "member": m.member_key(member),
            "meter": m.meter_key(member),
            "dso": m.dso_key,
        }[party]

    def call(self, expected: str | None, function: str, *args: object, key=None) -> None:
        got = self.m.market_call(function, *args, key=key)
        assert got == expected, (function, args, got, expected)
        listed = {"recordRound": 3, "recordReadings": 1, "settle": 2}.get(function)
        per = 2 if function == "settle" else 1  # a settlement: a check and a booking per reading
        page = listed is not None and args[-1] != per * len(args[listed])  # type: ignore[arg-type]
        name = f"{function}{' page' if page else ''}:{got or 'ok'}"
        COUNTER.outcomes[name] = COUNTER.outcomes.get(name, 0) + 1

    # ------------------------------------------------------------------ money
    @rule(member=members, amount=st.integers(0, 5_000_000))
    def deposit(self, member: int, amount: int) -> None:
        if self.view("settlementPaging"):  # balances stay as a paged settlement checked them
            self.call("SettlementPaging", "deposit", member, amount)
            return
        self.m.deposit(member, amount)

    @rule(amount=st.integers(0, 5_000_000))
    def deposit_grid(self, amount: int) -> None:
        self.m.deposit_grid(amount)

    @rule(amount=st.integers(1, 1_000_000))
    def stray_tokens(self, amount: int) -> None:
        out = to_checksum_address(self.m.outsider)
        assert self.m.token_call("mint", out, amount) is None
        target = to_checksum_address(self.m.ledger.market)
        assert self.m.token_call("transfer", target, amount, key=self.m.outsider_key) is None

    @rule(
        member=members, amount=amounts, party=st.sampled_from(["member", "other"]), data=st.data()
    )
    def withdraw(self, member: int, amount: int, party: str, data: st.DataObject) -> None:
        if party == "member":
            free = int(self.view("freeMicro", member))
            expected = None if amount <= free else "InsufficientFreeBalance"
            if self.view("settlementPaging"):
                expected = "SettlementPaging"
            self.call(expected, "withdraw", member, amount, key=self.m.member_key(member))
            return
        who = data.draw(parties.filter(lambda p: p != "member"))
        key = self.key_of(who, member)
        self.call("NotMemberAccount", "withdraw", member, amount, key=key)

    @rule(amount=amounts, party=parties)
    def withdraw_grid(self, amount: int, party: str) -> None:
        to = to_checksum_address(self.m.outsider)
        if party != "grid":
            self.call("NotGrid", "withdrawGrid", to, amount, key=self.key_of(party, 1))
            return
        available = int(self.view("gridWithdrawableMicro"))
        expected = None if amount <= available else "UnbackedWithdrawal"
        if self.view("settlementPaging"):
            expected = "SettlementPaging"
        self.call(expected, "withdrawGrid", to, amount, key=self.m.grid_key)

    @rule(amount=amounts, party=parties)
    def withdraw_operator(self, amount: int, party: str) -> None:
        to = to_checksum_address(self.m.outsider)
        if party != "operator":
            self.call("NotOperator", "withdrawOperator", to, amount, key=self.key_of(party, 1))
            return
        available = int(self.view("operatorWithdrawableMicro"))
        expected = None if amount <= available else "UnbackedWithdrawal"
        if self.view("settlementPaging"):
            expected = "SettlementPaging"
        self.call(expected, "withdrawOperator", to, amount)

    # ---------------------------------------------------------------- blocks
    @rule(blocks=st.integers(1, 4))
    def seal(self, blocks: int) -> None:
        self.m.seal(blocks)

    @precondition(lambda self: self.m.phase(self.cur) in (SETTLED, EXPIRED))
    @rule()
    def next_interval(self) -> None:
        self.cur += 1

    # --------------------------------------------------------------- bidding
    @rule()
    def open_interval(self) -> None:
        expected = None if self.m.phase(self.cur) == NONE else "WrongPhase"
        self.call(expected, "openInterval", self.cur)

    @rule(member=members, valid=st.booleans(), data=st.data())
    def submit_bid(self, member: int, valid: bool, data: st.DataObject) -> None:
        bid = _bid_of(data, member, valid)
        word = enc.pack_bid(bid)
        st_ = self.state()
        round_ = int(st_[1])
        if st_[0] != BIDDING:
            expected: str | None = "WrongPhase"
        elif self.m.block() >= int(st_[6]) + TIMING.round_blocks:
            expected = "SubmissionClosed"
        elif bid.price_per_kwh_micro > RETAIL:
            expected = "PriceAboveCap"
        elif bid.e_wh > LIMIT_WH:
            expected = "AboveLimit"
        else:
            expected = None
        self.call(expected, "submitBid", self.cur, round_, word, key=self.m.member_key(member))
        if expected is None:
            self.direct.setdefault((self.cur, round_), {})[member] = word

    @rule(
        chosen=st.sets(members),
        binding=st.booleans(),
        attack=st.sampled_from(["none", "none", "drop", "replace", "forge"]),
        data=st.data(),
    )
    def record_round(
        self, chosen: set[int], binding: bool, attack: str, data: st.DataObject
    ) -> None:
        st_ = self.state()
        round_ = int(st_[1])
        direct = self.direct.get((self.cur, round_), {})
        entries: dict[int, tuple[int, bool]] = {}  # member -> (word, signed)
        for member in sorted(chosen | set(direct)):
            if member in direct:
                entries[member] = (direct[member], False)
            else:
                entries[member] = (enc.pack_bid(_bid_of(data, member)), True)
        expected: str | None = None
        if attack == "drop" and direct:
            del entries[min(direct)]
            expected = "DirectEntryMissing"
        elif attack == "replace" and direct:
            member = min(direct)
            other = enc.pack_bid(_bid_of(data, member))
            if other != direct[member]:
                entries[member] = (other, True)
                expected = "DirectEntryIgnored"
        elif attack == "forge" and chosen - set(direct):
            forged = min(chosen - set(direct))
            expected = "BadSignature"
        words, sigs = [], []
        for member, (word, signed) in entries.items():
            words.append(word)
            if signed:
                key = self.m.member_key(member)
                if attack == "forge" and member == forged:
                    key = self.m.member_key((member + 1) % N)
                sigs += enc.sign_compact(key, enc.bid_digest(self.m.domain, self.cur, round_, word))
            else:
                sigs += [ZERO_SIG, ZERO_SIG]
        binding = binding or round_ + 1 == ROUNDS
        deadline = int(st_[6]) + TIMING.round_blocks
        if st_[0] != BIDDING:
            expected = "WrongPhase"
        elif self.m.block() < deadline and len(words) != N:
            expected = "RoundStillOpen"
        elif expected is None and binding and self.view("hasPendingInterval"):
            expected = "IntervalPending"
        balances = {k: int(self.view("balanceMicro", k)) for k in entries}
        if expected is None and self.m.block() >= deadline and len(words) > 1:
            split = data.draw(st.integers(1, len(words)), label="round page")
            if split < len(words):  # a first page; the last records the round
                self.call(None, "recordRound", self.cur, round_, binding, words, sigs, split)
        self.call(expected, "recordRound", self.cur, round_, binding, words, sigs, len(words))
        if expected is None and binding:
            self.admitted = [
                w for w in words if lock_of(enc.unpack_bid(w), TARIFFS) <= balances[w >> 224]
            ]
            assert bytes(self.state()[9]) == enc.list_hash(self.admitted)
            for w in words:
                locked = int(self.view("lockedMicro", w >> 224))
                need = lock_of(enc.unpack_bid(w), TARIFFS)
                assert locked == (need if w in self.admitted else 0)

    # ---------------------------------------------------------------- clearing
    @rule(tamper=st.booleans())
    def clear(self, tamper: bool) -> None:
        words = list(self.admitted)
        phase = self.m.phase(self.cur)
        expected: str | None = None if phase == CLEARING else "WrongPhase"
        if tamper:
            words = [*words, enc.pack_bid(Bid(0, Side.BUY, 1, 1, bus_of(0)))]
            expected = expected or "HashMismatch"
        call = clearing_call("uniform", words, None, Fraction(1, 2))
        self.call(expected, "clear", self.cur, *call.args)
        if expected is None:
            self.trades = clear_uniform([enc.unpack_bid(w) for w in words]).trades
            assert bytes(self.state()[10]) == enc.list_hash(enc.pack_trades(self.trades))

    @rule(signer=st.sampled_from(["dso", "dso", "operator", "grid", "member"]))
    def record_security(self, signer: str) -> None:
        words = enc.pack_trades(self.trades)
        phase = self.m.phase(self.cur)
        key = {
            "dso": self.m.dso_key,
            "operator": enc.derive_key(self.m.seed, "operator"),
            "grid": self.m.grid_key,
            "member": self.m.member_key(0),
        }[signer]
        proof = self.m.security_proof(self.cur, words, 0, (), key)
        expected = "WrongPhase" if phase != SECURITY else None
        if expected is None and signer != "dso":
            expected = "BadDsoSignature"
        self.call(expected, "recordSecurity", self.cur, 0, words, proof, 1)

    # ---------------------------------------------------------------- delivery
    @rule(member=members, net=st.integers(-LIMIT_WH - 20, LIMIT_WH + 20), own=st.booleans())
    def submit_reading(self, member: int, net: int, own: bool) -> None:
        word = enc.pack_reading(member, net)
        st_ = self.state()
        key = self.m.meter_key(member if own else (member + 1) % N)
        if st_[0] != DELIVERY:
            expected: str | None = "WrongPhase"
        elif st_[2]:
            expected = "ReadingsAlreadyRecorded"
        elif self.m.block() >= int(st_[6]) + TIMING.reading_blocks:
            expected = "SubmissionClosed"
        elif not own:
            expected = "NotMemberMeter"
        elif abs(net) > LIMIT_WH:
            expected = "AboveLimit"
        else:
            expected = None
        self.call(expected, "submitReading", self.cur, word, key=key)
        if expected is None:
            self.direct.setdefault((self.cur, 256), {})[member] = word

    @rule(
        silent=st.sets(members),
        attack=st.sampled_from(["none", "none", "incomplete", "ignore_direct", "bad_default"]),
        data=st.data(),
    )
    def record_readings(self, silent: set[int], attack: str, data: st.DataObject) -> None:
        st_ = self.state()
        direct = self.direct.get((self.cur, 256), {})
        window_open = self.m.block() < int(st_[6]) + TIMING.reading_blocks
        entries: list[tuple[int, int, bool]] = []  # member, word, signed
        for member in range(N):
            if member in direct:
                entries.append((member, direct[member], False))
            elif member in silent:
                entries.append((member, enc.pack_reading(member, -LIMIT_WH), False))
            else:
                net = data.draw(st.integers(-LIMIT_WH, LIMIT_WH))
                entries.append((member, enc.pack_reading(member, net), True))
        expected: str | None = None
        signed_plain = [k for k, (m, _, s) in enumerate(entries) if s]
        if attack == "incomplete" and signed_plain:
            del entries[signed_plain[0]]
            expected = "ReadingsIncomplete"
        elif attack == "ignore_direct" and direct:
            k = min(direct)
            entries[k] = (k, enc.pack_reading(k, 0), True)
            expected = "DirectEntryIgnored"
        elif attack == "bad_default" and set(silent) - set(direct):
            k = min(set(silent) - set(direct))
            entries[k] = (k, enc.pack_reading(k, -LIMIT_WH + 1), False)
            expected = "DirectEntryMismatch"
        words: list[int] = []
        sigs: list[bytes] = []
        for member, word, signed in entries:
            words.append(word)
            if signed:
                key = self.m.meter_key(member)
                sigs += enc.sign_compact(key, enc.reading_digest(self.m.domain, self.cur, word))
            else:
                sigs += [ZERO_SIG, ZERO_SIG]
        first_default = next(
            (k for k, (m, w, s) in enumerate(entries) if not s and m not in direct), None
        )
        first_ignored = next((k for k, (m, w, s) in enumerate(entries) if s and m in direct), None)
        if st_[0] != DELIVERY:
            expected = "WrongPhase"
        elif st_[2]:
            expected = "ReadingsAlreadyRecorded"
        elif first_ignored is not None and (first_default is None or first_ignored < first_default):
            expected = "DirectEntryIgnored"
        elif first_default is not None and window_open:
            expected = "ReadingWindowOpen"
        if expected is None and len(words) > 1:
            split = data.draw(st.integers(1, len(words)), label="readings page")
            if split < len(words):
                self.call(None, "recordReadings", self.cur, words, sigs, split)
        self.call(expected, "recordReadings", self.cur, words, sigs, len(words))
        if expected is None:
            self.readings = words

    @rule()
    def settle(self) -> None:
        self._settle_page(None)

    @precondition(
        lambda self: (
            self.m.phase(self.cur) == DELIVERY
            and self.state()[2]
            and int(self.state()[8]) < 2 * len(self.readings) - 1
        )
    )
    @rule(cut=st.floats(0, 1), party=st.sampled_from(["operator", "outsider"]))
    def settle_page(self, cut: float, party: str) -> None:
        """Send a page of the settlement (not its last): the operator starts, anyone goes on."""
        start, entries = int(self.state()[8]), 2 * len(self.readings)
        self._settle_page(start + 1 + int(cut * (entries - 2 - start)), party)

    def _settle_page(self, up_to: int | None, party: str = "operator") -> None:
        """Settle up to entry ``up_to`` (n checks, then n bookings; None: the rest) and check
        what was booked."""
        st_ = self.state()
        trades, readings = self.trades, self.readings
        if st_[0] != DELIVERY or not st_[2]:
            self.call("WrongPhase", "settle", self.cur, [], [], [], 0)
            return
        start, n = int(st_[8]), len(readings)
        end = 2 * n if up_to is None else up_to
        metered = dict(enc.unpack_reading(w) for w in readings)
        deltas = settle(list(trades), metered, TARIFFS).deltas()
        before = {k: int(self.view("balanceMicro", k)) for k in range(N)}
        grid = int(self.view("gridBalanceMicro")) + deltas[-1]
        operator = int(self.view("operatorBalanceMicro")) + deltas[-2]
        debt = sum(max(0, -(before[k] + deltas[k])) for k in range(N))
        # the last check verifies the reserve, before anything is booked; no booking can fail
        short = start < n <= end and (grid < 0 or operator < 0 or grid + operator < debt)
        key = self.key_of(party, 1)
        expected = "NotOperator" if start == 0 and party != "operator" else None
        expected = expected or ("ReserveShort" if short else None)
        parties_ = settlement_parties(self.cur, trades, readings)
        words = enc.pack_trades(trades)
        self.call(expected, "settle", self.cur, words, readings, parties_, end, key=key)
        booked = list(metered)[max(start - n, 0) : max(end - n, 0)]
        page = set(booked) if expected is None else set()
        for k in range(N):
            assert int(self.view("balanceMicro", k)) == before[k] + (deltas[k] if k in page else 0)
        if expected is None:
            assert self.m.phase(self.cur) == (SETTLED if end == 2 * n else DELIVERY)

    @rule(offset=st.integers(0, 1), party=parties)
    def expire(self, offset: int, party: str) -> None:
        interval = self.cur + offset
        deadline = int(self.m.state(interval)[7])
        pending = self.view("hasPendingInterval") and self.view("pendingInterval") == interval
        ok = pending and self.m.block() > deadline
        expected = None if ok else "NotExpirable"
        state = self.m.state(interval)
        if ok and int(state[8]) > int(state[15]):
            expected = "SettlementUnderway"  # a settlement that booked a member is never voided
        self.call(expected, "expireInterval", interval, key=self.key_of(party, 2))

    # ------------------------------------------------------------ honest driving
    def _advance(self, data: st.DataObject) -> None:
        """One honest step of the current interval (so that random sequences reach every
        phase): open, pass the deadline and record a round, clear, the DSO's verdict,
        readings after the window, settlement with a funded GRID, the next interval."""
        phase = self.m.phase(self.cur)
        if phase == NONE:
            self.open_interval()
        elif phase == BIDDING and data.draw(st.booleans()):
            for member in sorted(data.draw(st.sets(members))):  # members bid themselves
                self.submit_bid(member, True, data)
        elif phase == BIDDING:
            self.m.seal_until(int(self.state()[6]) + TIMING.round_blocks)
            chosen = data.draw(st.sets(members))
            self.record_round(chosen, data.draw(st.booleans()), "none", data)
        elif phase == CLEARING:
            self.clear(False)
        elif phase == SECURITY:
            self.record_security("dso")
        elif phase == DELIVERY and not self.state()[2]:
            self.m.seal_until(int(self.state()[6]) + TIMING.reading_blocks)
            self.record_readings(data.draw(st.sets(members)), "none", data)
        elif phase == DELIVERY:
            self.m.reserve_up()
            if int(self.state()[8]) < len(self.readings) - 1 and data.draw(st.booleans()):
                party = data.draw(st.sampled_from(["operator", "outsider"]))
                self.settle_page(data.draw(st.floats(0, 1)), party)  # one page; more follow
            else:
                self.settle()
        else:
            self.cur += 1

    @precondition(lambda self: CLEARING <= self.m.phase(self.cur) <= DELIVERY)
    @rule(party=parties)
    def abandon(self, party: str) -> None:
        """The operator walks away from the pending interval: anyone expires it after its
        deadline, every lock is released and no money moves."""
        before = [int(self.view("balanceMicro", k)) for k in range(N)]
        self.m.seal_until(int(self.state()[7]) + 1)
        if int(self.state()[8]):
            self.call("SettlementUnderway", "expireInterval", self.cur, key=self.key_of(party, 2))
            return
        self.call(None, "expireInterval", self.cur, key=self.key_of(party, 2))
        assert self.m.phase(self.cur) == EXPIRED
        for k in range(N):
            assert int(self.view("lockedMicro", k)) == 0
            assert int(self.view("balanceMicro", k)) == before[k]
            assert int(self.view("freeMicro", k)) == before[k]

    @rule(data=st.data())
    def advance(self, data: st.DataObject) -> None:
        self._advance(data)

    @rule(data=st.data())
    def advance_more(self, data: st.DataObject) -> None:
        self._advance(data)

    @rule(data=st.data())
    def advance_again(self, data: st.DataObject) -> None:
        self._advance(data)

    # ------------------------------------------------------------ access control
    @rule(
        function=st.sampled_from(
            ["openInterval", "recordRound", "clear", "recordSecurity", "recordReadings", "settle"]
        ),
        party=parties.filter(lambda p: p != "operator"),
    )
    def not_operator(self, function: str, party: str) -> None:
        args = {
            "openInterval": (self.cur,),
            "recordRound": (self.cur, 0, True, [], [], 0),
            "clear": (self.cur, [], [], 0),
            "recordSecurity": (self.cur, 0, [], ([], [], [], [ZERO_SIG, ZERO_SIG]), 1),
            "recordReadings": (self.cur, [], [], 0),
            "settle": (self.cur, [], [], [], 0),
        }[function]
        expected = "NotOperator"
        if function == "settle" and int(self.state()[8]) and self.state()[0] == DELIVERY:
            expected = "HashMismatch"  # anyone may book the next page, with the right lists
        self.call(expected, function, *args, key=self.key_of(party, 1))

    # --------------------------------------------------------------- invariants
    @invariant()
    def books_hold(self) -> None:
        COUNTER.steps += 1
        v = self.view
        assert v("solvent") is True
        assert v("conserved") is True
        held = int(v("heldMicro"))  # totalDepositedMicro - totalWithdrawnMicro
        token = self.m.ledger.token_view("balanceOf", to_checksum_address(self.m.ledger.market))
        assert int(token[0]) >= held
        balances = [int(v("balanceMicro", k)) for k in range(N)]
        member_sum = int(v("memberBalanceSumMicro"))
        assert sum(balances) == member_sum
        settling = int(v("settlingMicro"))  # a paged settlement's booked member changes
        assert (
            member_sum - settling + int(v("gridBalanceMicro")) + int(v("operatorBalanceMicro"))
            == held
        )
        assert settling == 0 or v("settlementPaging") is True
        assert int(v("memberDebtMicro")) == sum(-b for b in balances if b < 0)
        for k, balance in enumerate(balances):
            locked = int(v("lockedMicro", k))
            # A lock only on a balance that covers it (free >= 0); debt never locked. While a
            # settlement is paged, booked members keep their lock until its last page
            # (withdrawals wait anyway).
            if not v("settlementPaging"):
                assert balance - locked >= 0 if balance >= 0 else locked == 0
        phase = self.m.phase(self.cur)
        before = self.phase_seen.get(self.cur, NONE)
        assert phase >= before and not (before == SETTLED and phase == EXPIRED)
        self.phase_seen[self.cur] = phase


def settings_for(steps_per_example: int, examples: int) -> settings:
    return settings(
        max_examples=examples,
        stateful_step_count=steps_per_example,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )


# Two halves of the CI budget (~2,000 steps), so pytest-xdist runs them side by side; each
# takes ~30 s on one core (over the fast lane's 20 s: marked slow).
MarketMachine.TestCase.settings = settings_for(50, 20)
TestMarketA = pytest.mark.slow(MarketMachine.TestCase)


class MarketMachineB(MarketMachine):
    """The same machine, a second test for the other worker."""


MarketMachineB.TestCase.settings = settings_for(50, 20)
TestMarketB = pytest.mark.slow(MarketMachineB.TestCase)


def run(steps: int, steps_per_example: int = 100, seed: int | None = None) -> Counter:
    """Run about ``steps`` steps (scripts/fuzz_market.py); the counter of steps and outcomes.
    ``seed`` makes the run repeatable (hypothesis ``@seed`` on a copy of the machine)."""
    examples = max(1, steps // steps_per_example)
    config = settings_for(steps_per_example, examples)
    machine: type[MarketMachine] = type("SeededMarketMachine", (MarketMachine,), {})
    if seed is not None:
        machine = with_seed(seed)(machine)
    run_state_machine_as_test(machine, settings=config)
    return COUNTER
