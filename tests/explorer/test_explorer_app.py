"""The explorer's pages through Flask's test client, on a short run off chain (fast lane)."""

from __future__ import annotations

import logging
import socket
import time
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from gridledger.cli import main
from gridledger.explorer.app import PortInUse, create_app, explorer_for, start_server
from gridledger.explorer.chain import ChainWatcher, interval_rows, member_balances
from gridledger.explorer.source import NotARunFolder
from gridledger.ledger.contracts import DecodedEvent

ROOT = Path(__file__).resolve().parents[2]
IEEE33 = ROOT / "scenarios" / "ieee33.toml"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("explorer") / "run"
    args = ["run", str(IEEE33), "--chain", "none", "--out", str(out), "-q"]
    args += ["--set", "horizon.intervals=2", "--set", "horizon.first_interval=48"]
    assert main(args) == 0
    return out


@pytest.fixture(scope="module")
def client(run_dir: Path) -> FlaskClient:
    return create_app(explorer_for(run_dir)).test_client()


def _text(client: FlaskClient, url: str, status: int = 200) -> str:
    response = client.get(url)
    assert response.status_code == status, url
    return response.get_data(as_text=True)


def test_overview_groups_key_figures_and_links_members(client: FlaskClient) -> None:
    page = _text(client, "/")
    for group in ("market", "grid", "settlement", "chain"):
        assert f"Key figures: {group}" in page
    assert "Mean trade distance" in page and "href='/member/0'" in page
    assert "<script src='/assets/plotly.min.js'>" not in page  # no chart there: no script


def test_timeline_charts_click_through_to_intervals(client: FlaskClient) -> None:
    page = _text(client, "/timeline")
    assert page.count("Plotly.newPlot") == 5
    assert "plotly_click" in page and "/interval/{}" in page
    assert "<script src='/assets/plotly.min.js'></script>" in page
    assert len(client.get("/assets/plotly.min.js").data) > 1_000_000


def test_interval_page_shows_every_part(client: FlaskClient) -> None:
    page = _text(client, "/interval/1")
    for title in (
        "Order book, round by round",
        "Clearing result",
        "Trades on the feeder map",
        "Security verdict and curtailments",
        "Readings against schedules",
        "Settlement per member",
    ):
        assert title in page
    assert "href='/interval/0'" in page  # previous interval


def test_member_and_audit_pages(client: FlaskClient) -> None:
    page = _text(client, "/member/20")
    assert "Bids of member 20" in page and "Balance of member 20" in page
    assert "made off chain" in _text(client, "/audit")


def test_unknown_interval_member_and_page_are_404(client: FlaskClient) -> None:
    assert "no interval 99" in _text(client, "/interval/99", 404)
    assert "no member 999" in _text(client, "/member/999", 404)
    _text(client, "/nowhere", 404)


def test_a_run_going_on_shows_the_live_page(tmp_path: Path) -> None:
    live = create_app(explorer_for(tmp_path, live=True)).test_client()
    page = _text(live, "/")
    assert "tables are not written yet" in page
    assert "http-equiv='refresh'" in page
    assert "tables are not written yet" in _text(live, "/interval/3")


def test_not_a_run_folder_and_port_in_use(tmp_path: Path, run_dir: Path) -> None:
    with pytest.raises(NotARunFolder, match="not a run folder"):
        explorer_for(tmp_path)
    with pytest.raises(NotARunFolder, match="no such folder"):
        explorer_for(tmp_path / "missing")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(PortInUse, match=f"--port {port}"):
            start_server(explorer_for(run_dir), port)


def test_unreachable_node_is_retried_with_backoff(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    watcher = ChainWatcher(tmp_path, "http://127.0.0.1:9", backoff_max_s=0.2)
    with caplog.at_level(logging.WARNING, logger="gridledger.explorer.chain"):
        watcher.start()
        deadline = time.time() + 120
        while time.time() < deadline and len(caplog.records) < 3:
            time.sleep(0.1)
        watcher.stop()
    assert "waiting for node http://127.0.0.1:9" in watcher.snapshot().status
    assert len(caplog.records) >= 3
    assert all(
        "unreachable" in r.getMessage() and "retrying" in r.getMessage() for r in caplog.records
    )


def _event(name: str, **args: object) -> DecodedEvent:
    return DecodedEvent(name=name, args=dict(args), block_number=1)


def test_chain_rows_and_member_balances_from_events() -> None:
    events = (
        _event("Deposited", account=3, amountMicro=5_000_000, **{"from": "0x0"}),
        _event("RoundRecorded", interval=0, round=0, binding=True),
        _event("IntervalCleared", interval=0, trades=(1, 2)),
        _event("SecurityRecorded", interval=0, verdict=0, curtailments=()),
        _event(
            "IntervalSettled",
            interval=0,
            members=(3, 4),
            deltasMicro=(-7_000_000, 7_000_000),
            gridDeltaMicro=0,
            operatorDeltaMicro=250_000,
        ),
    )
    rows = interval_rows(events)
    assert rows.iloc[0].to_dict() | {} == {
        "interval": 0,
        "rounds": 1,
        "trades": 2,
        "verdict": "secure",
        "curtailments": 0,
        "settled": True,
        "fee_revenue": 0.25,
        "grid_delta": 0.0,
    }
    assert member_balances(events, 3).to_dict() == {0: -2.0}  # a debt of 2 tokens
