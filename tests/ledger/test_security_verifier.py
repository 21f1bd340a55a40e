"""contracts/SecurityVerifier.sol against the integer reference (market/justification.py):
random networks, trades and verdicts are accepted or rejected alike, with the same named
error; every custom error has a test; justified ieee33 verdicts pass on chain."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from gridledger.errors import ChainError
from gridledger.ledger.backends import Backend, CallReverted, EmbeddedBackend
from gridledger.ledger.contracts import Artifact, artifact
from gridledger.ledger.deploy import create_address
from gridledger.ledger.encoding import address_of, derive_key, sign_transaction
from gridledger.ledger.network_data import (
    MAX_NETWORK_BYTES,
    NetworkDataTooLarge,
    check_recorded,
    data_contract_init_code,
    max_meshed_buses,
    max_radial_buses,
    network_hash,
    pack_margin,
    pack_network,
    unpack_margin,
    unpack_network,
    verifier_args,
)
from gridledger.ledger.shards import MAX_SHARD_BYTES, directory, init_code, split
from gridledger.market.justification import (
    DUAL_SCALE,
    LinearNetwork,
    RowMargin,
    UnjustifiedCurtailment,
    check_curtailments,
)
from gridledger.market.orders import Curtailment, Trade
from gridledger.scenario import load_scenario
from gridledger.security.congestion import CongestionSecurity, SecurityLimits
from gridledger.security.justification import justify
from gridledger.sim.loop import make_mechanism, run_interval
from gridledger.world import build_world

MAX_FEE_WEI = 10**9
STRESSED = Path(__file__).resolve().parents[2] / "scenarios" / "ieee33_stressed.toml"

DONE = 1 << 255  # SecurityVerifier.DONE: the page checked the last entry


class Rejected(ChainError):
    def __init__(self, error: str, args: tuple[Any, ...]) -> None:
        super().__init__(f"{error}{args}")
        self.error = error
        self.args_ = args


@dataclass(repr=False)
class Verifier:
    """A deployed SecurityVerifier plus the data contracts of the networks it was given."""

    backend: Backend
    key: bytes
    address: bytes
    abi: Artifact
    networks: dict[bytes, bytes]

    @classmethod
    def deploy(cls, label: bytes) -> Verifier:
        """A SecurityVerifier on a new embedded chain, sent by an account of ``label``."""
        key = derive_key(label, "dso")
        abi = artifact("SecurityVerifier")
        v = cls(EmbeddedBackend(funded=[address_of(key)]), key, b"", abi, {})
        v.address = v._create(abi.deploy_data(), 3_000_000)
        return v

    @property
    def sender(self) -> bytes:
        return address_of(self.key)

    def _create(self, code: bytes, gas: int) -> bytes:
        nonce = self.backend.nonce(self.sender)
        raw = sign_transaction(self.backend.chain_id, self.key, None, code, gas, nonce, MAX_FEE_WEI)
        (result,) = self.backend.send([raw])
        self.backend.seal()
        assert result.status, f"deploy failed, gas used {result.gas_used}"
        return create_address(self.sender, nonce)

    def data(self, raw: bytes) -> bytes:
        """Address of a data contract holding ``0x00 || raw`` (deployed once per content),
        or over one contract of the directory of ``raw``'s shards (as the ledger deploys)."""
        if raw not in self.networks:
            if len(raw) <= MAX_SHARD_BYTES:
                self.networks[raw] = self._create(data_contract_init_code(raw), 6_000_000)
            else:
                chunks = split(raw)
                at = [self._create(init_code(c), 6_000_000) for c in chunks]
                self.networks[raw] = self._create(init_code(directory(chunks, at)), 6_000_000)
        return self.networks[raw]

    def verify(
        self,
        net: LinearNetwork | bytes,
        rule: str,
        trades: Sequence[Trade],
        curtailments: Sequence[Curtailment],
        margins: Sequence[RowMargin],
        certificate: Sequence[int] = (),
        cfg: int | None = None,
    ) -> int:
        raw = net if isinstance(net, bytes) else pack_network(net)
        args = list(verifier_args(rule, trades, curtailments, margins, certificate))
        if cfg is not None:
            args[0] = cfg
        return int(self.call(self.data(raw), *args))

    def call(self, data: bytes, *args: Any) -> int:
        payload = self.abi.encode_call("verifyCurtailments", data, *args)
        try:
            out = self.backend.call(self.sender, self.address, payload)
        except CallReverted as error:
            found = self.abi.decode_error(error.data)
            assert found is not None, f"unknown revert 0x{error.data.hex()}"
            raise Rejected(found[0], tuple(found[1])) from error
        return int(self.abi.decode_output("verifyCurtailments", out)[0])

    def verify_pages(
        self,
        raw: bytes,
        rule: str,
        trades: Sequence[Trade],
        curtailments: Sequence[Curtailment],
        margins: Sequence[RowMargin],
        certificate: Sequence[int],
        cuts: Sequence[int],
    ) -> int:
        """verifyCurtailmentsPage over the pages between ``cuts`` (0 first, the last entry
        last), the trade terms carried as the Market carries them; the final cost."""
        args = verifier_args(rule, trades, curtailments, margins, certificate)
        data, carried, result = self.data(raw), 0, 0
        for a, b in itertools.pairwise(cuts):
            payload = self.abi.encode_call(
                "verifyCurtailmentsPage", data, *args, (a << 128) | b, carried
            )
            try:
                out = self.backend.call(self.sender, self.address, payload)
            except CallReverted as error:
                found = self.abi.decode_error(error.data)
                assert found is not None, f"unknown revert 0x{error.data.hex()}"
                raise Rejected(found[0], tuple(found[1])) from error
            result, terms = self.abi.decode_output("verifyCurtailmentsPage", out)
            carried += int(terms)
            assert (int(result) >= DONE) == (b == cuts[-1])
        return int(result) - DONE

    def gas(self, net: LinearNetwork, rule: str, *args: Any) -> int:
        payload = self.abi.encode_call(
            "verifyCurtailments", self.data(pack_network(net)), *verifier_args(rule, *args)
        )
        nonce = self.backend.nonce(self.sender)
        raw = sign_transaction(
            self.backend.chain_id, self.key, self.address, payload, 5_000_000, nonce, MAX_FEE_WEI
        )
        (result,) = self.backend.send([raw])
        self.backend.seal()
        assert result.status
        return int(result.gas_used)


