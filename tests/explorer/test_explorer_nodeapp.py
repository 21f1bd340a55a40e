"""``gridledger serve --chain URL`` without a run folder, without a node (fast lane): the
tables derived from a Market's events, the node pages through Flask's test client, the
retries against an unreachable node and the bad inputs. The same on a real node (anvil)
is ``test_explorer_node.py::test_serve_chain_url_without_a_run_folder``."""

from __future__ import annotations

import logging
import re
import time

import pytest
from flask.testing import FlaskClient

from gridledger.cli import main
from gridledger.explorer.app import create_app, explorer_for_node
from gridledger.explorer.chain import ChainSnapshot
from gridledger.explorer.chaintables import chain_tables
from gridledger.explorer.node import (
    MarketOnChain,
    MarketParams,
    NodeView,
    NodeWatcher,
    code_matches,
    find_markets,
    market_topics,
    shipped_code,
)
from gridledger.ledger import encoding as enc
from gridledger.ledger.backends import LogEntry
from gridledger.ledger.contracts import DecodedEvent, artifact
from gridledger.market import Bid, Side, Tariffs, Trade
from gridledger.market.orders import Curtailment

PARAMS = MarketParams("greedy", 2, Tariffs(300_000, 80_000, 0), "0xtoken", "0xdso")
MARKET = MarketOnChain(b"\x11" * 20, 1, 20, True)
OLD = MarketOnChain(b"\x22" * 20, 0, 5, False)


def _event(name: str, block: int = 1, **args: object) -> DecodedEvent:
    return DecodedEvent(name=name, args=dict(args), block_number=block)


def _events() -> tuple[DecodedEvent, ...]:
    """Two members, one interval settled (a trade of 2 kWh cut by 0.5 kWh), one opened."""
    buy = Bid(member=0, side=Side.BUY, e_wh=2_000, price_per_kwh_micro=250_000, bus=3)
    sell = Bid(member=1, side=Side.SELL, e_wh=2_500, price_per_kwh_micro=100_000, bus=5)
    trade = Trade(0, 1, 2_000, 200_000, 150_000, 3, 5)
    cut = Curtailment(trade_index=0, cut_wh=500, element="line", element_index=4)
    bids = [enc.pack_bid(buy), enc.pack_bid(sell)]
    cuts = [enc.pack_curtailment(cut)]
    readings = [enc.pack_reading(0, -1_500), enc.pack_reading(1, 1_500)]
    # 1.5 kWh delivered: the buyer pays 0.3 tokens, the seller gets 0.225, the fee is 0.075
    settled = {"members": (0, 1), "deltasMicro": (-300_000, 225_000), "gridDeltaMicro": 0}
    member = {"meter": "0xmeter", "limitWh": 10_000}
    return (
        _event("Deposited", account=0, amountMicro=5_000_000, **{"from": "0x0"}),
        _event("Deposited", account=1, amountMicro=5_000_000, **{"from": "0x0"}),
        _event("MemberRegistered", member=0, account="0xa0", bus=3, role=0, **member),
        _event("MemberRegistered", member=1, account="0xa1", bus=5, role=1, **member),
        _event("IntervalOpened", 2, interval=0, blockNumber=2),
        _event("RoundRecorded", 2, interval=0, round=0, binding=False, bids=bids),
        _event("RoundRecorded", 3, interval=0, round=1, binding=True, bids=bids),
        _event("IntervalCleared", 3, interval=0, rule=1, price=0, trades=enc.pack_trades([trade])),
        _event("ClearingWelfare", 3, interval=0, welfareWhMicro=100_000 * 2_000),
        _event("SecurityRecorded", 3, interval=0, verdict=1, curtailments=cuts),
        _event("CurtailmentEvidence", 3, interval=0, lostSurplusWhMicro=50_000_000),
        _event("ReadingsRecorded", 4, interval=0, readings=readings),
        _event("IntervalSettled", 4, interval=0, operatorDeltaMicro=75_000, **settled),
        _event("IntervalOpened", 5, interval=1, blockNumber=5),
    )


@pytest.fixture
def client() -> FlaskClient:
    explorer = explorer_for_node("http://127.0.0.1:9")  # never started: no node needed
    explorer.watcher.view = NodeView((OLD, MARKET), MARKET, PARAMS, 6)
    explorer.watcher._snapshot = ChainSnapshot("node test: 1 intervals settled", _events())
    return create_app(explorer).test_client()


