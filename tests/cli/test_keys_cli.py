"""``gridledger keys init`` and the key options of ``run`` and ``audit``: keystores are
made for a shipped scenario, never overwritten; the public seed is refused on a node
with one message naming the keys and the options; ``ledger.json`` keeps no seed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gridledger.cli import main
from gridledger.ledger.keystore import PASSWORD_ENV

SHORT = ["--set", "horizon.first_interval=48", "--set", "horizon.intervals=1"]
FAST = ["--scrypt-n", "1024"]  # tests only: the default is documented in docs/ledger.md


def _invoke(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "internal error" not in err, err
    return code, out, err


def test_keys_init_for_a_shipped_scenario(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    folder = tmp_path / "keys"
    code, _, err = _invoke(["keys", "init", str(folder), "--scenario", "ieee33"], capsys)
    assert code == 2 and PASSWORD_ENV in err and "--key-password-file" in err
    assert not folder.exists()
    password = tmp_path / "password.txt"
    password.write_text("a long passphrase\n")
    argv = ["keys", "init", str(folder), "--scenario", "ieee33", "--key-password-file"]
    code, out, _ = _invoke([*argv, str(password), *FAST], capsys)
    assert code == 0
    assert "71 keystore files created, 0 already there kept" in out
    assert "ieee33: 34 members" in out and "operator: 0x" in out
    names = {p.name for p in folder.iterdir()}
    assert {"operator.json", "dso.json", "grid.json", "member-0.json", "meter-33.json"} <= names
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    code, out, _ = _invoke([*argv, str(password), *FAST], capsys)
    assert code == 0 and "0 keystore files created, 71 already there kept" in out
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    code, _, err = _invoke([*argv, str(password), "--scrypt-n", "1000"], capsys)
    assert code == 2 and "scrypt n = 1000: must be a power of two" in err


def test_run_on_a_node_without_keys_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Refused before the world is built and before the node is contacted."""
    out_dir = tmp_path / "run"
    argv = ["run", "ieee33", "--chain", "http://127.0.0.1:9", "--out", str(out_dir), "-q"]
    code, _, err = _invoke(argv, capsys)
    assert code == 2
    assert "simulation keys derived from a seed are refused on a JSON-RPC node" in err
    assert "operator.json, dso.json, grid.json" in err and "--keys DIR" in err
    assert PASSWORD_ENV in err and "gridledger keys init" in err
    assert not (out_dir / "chain").exists()


@pytest.mark.slow  # fast lane budget: a run and an audit (about 5 s)
def test_embedded_run_records_seed_keys_and_audit_checks_a_keys_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out_dir = tmp_path / "run"
    code, _, err = _invoke(["run", "ieee33", *SHORT, "--out", str(out_dir), "-q"], capsys)
    assert code == 0, err
    text = (out_dir / "chain" / "ledger.json").read_text()
    saved = json.loads(text)
    assert saved["keys"]["source"] == "seed" and saved["run"]["keys"] == "seed"
    assert "seed" not in saved and b"gridledger-simulation-only".hex() not in text
    code, out, _ = _invoke(["audit", str(out_dir)], capsys)
    assert code == 0 and "audit: OK" in out
    monkeypatch.setenv(PASSWORD_ENV, "another passphrase")
    folder = tmp_path / "keys"
    code, _, _ = _invoke(["keys", "init", str(folder), "--scenario", "ieee33", *FAST], capsys)
    assert code == 0
    code, _, err = _invoke(["audit", str(out_dir), "--keys", str(folder)], capsys)
    assert code == 2 and "operator.json: operator 0x" in err and "not this chain's keys" in err
    resume = ["run", "ieee33", *SHORT, "--out", str(out_dir), "-q", "--resume"]
    code, _, err = _invoke([*resume, "--keys", str(folder)], capsys)
    assert code == 2 and "this chain's operator is 0x" in err
