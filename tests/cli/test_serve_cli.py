"""Bad input to ``gridledger serve``: one message, an exit code, never a traceback; an
unreachable node is retried with backoff and Ctrl-C stops the explorer cleanly."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from tests.procs import interruptible

from gridledger.cli import main


def _run_marker(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "run.json").write_text("{}")
    return folder


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        pytest.param(["serve", "{tmp}"], 2, r"not a run folder \(none of run.json", id="empty"),
        pytest.param(["serve", "{tmp}/missing"], 2, r"missing: no such folder", id="missing"),
        pytest.param(["serve", "{tmp}/a-file.txt"], 2, r"a-file.txt: not a folder", id="file"),
        pytest.param(
            ["serve", "{run}", "--chain", "ftp://node"],
            2,
            r"--chain 'ftp://node': not a usable node URL",
            id="chain-url",
        ),
        pytest.param(
            ["serve", "{run}", "--port", "70000"], 2, r"--port 70000: not a TCP port", id="port"
        ),
        pytest.param(
            ["serve", "{run}", "--port", "{taken}"],
            2,
            r"--port \d+: cannot listen on 127.0.0.1:\d+ .*another --port",
            id="port-in-use",
        ),
    ],
)
def test_serve_bad_input(
    argv: list[str], code: int, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a-file.txt").write_text("x")
    run = _run_marker(tmp_path / "run")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        words = [w.format(tmp=tmp_path, run=run, taken=taken.getsockname()[1]) for w in argv]
        assert main(words) == code
    err = capsys.readouterr().err
    assert err.startswith("gridledger: error: ")
    assert re.search(message, err), err
    assert "Traceback" not in err


@pytest.mark.slow  # waits out the retries (about 7 s)
def test_unreachable_node_retried_and_ctrl_c_exits_cleanly(tmp_path: Path) -> None:
    run = _run_marker(tmp_path / "run")
    argv = [sys.executable, "-m", "gridledger.cli", "serve", str(run)]
    argv += ["--chain", "http://127.0.0.1:9", "--port", "0"]
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
        preexec_fn=interruptible,
    )
    assert proc.stderr is not None
    lines: list[str] = []
    # generous limits: a busy machine may take long to start and stop the command; they
    # only keep a hung command from hanging the suite (no wall-clock assertion)
    deadline = time.time() + 240
    while time.time() < deadline and sum("retrying in" in line for line in lines) < 2:
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line)
    proc.send_signal(signal.SIGINT)
    out, rest = proc.communicate(timeout=240)
    err = "".join(lines) + rest
    assert proc.returncode == 0, err
    retries = [line for line in err.splitlines() if "retrying in" in line]
    assert len(retries) >= 2, err
    assert "node unreachable" in retries[0] and "127.0.0.1:9" in retries[0]
    assert "retrying in 1 s" in retries[0] and "retrying in 2 s" in retries[1]  # backoff
    assert "explorer stopped" in out
    assert "Traceback" not in err


@pytest.mark.slow  # a real run in a subprocess: ~15 s on 2 busy cores
def test_run_serve_serves_the_folder_while_the_run_writes_it(tmp_path: Path) -> None:
    out = tmp_path / "run"
    argv = [sys.executable, "-m", "gridledger.cli", "run", "ieee33", "--chain", "none", "-q"]
    argv += ["--set", "horizon.intervals=2", "--set", "horizon.first_interval=48"]
    argv += ["--out", str(out), "--serve", "--port", "0"]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        preexec_fn=interruptible,
    )
    assert proc.stdout is not None
    pages: list[str] = []
    port = None
    for line in proc.stdout:
        found = re.search(r"explorer: http://127.0.0.1:(\d+)/", line)
        if found:
            port = int(found.group(1))
            pages.append(urllib.request.urlopen(f"http://127.0.0.1:{port}/").read().decode())
        if "serves the results" in line:
            break
    assert port is not None and len(pages) == 2
    assert "Key figures: market" in pages[-1]
    timeline = urllib.request.urlopen(f"http://127.0.0.1:{port}/timeline").read().decode()
    assert "Plotly.newPlot" in timeline
    proc.send_signal(signal.SIGINT)
    rest, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err
    assert "explorer stopped" in rest
    assert "Traceback" not in err