def _text(client: FlaskClient, url: str, status: int = 200) -> str:
    response = client.get(url)
    assert response.status_code == status, url
    return response.get_data(as_text=True)


def test_tables_from_events_decode_rounds_trades_curtailments_and_settlement() -> None:
    tables = chain_tables(_events(), PARAMS)
    iv = tables.intervals.set_index("interval")
    assert list(iv.index) == [0, 1] and list(iv["rounds"]) == [2, 0]
    assert iv.loc[0, "traded_kwh"] == 1.5 and iv.loc[0, "curtailed_kwh"] == 0.5
    assert iv.loc[0, "verdict"] == "curtailed" and iv.loc[0, "fees"] == 0.075
    assert iv.loc[0, "bid_surplus"] == 0.2 and iv.loc[0, "lost_surplus"] == 0.05
    assert bool(iv.loc[0, "settled_on_chain"]) and not bool(iv.loc[1, "settled"])
    assert len(tables.rounds) == 4 and set(tables.rounds["side"]) == {"buy", "sell"}
    trade = tables.trades.iloc[0]
    assert (trade["cleared_kwh"], trade["e_kwh"], trade["fee_per_kwh"]) == (2.0, 1.5, 0.05)
    st = tables.settlement.set_index("member")
    assert st.loc[0, "p2p_paid"] == 0.3 and st.loc[1, "p2p_received"] == 0.225
    assert list(st["net"]) == list(st["net_on_chain"]) == [-0.3, 0.225]
    assert list(tables.members["role"]) == ["consumer", "producer"]


def test_node_pages_show_what_the_chain_holds_and_name_what_it_does_not(
    client: FlaskClient,
) -> None:
    overview = _text(client, "/")
    assert f"following Market {MARKET.hex}" in overview and OLD.hex in overview
    for group in ("market", "security", "settlement", "chain"):
        assert f"Key figures: {group}" in overview
    assert "Not on chain (needs the run folder)" in overview and "href='/member/1'" in overview
    assert _text(client, "/timeline").count("Plotly.newPlot") == 4
    interval = _text(client, "/interval/0")
    assert "Order book, round by round" in interval and "Settlement per member" in interval
    assert "line" in interval and "curtailed" in interval
    assert "not recorded on chain for this interval yet" in _text(client, "/interval/1")
    member = _text(client, "/member/0")
    assert "Balance of member 0" in member and "not on chain" in member
    assert "no interval 7" in _text(client, "/interval/7", 404)
    assert "no member 5" in _text(client, "/member/5", 404)


def test_before_a_market_is_found_every_page_says_so() -> None:
    explorer = explorer_for_node("http://127.0.0.1:9")
    page = _text(create_app(explorer).test_client(), "/timeline")
    assert "no Market followed yet" in page and "http-equiv='refresh'" in page