@pytest.fixture(scope="module")
def verifier() -> Iterator[Verifier]:
    yield Verifier.deploy(b"tests-security-verifier")


def _outcome(fn: Any, *args: Any, **kw: Any) -> tuple[str, Any]:
    try:
        return "ok", fn(*args, **kw)
    except (Rejected, UnjustifiedCurtailment) as error:
        return error.error, error.args_


# ------------------------------------------------------------------ a small case
NET = LinearNetwork(
    n_buses=4,
    n_bus_rows=3,
    n_line_rows=3,
    n_trafo_rows=0,
    interval_s=900,
    relief=np.array(
        [
            [0, 100, 100, 100],  # bus 1 upper
            [0, 100, 300, 300],  # bus 2 upper
            [0, 100, 300, 600],  # bus 3 upper
            [0, 50, 50, 50],  # line 0 upward
            [0, 0, 50, 50],  # line 1 upward
            [0, 0, 0, 50],  # line 2 upward
        ],
        dtype=np.int64,
    ),
)
TRADES = (
    Trade(1, 2, 1_000, 120_000, 100_000, 0, 3),
    Trade(4, 5, 2_000, 90_000, 80_000, 1, 2),
    Trade(6, 7, 500, 90_000, 70_000, 2, 0),  # seller at the slack bus: relieves nothing
)


def _case(rule: str) -> tuple[tuple[Curtailment, ...], tuple[RowMargin, ...], tuple[int, ...]]:
    margin = np.array([5, -30_000, -90_000, 1, 1, 1], dtype=np.int64)
    j = justify(rule, NET, TRADES, margin, np.zeros(6, dtype=np.int64))
    assert j.curtailments
    return j.curtailments, j.margins, j.certificate


@pytest.mark.parametrize("rule", ["greedy", "lp"])
def test_justified_case_is_accepted_alike(verifier: Verifier, rule: str) -> None:
    curts, margins, cert = _case(rule)
    cost = check_curtailments(NET, rule, TRADES, curts, margins, cert)
    assert verifier.verify(NET, rule, TRADES, curts, margins, cert) == cost
    assert (
        check_recorded(
            pack_network(NET), rule, TRADES, *verifier_args(rule, TRADES, curts, margins, cert)[2:]
        )
        == cost
    )


