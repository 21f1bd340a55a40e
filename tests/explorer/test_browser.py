"""The explorer in a real browser: headless Chromium (Debian's chromium and chromium-driver)
driven by Selenium, on a short run on the embedded chain served from a thread.

Every page is opened; each must log no console error, draw its charts (plotly SVG with
traces) and load nothing from outside 127.0.0.1. Navigation goes timeline -> interval ->
member. Screenshots are saved under the pytest temp dir. Without chromium, chromedriver
or selenium the tests skip, saying which is missing.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gridledger.cli import main
from gridledger.explorer.app import (
    explorer_for,
    explorer_for_node,
    serve_in_background,
    start_server,
)
from gridledger.ledger.anvil import find_anvil, start_anvil

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
By = pytest.importorskip("selenium.webdriver.common.by").By

pytestmark = pytest.mark.slow  # the run on the embedded chain alone takes ~15 s

BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
SHORT = ["--set", "horizon.first_interval=48", "--set", "horizon.intervals=3"]


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if BROWSER is None or DRIVER is None:
        pytest.skip("no chromium / chromedriver (apt-get install chromium chromium-driver)")
    out = tmp_path_factory.mktemp("served") / "run"
    assert main(["run", "ieee33", *SHORT, "-q", "--chain", "embedded", "--out", str(out)]) == 0
    server = start_server(explorer_for(out), 0)
    serve_in_background(server)
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture(scope="module")
def node_base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The explorer of an anvil node alone (``serve --chain URL``, no run folder), after a
    two-interval run on that node."""
    if find_anvil() is None:
        pytest.skip("anvil not found: run `npm ci` (node_modules/@foundry-rs/anvil-*)")
    tmp = tmp_path_factory.mktemp("node")
    with pytest.MonkeyPatch.context() as patch, start_anvil() as node:
        patch.setenv("GRIDLEDGER_KEY_PASSWORD", "browser-test")
        keys = ["keys", "init", str(tmp / "keys"), "--scenario", "ieee33", "--scrypt-n", "1024"]
        assert main(keys) == 0
        run = ["run", "ieee33", "--set", "horizon.first_interval=48", "--set"]
        run += ["horizon.intervals=2", "-q", "--out", str(tmp / "run"), "--chain", node.url]
        assert main([*run, "--keys", str(tmp / "keys")]) == 0
        explorer = explorer_for_node(node.url)
        explorer.watcher.poll_s = 0.2
        server = start_server(explorer, 0)
        serve_in_background(server)
        for _ in range(300):  # until the watcher has read the run's chain
            if "2 intervals settled" in explorer.watcher.snapshot().status:
                break
            time.sleep(0.1)
        yield f"http://127.0.0.1:{server.server_port}"
        server.shutdown()
        explorer.watcher.stop()


@pytest.fixture(scope="module")
def browser(base_url: str) -> Iterator[Any]:
    options = webdriver.ChromeOptions()
    options.binary_location = BROWSER
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(arg)
    options.add_argument("--window-size=1280,1400")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(DRIVER))
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("screenshots")


def _open(driver: Any, url: str, shots: Path, name: str, charts: int = 0) -> None:
    """Open ``url``, wait for ``charts`` drawn charts, check the console and the network."""
    driver.get(url)
    if charts:
        script = (
            "return [...document.querySelectorAll('.chart')].filter(c => "
            "c.querySelector('svg.main-svg') && "
            "c.querySelectorAll('.scatterlayer .trace, .barlayer .trace').length > 0).length"
        )
        for _ in range(100):
            if driver.execute_script(script) >= charts:
                break
            time.sleep(0.1)
        assert driver.execute_script(script) >= charts, f"{url}: charts not drawn"
    driver.save_screenshot(str(shots / f"{name}.png"))
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == [], f"{url}: console errors {errors}"
    resources = driver.execute_script(
        "return performance.getEntriesByType('resource').map(r => r.name)"
    )
    assert all(r.startswith("http://127.0.0.1:") for r in resources), resources


def _click_to_interval_1(
    driver: Any, base_url: str, shots: Path, chart: str, name: str, charts: int
) -> None:
    """A click on a point of interval 1 in the timeline's ``chart`` opens that interval
    (plotly's click event, as the mouse sends it)."""
    driver.execute_script(
        f"document.getElementById('{chart}').emit('plotly_click', {{points: [{{customdata: 1}}]}})"
    )
    _open(driver, driver.current_url, shots, name, charts=charts)
    assert driver.current_url == f"{base_url}/interval/1"


def _follow_member_link(driver: Any, shots: Path, name: str) -> None:
    """The page's first link to a member opens that member's page and its three charts."""
    link = driver.find_element(By.CSS_SELECTOR, "a[href^='/member/']")
    target = link.get_attribute("href")
    link.click()
    _open(driver, driver.current_url, shots, name, charts=3)
    assert driver.current_url == target


def test_every_page_renders_without_console_errors(
    browser: Any, base_url: str, shots: Path
) -> None:
    _open(browser, f"{base_url}/", shots, "overview")
    assert "Key figures: market" in browser.page_source
    _open(browser, f"{base_url}/timeline", shots, "timeline", charts=5)
    for interval in (0, 1, 2):
        _open(browser, f"{base_url}/interval/{interval}", shots, f"interval-{interval}", charts=5)
    _open(browser, f"{base_url}/member/20", shots, "member-20", charts=3)
    _open(browser, f"{base_url}/audit", shots, "audit-running")
    for _ in range(60):  # the audit replays the chain in the background; the page reloads
        if "Audit: OK" in browser.find_element(By.TAG_NAME, "body").text:
            break
        time.sleep(1)
    _open(browser, browser.current_url, shots, "audit")
    assert "Audit: OK" in browser.find_element(By.TAG_NAME, "body").text
    assert len(list(shots.glob("*.png"))) == 8


def test_navigation_timeline_interval_member(browser: Any, base_url: str, shots: Path) -> None:
    _open(browser, f"{base_url}/timeline", shots, "nav-timeline", charts=5)
    _click_to_interval_1(browser, base_url, shots, "chart-2", "nav-interval", charts=5)
    browser.find_element(By.PARTIAL_LINK_TEXT, "next >").click()
    assert browser.current_url == f"{base_url}/interval/2"
    _follow_member_link(browser, shots, "nav-member")
    assert "Balance of member" in browser.page_source


def test_node_without_run_folder_in_the_browser(
    browser: Any, node_base_url: str, shots: Path
) -> None:
    """``serve --chain URL`` alone: every page from the chain's events, charts drawn, no
    console errors, navigation timeline -> interval -> member."""
    _open(browser, f"{node_base_url}/", shots, "node-overview")
    assert "Key figures: market" in browser.page_source
    assert "Not on chain (needs the run folder)" in browser.page_source
    _open(browser, f"{node_base_url}/timeline", shots, "node-timeline", charts=4)
    _click_to_interval_1(browser, node_base_url, shots, "chart-3", "node-interval", charts=4)
    _follow_member_link(browser, shots, "node-member")
    assert "escrow balance on chain" in browser.page_source
    _open(browser, f"{node_base_url}/audit", shots, "node-audit")