def test_unreachable_node_without_folder_is_retried_with_backoff(
    caplog: pytest.LogCaptureFixture,
) -> None:
    explorer = explorer_for_node("http://127.0.0.1:9")
    explorer.watcher.backoff_max_s = 0.2
    with caplog.at_level(logging.WARNING, logger="gridledger.explorer.chain"):
        explorer.watcher.start()
        deadline = time.time() + 120  # a guard against a hang, not a speed check
        while time.time() < deadline and len(caplog.records) < 3:
            time.sleep(0.05)
        explorer.watcher.stop()
    assert "waiting for node http://127.0.0.1:9" in explorer.watcher.snapshot().status
    assert len(caplog.records) >= 3
    assert all("unreachable" in r.getMessage() for r in caplog.records)
    page = _text(create_app(explorer).test_client(), "/")
    assert "waiting for node http://127.0.0.1:9" in page


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(["serve"], "give a run folder (RUN_DIR), or --chain URL", id="nothing"),
        pytest.param(
            ["serve", "--chain", "http://127.0.0.1:9", "--market", "0x12"],
            "--market '0x12': not a contract address",
            id="market",
        ),
        pytest.param(
            ["serve", "runs/x", "--market", "0x" + "11" * 20], "--market: only without", id="both"
        ),
        pytest.param(["serve", "--chain", "ftp://x"], "not a usable node URL", id="url"),
    ],
)
def test_serve_without_folder_bad_input(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_code_check_ignores_only_the_immutables() -> None:
    assert not code_matches(b"")
    assert not code_matches(b"\x60" * 100)
    # the linked library must be the shipped EntryChecker too
    library = bytes.fromhex(artifact("EntryChecker").deployed_hex)
    assert code_matches(shipped_code(), {bytes(20): library}.__getitem__)
    assert not code_matches(shipped_code(), {bytes(20): b"\x60\x00"}.__getitem__)


class _StubNode:
    """The calls discovery makes, on a chain of three Markets: two ours, one whose code is
    not, and one running our code whose desk has another operator than the Market."""

    def __init__(self, head: int) -> None:
        self.head = head
        ours = shipped_code()  # linked to a library at address zero, the shipped EntryChecker
        library = bytes.fromhex(artifact("EntryChecker").deployed_hex)
        desk = bytes.fromhex(
            re.sub(r"__\$[0-9a-f]{34}\$__", "0" * 40, artifact("MarketDesk").deployed_hex)
        )
        self.desks = {
            b"\x01" * 20: b"\x11" * 20,
            b"\x03" * 20: b"\x13" * 20,
            b"\x04" * 20: b"\x14" * 20,
        }
        self.codes = {
            b"\x01" * 20: ours,
            b"\x02" * 20: b"\x60\x00",
            b"\x03" * 20: ours,
            b"\x04" * 20: ours,
            bytes(20): library,
            **{d: desk for d in self.desks.values()},
        }
        topic = market_topics()[0]
        self.entries = [
            LogEntry(b"\x01" * 20, (topic,), b"", 3),
            LogEntry(b"\x04" * 20, (topic,), b"", 4),
            LogEntry(b"\x02" * 20, (topic,), b"", 5),
            LogEntry(b"\x03" * 20, (topic,), b"", 8),
            LogEntry(b"\x03" * 20, (topic,), b"", 9),
        ]

    def block_number(self) -> int:
        return self.head

    def find_logs(self, query: dict[str, object]) -> list[LogEntry]:
        first, last = int(str(query["fromBlock"]), 16), int(str(query["toBlock"]), 16)
        return [e for e in self.entries if first <= e.block_number <= last]

    def code(self, address: bytes) -> bytes:
        return self.codes[address]

    def call(self, sender: bytes, to: bytes, data: bytes) -> bytes:
        abi = artifact("Market")
        if data == abi.encode_call("desk"):
            return bytes(12) + self.desks[to]
        if to == b"\x14" * 20 and data == abi.encode_call("operator"):
            return bytes(12) + b"\x09" * 20  # not the Market's operator
        return bytes(31) + b"\x01"


def test_discovery_follows_the_newest_shipped_market_or_the_one_named() -> None:
    node = _StubNode(head=6)
    found = find_markets(node)  # type: ignore[arg-type]
    assert [(m.address[0], m.first_block, m.code_matches) for m in found] == [
        (1, 3, True),
        (4, 4, False),  # the shipped Market's code, but its desk has another operator
        (2, 5, False),  # emits Market events, but its code is not the shipped Market's
    ]
    watcher = NodeWatcher(url="stub")
    watcher._scan(node)  # type: ignore[arg-type]
    chosen = watcher._choose()
    assert chosen is not None and chosen.address == b"\x01" * 20
    node.head = 10  # a newer Market appears: the scan goes on from block 7
    watcher._scan(node)  # type: ignore[arg-type]
    chosen = watcher._choose()
    assert chosen is not None and (chosen.address, chosen.events) == (b"\x03" * 20, 2)
    watcher.market = b"\x01" * 20  # --market
    assert watcher._choose() == found[0]
    node.head = 2  # the node restarted: discovery starts again
    watcher._scan(node)  # type: ignore[arg-type]
    assert watcher._found == {}


@pytest.mark.parametrize("count", [4, 5, 8, 11], ids=["members", "opened", "cleared", "read"])
def test_every_page_of_a_market_part_way_through_an_interval(count: int) -> None:
    explorer = explorer_for_node("http://127.0.0.1:9")
    explorer.watcher.view = NodeView((MARKET,), MARKET, PARAMS, 6)
    explorer.watcher._snapshot = ChainSnapshot("node test", _events()[:count])
    client = create_app(explorer).test_client()
    for url in ("/", "/timeline", "/member/0", "/member/1"):
        _text(client, url)
    _text(client, "/interval/0", 404 if count < 5 else 200)
