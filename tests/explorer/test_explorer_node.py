"""The explorer follows a run on a JSON-RPC node (anvil): the chain's events as intervals
settle, read-only, with the run's contracts named by its folder."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gridledger.cli import main
from gridledger.explorer.app import create_app, explorer_for
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
        deadline = time.time() + 30
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