def _expect(verifier: Verifier, error: str, *args: Any, **kw: Any) -> tuple[Any, ...]:
    chain = _outcome(verifier.verify, *args, **kw)
    assert chain[0] == error, chain
    if isinstance(args[0], LinearNetwork) and kw.get("cfg") is None:
        ref = _outcome(check_curtailments, *args)
        assert ref[0] == error, ref
    return tuple(chain[1])


def test_bad_security_config(verifier: Verifier) -> None:
    curts, margins, cert = _case("lp")
    assert _expect(verifier, "BadSecurityConfig", NET, "lp", TRADES, curts, margins, cert, cfg=2)
    ref = _outcome(check_curtailments, NET, "auction", TRADES, curts, margins, cert)
    assert ref[0] == "BadSecurityConfig"


def test_network_data_length(verifier: Verifier) -> None:
    curts, margins, _ = _case("greedy")
    raw = pack_network(NET)
    assert _expect(verifier, "NetworkDataLength", raw[:-4], "greedy", TRADES, curts, margins)
    bad_version = b"\x02" + raw[1:]
    assert _expect(verifier, "NetworkDataLength", bad_version, "greedy", TRADES, curts, margins)


def test_bad_trade_words(verifier: Verifier) -> None:
    curts, margins, _ = _case("greedy")
    cfg, trades, cw, mw, cert = verifier_args("greedy", TRADES, curts, margins, ())
    with pytest.raises(Rejected) as info:
        verifier.call(verifier.data(pack_network(NET)), cfg, trades[:-1], cw, mw, cert)
    assert info.value.error == "BadTradeWords"


def test_bad_margin(verifier: Verifier) -> None:
    curts, margins, _ = _case("greedy")
    unknown = (RowMargin("bus", 9999, -5), *margins)
    assert _expect(verifier, "BadMargin", NET, "greedy", TRADES, curts, unknown) == (0,)
    reversed_ = tuple(reversed(margins))
    assert _expect(verifier, "BadMargin", NET, "greedy", TRADES, curts, reversed_) == (1,)
    cfg, trades, cw, mw, cert = verifier_args("greedy", TRADES, curts, margins, ())
    with pytest.raises(Rejected) as info:
        verifier.call(verifier.data(pack_network(NET)), cfg, trades, cw, [mw[0] | 1, *mw[1:]], cert)
    assert info.value.error == "BadMargin"


def test_not_violated(verifier: Verifier) -> None:
    curts, margins, _ = _case("greedy")
    fine = (dataclasses.replace(margins[0], margin_npct=0), *margins[1:])
    assert _expect(verifier, "NotViolated", NET, "greedy", TRADES, curts, fine) == (0,)


def test_malformed_curtailment(verifier: Verifier) -> None:
    curts, margins, _ = _case("greedy")
    for bad in (
        dataclasses.replace(curts[0], trade_index=7),
        dataclasses.replace(curts[0], cut_wh=0),
    ):
        got = _expect(verifier, "MalformedCurtailment", NET, "greedy", TRADES, (bad,), margins)
        assert got == (0,)


def test_unknown_element(verifier: Verifier) -> None:
    """The issue's example: a curtailment naming bus 9999."""
    curts, margins, _ = _case("greedy")
    bad = (*curts, Curtailment(1, 1, "bus", 9999))
    assert _expect(verifier, "UnknownElement", NET, "greedy", TRADES, bad, margins) == (len(curts),)
    bad = (Curtailment(1, 1, "trafo", 0),)  # this network has no transformer
    assert _expect(verifier, "UnknownElement", NET, "greedy", TRADES, bad, margins) == (0,)


def test_no_margin(verifier: Verifier) -> None:
    curts, margins, _ = _case("greedy")
    bad = (*curts, Curtailment(1, 1, "line", 0))
    assert _expect(verifier, "NoMargin", NET, "greedy", TRADES, bad, margins) == (len(curts),)


def test_trade_does_not_load(verifier: Verifier) -> None:
    curts, margins, _ = _case("greedy")
    element, index = curts[0].element, curts[0].element_index
    bad = (*curts, Curtailment(2, 10, element, index))  # seller at the slack bus
    got = _expect(verifier, "TradeDoesNotLoad", NET, "greedy", TRADES, bad, margins)
    assert got == (len(curts),)


