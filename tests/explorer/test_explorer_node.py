"""The explorer follows a run on a JSON-RPC node (anvil): the chain's events as intervals
settle, read-only, with the run's contracts named by its folder, or without a folder
(``serve --chain URL``) from the Market it finds on the node."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from tests.procs import interruptible

from gridledger.cli import main
from gridledger.explorer.app import create_app, explorer_for, explorer_for_node
from gridledger.explorer.nodeapp import NodeExplorer
from gridledger.ledger.anvil import find_anvil, start_anvil

pytestmark = [pytest.mark.anvil, pytest.mark.slow]


@pytest.fixture(scope="module")
def anvil_url() -> Iterator[str]:
    if find_anvil() is None:
        pytest.skip("anvil not found: run `npm ci` (node_modules/@foundry-rs/anvil-*)")
    with start_anvil() as node:
        yield node.url


def test_pages_follow_the_node_as_intervals_settle(
    anvil_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRIDLEDGER_KEY_PASSWORD", "explorer-test")
    keys, out = tmp_path / "keys", tmp_path / "run"
    assert main(["keys", "init", str(keys), "--scenario", "ieee33", "--scrypt-n", "1024"]) == 0
    run = ["run", "ieee33", "--set", "horizon.first_interval=48", "-q", "--out", str(out)]
    run += ["--chain", anvil_url, "--keys", str(keys)]
    out.mkdir()
    explorer = explorer_for(out, anvil_url, live=True)  # served before the run starts
    explorer.watcher.poll_s = 0.1
    explorer.watcher.backoff_max_s = 0.5
    explorer.watcher.start()
    seen: list[str] = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            seen.append(explorer.watcher.snapshot().status)
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()

    def settled(count: int) -> None:
        deadline = time.time() + 180
        while f"{count} intervals settled" not in explorer.watcher.snapshot().status:
            assert time.time() < deadline, explorer.watcher.snapshot().status
            time.sleep(0.1)

    try:
        # the run goes on in two parts, so the explorer must show the first part settled
        # while the chain is still to get the rest (no race with the node's speed)
        assert main([*run, "--set", "horizon.intervals=2"]) == 0
        settled(2)
        assert main([*run, "--set", "horizon.intervals=4", "--resume"]) == 0
        settled(4)
        page = create_app(explorer).test_client().get("/").get_data(as_text=True)
    finally:
        done.set()
        explorer.watcher.stop()
    counts = {int(m.group(1)) for s in seen if (m := re.search(r"(\d+) intervals settled", s))}
    assert {2, 4} <= counts, seen  # the pages followed the chain as intervals settled
    assert any(s.startswith("cannot read the chain") for s in seen)  # before ledger.json
    assert f"node {anvil_url}: 4 intervals settled" in page
    assert "http-equiv='refresh'" in page  # pages on a node reload themselves


def _wait_for(explorer: NodeExplorer, text: str) -> None:
    deadline = time.time() + 180  # a guard against a hang, not a speed check
    while text not in explorer.watcher.snapshot().status:
        assert time.time() < deadline, explorer.watcher.snapshot().status
        time.sleep(0.05)


def test_serve_chain_url_without_a_run_folder(
    anvil_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``serve --chain URL`` alone: the Market is found on the node from its events, the
    pages are drawn from the events only and follow the node as intervals settle."""
    monkeypatch.setenv("GRIDLEDGER_KEY_PASSWORD", "explorer-test")
    keys, out = tmp_path / "keys", tmp_path / "run"
    assert main(["keys", "init", str(keys), "--scenario", "ieee33", "--scrypt-n", "1024"]) == 0
    run = ["run", "ieee33", "--set", "horizon.first_interval=48", "-q", "--out", str(out)]
    run += ["--chain", anvil_url, "--keys", str(keys)]
    explorer = explorer_for_node(anvil_url)  # no folder; served before the run starts
    explorer.watcher.poll_s = 0.1
    explorer.watcher.start()
    client = create_app(explorer).test_client()
    try:
        assert main([*run, "--set", "horizon.intervals=2"]) == 0
        _wait_for(explorer, "2 intervals settled")
        market = explorer.watcher.view.market
        assert market is not None and market.code_matches
        newest = max(explorer.watcher.view.markets, key=lambda m: m.first_block)
        assert market == newest  # other tests on this node may have left older Markets
        first = client.get("/").get_data(as_text=True)
        kpis = json.loads((out / "summary.json").read_text())  # of the first two intervals
        assert main([*run, "--set", "horizon.intervals=3", "--resume"]) == 0
        _wait_for(explorer, "3 intervals settled")  # the pages follow the node
        pages = {url: client.get(url) for url in ("/", "/timeline", "/interval/2", "/member/20")}
    finally:
        explorer.watcher.stop()
    assert all(r.status_code == 200 for r in pages.values())
    overview, timeline = (pages[u].get_data(as_text=True) for u in ("/", "/timeline"))
    assert f"following Market {market.hex}" in overview
    assert "http-equiv='refresh'" in overview  # pages reload themselves as the node goes on
    # the figures derived from events equal the run folder's (of the run's first part: a
    # resumed run's folder re-simulates the intervals settled before it)
    for key in ("traded_kwh", "mean_buyer_price_per_kwh", "mean_seller_price_per_kwh"):
        assert f"<td>{kpis[key]:,.4f}</td>" in first, key
    last = pd.read_csv(out / "intervals.csv").set_index("interval").loc[2, "traded_kwh"]
    assert "Interval 2 (opened in block" in pages["/interval/2"].get_data(as_text=True)
    assert f"{last:.1f} kWh traded" in pages["/interval/2"].get_data(as_text=True)
    assert "3 / 3" in overview  # intervals settled, and settlement re-derived for each
    assert "Not on chain (needs the run folder)" in overview
    assert timeline.count("Plotly.newPlot") == 4 and "/interval/{}" in timeline
    interval = pages["/interval/2"].get_data(as_text=True)
    for title in (
        "Order book, round by round",
        "Clearing result",
        "buses, not the feeder",
        "Security verdict and curtailments",
        "Readings against schedules",
        "Settlement per member",
    ):
        assert title in interval, title
    member = pages["/member/20"].get_data(as_text=True)
    assert "Bids of member 20" in member and "escrow balance on chain" in member
    assert client.get("/interval/7").status_code == 404
    assert client.get("/member/999").status_code == 404
    deadline = time.time() + 180
    while "Audit: " not in (text := client.get("/audit").get_data(as_text=True)):
        assert time.time() < deadline, text
        time.sleep(0.1)
    assert "Audit: <strong>OK" in text or "Audit: <b>OK" in text, text
    chosen = explorer_for_node(anvil_url, market.hex)  # --market picks a Market
    chosen.watcher.poll_s = 0.1
    chosen.watcher.start()
    try:
        _wait_for(chosen, f"Market {market.hex}: 3 intervals settled")
    finally:
        chosen.watcher.stop()
    # the command itself: `gridledger serve --chain URL`, no folder, until Ctrl-C
    argv = [sys.executable, "-m", "gridledger.cli", "serve", "--chain", anvil_url, "--port", "0"]
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=interruptible
    )
    try:
        assert proc.stdout is not None
        served = re.search(r"http://127\.0\.0\.1:\d+/", proc.stdout.readline())
        assert served is not None
        page, deadline = "", time.time() + 180
        while f"Market {market.hex}: 3 intervals settled" not in page:
            assert time.time() < deadline, page
            time.sleep(0.2)
            with urllib.request.urlopen(served.group(0), timeout=60) as response:
                page = response.read().decode()
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=240)
    assert proc.returncode == 0 and "explorer stopped" in out, err
    assert "Traceback" not in err