def test_cut_exceeds_trade(verifier: Verifier) -> None:
    curts, margins, _ = _case("greedy")
    c = curts[0]
    bad = (*curts, dataclasses.replace(c, cut_wh=TRADES[c.trade_index].e_wh - c.cut_wh + 1))
    got = _expect(verifier, "CutExceedsTrade", NET, "greedy", TRADES, bad, margins)
    assert got == (len(curts),)


def test_not_relieved(verifier: Verifier) -> None:
    curts, margins, _ = _case("greedy")
    short = (dataclasses.replace(curts[0], cut_wh=curts[0].cut_wh - 1), *curts[1:])
    got = _expect(verifier, "NotRelieved", NET, "greedy", TRADES, short, margins)
    assert got[0] in range(len(margins))
    more = tuple(dataclasses.replace(m, allowance_npct=10**6) for m in margins)
    assert _expect(verifier, "NotRelieved", NET, "greedy", TRADES, curts, more)


def test_certificate_length(verifier: Verifier) -> None:
    curts, margins, cert = _case("lp")
    assert _expect(verifier, "CertificateLength", NET, "lp", TRADES, curts, margins, cert[:-1])
    got = _expect(verifier, "CertificateLength", NET, "greedy", TRADES, curts, margins, cert)
    assert got == (0, len(cert))


def test_dual_out_of_range(verifier: Verifier) -> None:
    curts, margins, cert = _case("lp")
    big = (1 << 96, *cert[1:])
    assert _expect(verifier, "DualOutOfRange", NET, "lp", TRADES, curts, margins, big) == (0,)


def test_bad_curtailment_certificate(verifier: Verifier) -> None:
    """A feasible but wasteful cut (the most expensive trade instead of the cheapest) fails."""
    curts, margins, cert = _case("lp")
    # feasible, but 300 Wh more at the expensive trade than needed
    c = max(curts, key=lambda c: TRADES[c.trade_index].seller_price_per_kwh_micro)
    waste = tuple(dataclasses.replace(x, cut_wh=x.cut_wh + 300) if x == c else x for x in curts)
    assert check_curtailments(NET, "greedy", TRADES, waste, margins) > 0
    _expect(verifier, "BadCurtailmentCertificate", NET, "lp", TRADES, waste, margins, cert)
    zero = (0,) * len(cert)
    _expect(verifier, "BadCurtailmentCertificate", NET, "lp", TRADES, curts, margins, zero)


# --------------------------------------------------------------- differential
@st.composite
def verdicts(draw: st.DrawFn) -> tuple[Any, ...]:
    n_buses = draw(st.integers(2, 5))
    n_bus, n_line = n_buses - 1, draw(st.integers(0, n_buses - 1))
    n_trafo = draw(st.integers(0, 1))
    rows = n_bus + n_line + n_trafo
    relief = np.array(
        draw(st.lists(st.integers(-20, 4_000), min_size=rows * n_buses, max_size=rows * n_buses)),
        dtype=np.int64,
    ).reshape(rows, n_buses)
    relief[draw(st.integers(0, rows - 1)), 0] = 0
    return verdict_on(draw, LinearNetwork(n_buses, n_bus, n_line, n_trafo, 900, relief))


def verdict_on(draw: st.DrawFn, net: LinearNetwork) -> tuple[Any, ...]:
    """A verdict case on ``net``: trades (sellers on and off the network), the AC margins
    and allowances of every row, the rule, a tampering kind and a random stream."""
    n_buses, rows = net.n_buses, net.n_rows
    n_trades = draw(st.integers(1, 5))
    trades = tuple(
        Trade(
            2 * t,
            2 * t + 1,
            draw(st.integers(1, 3_000)),
            200_000,
            draw(st.integers(0, 150_000)),
            0,
            draw(st.integers(0, n_buses)),  # n_buses: a bus off the network
        )
        for t in range(n_trades)
    )
    margin = np.array(
        draw(st.lists(st.integers(-3_000_000, 200_000), min_size=rows, max_size=rows)),
        dtype=np.int64,
    )
    allowance = np.array(
        draw(st.lists(st.integers(0, 50_000), min_size=rows, max_size=rows)), dtype=np.int64
    )
    rule = draw(st.sampled_from(["greedy", "lp"]))
    return net, rule, trades, margin, allowance, draw(st.integers(0, 8)), draw(st.randoms())


def agree(
    verifier: Verifier, raw: bytes, case: tuple[Any, ...]
) -> tuple[tuple[str, Any], Any, Any, Any]:
    """Justify a verdict on the case's network, tamper with it as the case says, and check
    that the contract on the committed bytes ``raw`` and the reference on the network
    accept or reject it alike; the reference's outcome and the words checked."""
    net, rule, trades, margin, allowance, kind, rnd = case
    j = justify(rule, net, trades, margin, allowance)
    curts, margins, cert = _tamper(kind, rnd, trades, j.curtailments, j.margins, j.certificate)
    ref = _outcome(check_curtailments, net, rule, trades, curts, margins, cert)
    chain = _outcome(verifier.verify, raw, rule, trades, curts, margins, cert)
    event(chain[0])
    assert chain[0] == ref[0]
    assert tuple(chain[1]) == tuple(ref[1]) if ref[0] != "ok" else chain[1] == ref[1]
    if kind == 0:
        assert ref[0] == "ok"
    return ref, curts, margins, cert


def _tamper(
    kind: int,
    rnd: Any,
    trades: Sequence[Trade],
    curts: tuple[Curtailment, ...],
    margins: tuple[RowMargin, ...],
    cert: tuple[int, ...],
) -> tuple[tuple[Curtailment, ...], tuple[RowMargin, ...], tuple[int, ...]]:
    if kind == 0 or not curts:
        return curts, margins, cert
    k = rnd.randrange(len(curts))
    c = curts[k]
    if kind == 1:
        c = dataclasses.replace(c, cut_wh=max(0, c.cut_wh + rnd.choice([-1, 1, -50, 200])))
    elif kind == 2:
        c = dataclasses.replace(c, trade_index=rnd.randrange(len(trades) + 1))
    elif kind == 3:
        c = dataclasses.replace(
            c, element=rnd.choice(["bus", "line", "trafo"]), element_index=rnd.randrange(5)
        )
    elif kind == 4 and margins:
        i = rnd.randrange(len(margins))
        m = margins[i]
        m = dataclasses.replace(
            m, margin_npct=m.margin_npct + rnd.choice([-1000, 1000, -m.margin_npct])
        )
        return curts, (*margins[:i], m, *margins[i + 1 :]), cert
    elif kind == 5 and cert:
        i = rnd.randrange(len(cert))
        return curts, margins, (*cert[:i], cert[i] // 2, *cert[i + 1 :])
    elif kind == 6:
        return (*curts, c), margins, cert
    elif kind == 7 and margins:
        i = rnd.randrange(len(margins))
        return curts, (*margins[:i], *margins[i + 1 :]), cert[:i] + cert[i + 1 :]
    return (*curts[:k], c, *curts[k + 1 :]), margins, cert


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=verdicts())
def test_reference_and_contract_agree(verifier: Verifier, case: tuple[Any, ...]) -> None:
    net, rule, trades, *_ = case
    ref, curts, margins, cert = agree(verifier, pack_network(net), case)
    if ref[0] == "ok":  # the audit's check of the recorded words agrees
        words = verifier_args(rule, trades, curts, margins, cert)[2:]
        assert check_recorded(pack_network(net), rule, trades, *words) == ref[1]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=verdicts(), data=st.data())
def test_pages_check_what_one_call_checks(
    verifier: Verifier, case: tuple[Any, ...], data: st.DataObject
) -> None:
    """verifyCurtailmentsPage over any partition of the entries (the margin rows, the
    trades' terms of the lp bound, the final entry), the terms carried between pages,
    accepts exactly what one call accepts, with the same cost; a page past the end or an
    empty one is BadVerdictSpan."""
    net, rule, trades, *_ = case
    raw = pack_network(net)
    ref, curts, margins, cert = agree(verifier, raw, case)
    end = len(margins) + len(trades) + 1
    cuts = sorted({0, end, *data.draw(st.lists(st.integers(1, end), max_size=4))})
    paged = _outcome(verifier.verify_pages, raw, rule, trades, curts, margins, cert, cuts)
    assert (paged[0] == "ok") == (ref[0] == "ok"), (paged, ref)
    if ref[0] == "ok":
        assert paged[1] == ref[1]
        for bad in ([0, end + 1], [1, 1]):
            refused = _outcome(verifier.verify_pages, raw, rule, trades, curts, margins, cert, bad)
            assert refused[0] == "BadVerdictSpan"


# ------------------------------------------------------------------ data layout
def test_network_bytes_round_trip_and_limits() -> None:
    raw = pack_network(NET)
    assert len(raw) == 16 + 4 * 6 * 4 and raw[:2] == b"\x01\x09"
    back = unpack_network(raw)
    assert np.array_equal(back.relief, NET.relief) and back.interval_s == 900
    assert len(network_hash(raw)) == 32
    assert max_radial_buses() == 55
    assert max_meshed_buses() == 443
    n = 444
    big = LinearNetwork(n, n - 1, n - 1, 0, 900, np.zeros((2 * (n - 1), n), dtype=np.int64))
    with pytest.raises(NetworkDataTooLarge, match="64 data contracts"):
        pack_network(big)
    n = 56  # over one data contract: packed whole, deployed in shards
    big = LinearNetwork(n, n - 1, n - 1, 0, 900, np.zeros((2 * (n - 1), n), dtype=np.int64))
    assert len(pack_network(big)) == 16 + 4 * 110 * 56 > MAX_NETWORK_BYTES
    fits = LinearNetwork(55, 54, 54, 0, 900, np.zeros((108, 55), dtype=np.int64))
    assert len(pack_network(fits)) <= MAX_NETWORK_BYTES
    m = RowMargin("line", 3, -(1 << 40), 12345)
    assert unpack_margin(pack_margin(m)) == m


def test_margin_word_layout() -> None:
    w = pack_margin(RowMargin("trafo", 1, -1, 2))
    assert w >> 248 == 2 and (w >> 216) & 0xFFFFFFFF == 1
    assert (w >> 152) & ((1 << 64) - 1) == (1 << 64) - 1 and (w >> 88) & ((1 << 64) - 1) == 2
    assert w & ((1 << 88) - 1) == 0
    assert DUAL_SCALE == 10**18


# ---------------------------------------------------------------------- ieee33
@pytest.mark.parametrize(
    "rule",
    [pytest.param("greedy", marks=pytest.mark.slow), "lp"],  # greedy: slow lane, 6 s
)
def test_ieee33_stressed_verdicts_pass_on_chain(verifier: Verifier, rule: str) -> None:
    """The stressed day's curtailments are accepted on chain, at a bounded gas cost."""
    world = build_world(load_scenario(STRESSED, ['chain.backend="none"']))
    sec = CongestionSecurity(rule, SecurityLimits.from_spec(world.scenario.security))  # type: ignore[arg-type]
    net = sec.network(world.feeder, world.interval_h)
    assert len(pack_network(net)) == 16 + 4 * 64 * 33
    mechanism = make_mechanism(world)
    checked = 0
    gas = []
    for k in range(40, 66):
        s = run_interval(world, k, mechanism, sec).security
        if not s.curtailments:
            continue
        args = (s.trades, s.curtailments, s.margins, s.certificate)
        cost = check_curtailments(net, rule, *args)
        assert verifier.verify(net, rule, *args) == cost
        gas.append(verifier.gas(net, rule, *args))
        checked += 1
    assert checked >= 10
    # a 33-bus verdict (about 20 trades, a few rows) costs well under a block's gas
    assert max(gas) < 1_500_000


def lp_verdict_agrees(verifier: Verifier, net: LinearNetwork, raw: bytes) -> None:
    """An lp verdict cutting the deepest seller of ``net``'s tree for the row of a deep bus
    passes on chain from the committed bytes ``raw``, at the reference's cost."""
    assert net.tree is not None
    seller = int(np.argmax(net.tree.depth))
    row = next(r for r in range(net.n_bus_rows) if net.relief_at(r, seller) > 0)
    margin = np.zeros(net.n_rows, dtype=np.int64)
    margin[row] = -100
    trades = (Trade(0, 1, 500, 200_000, 50_000, 0, seller),)
    j = justify("lp", net, trades, margin, np.zeros(net.n_rows, dtype=np.int64))
    assert j.curtailed_wh > 0
    cost = verifier.verify(raw, "lp", trades, j.curtailments, j.margins, j.certificate)
    assert cost == check_curtailments(net, "lp", trades, j.curtailments, j.margins, j.certificate)
