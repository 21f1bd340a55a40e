"""Run a scenario on its chain backend: set up or resume the chain, run the loop, audit.

Keys: with ``chain.keys`` the ledger signs with the keystores of that folder (password:
``chain.key_password_file`` or ``GRIDLEDGER_KEY_PASSWORD``); without, with the default
seed's simulation keys, which only the embedded chain accepts
(:class:`~gridledger.errors.KeysRequired` on a JSON-RPC node, before anything is built).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from gridledger.bidding import STRATEGIES
from gridledger.errors import KeysMismatch, ScenarioError, UsageError
from gridledger.ledger import Ledger, members_for_ledger
from gridledger.ledger.audit import AuditReport, audit
from gridledger.ledger.deploy import NETWORK_SIGNED_ONLY, NetworkCommitment
from gridledger.ledger.keys import KeyRing, refuse_seed_keys
from gridledger.ledger.keystore import key_password, keystore_address, keystore_file
from gridledger.ledger.network_data import NetworkDataTooLarge, pack_network
from gridledger.ledger.receipts import RECEIPTS_FILE, load_receipts
from gridledger.market.justification import RULE_IDS
from gridledger.scenario import Scenario, max_rounds
from gridledger.security.justification import committed_network
from gridledger.sim.loop import RunResult, run
from gridledger.world import World, build_world

__all__ = [
    "CHAIN_DIR",
    "Progress",
    "audit_folder",
    "check_resume",
    "load_keys",
    "run_facts",
    "run_with_chain",
    "scenario_member_ids",
]

log = logging.getLogger(__name__)

CHAIN_DIR = "chain"


def _check_strategies(world: World) -> None:
    """Refuse an unknown bidding strategy before a chain is set up (traders are made only
    when a member first bids, which would leave a set-up chain behind)."""
    scenario = world.scenario
    if scenario.market.mechanism == "best-response":
        return
    for member in world.members.members:
        if member.strategy not in STRATEGIES:
            key = (
                "members.strategy"
                if member.strategy == scenario.members.strategy
                else "members.overrides.strategy"
            )
            message = (
                f"{key} = {member.strategy!r} (member {member.id} at bus {member.bus}): "
                f"unknown bidding strategy; known: {', '.join(sorted(STRATEGIES))}"
            )
            raise ScenarioError(message)


def load_keys(scenario: Scenario, member_ids: Iterable[int] | None = None) -> KeyRing | None:
    """The keys of ``scenario.chain.keys`` (the roles' and ``member_ids``'), None without a
    keys folder; on a JSON-RPC node a keys folder is required
    (:class:`~gridledger.errors.KeysRequired`)."""
    spec = scenario.chain
    if spec.keys is None:
        if spec.backend != "none":
            refuse_seed_keys(spec.backend, "seed")
        return None
    password_file = None if spec.key_password_file is None else Path(spec.key_password_file)
    return KeyRing.from_keystores(Path(spec.keys), key_password(password_file), None, member_ids)


def _open_ledger(
    scenario: Scenario, out: Path, resume: bool, keys: KeyRing | None
) -> Ledger | None:
    backend = scenario.chain.backend
    state_dir = out / CHAIN_DIR
    if backend == "none":
        if resume:
            log.warning("%s: off chain there is nothing to resume; the run is recomputed", out)
        return None
    holds_chain = state_dir.exists() and any(state_dir.iterdir())
    if not resume and holds_chain:
        message = (
            f"{state_dir}: a chain from an earlier run is there; "
            "use --resume to continue it or choose another --out"
        )
        raise UsageError(message)
    if resume and not holds_chain:
        log.warning("%s: no saved chain to resume; starting a fresh run", state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    ledger = Ledger.connect(backend, state_dir=state_dir, keys=keys)
    ledger.settle_page_members = scenario.chain.settle_page_members
    ledger.record_page_entries = scenario.chain.record_page_entries
    ledger.backend.tx_gas_cap = scenario.chain.tx_gas_cap
    return ledger


def _identity(scenario: Scenario) -> dict[str, Any]:
    """The scenario as saved with its chain: everything but the horizon's length and the
    chain backend (a resumed run may extend the horizon or reach the node at a new URL)."""
    data = scenario.model_dump(mode="json")
    data["horizon"].pop("intervals", None)
    data.pop("chain", None)
    return data


def run_facts(scenario: Scenario) -> dict[str, str | int]:
    """What ``ledger.json`` records of the run, for :func:`check_resume`."""
    identity = json.dumps(_identity(scenario), sort_keys=True, separators=(",", ":"))
    return {
        "scenario_name": scenario.name,
        "scenario_sha256": hashlib.sha256(identity.encode()).hexdigest(),
        "scenario_json": identity,
        "seed": str(scenario.seed),
        "feeder": scenario.network.feeder,
        "start": str(scenario.horizon.start),
        "first_interval": scenario.horizon.first_interval,
        "interval_min": scenario.horizon.interval_min,
        "intervals": scenario.horizon.intervals,
        "keys": "seed" if scenario.chain.keys is None else "keystores",
    }


def _flat(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, Mapping):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _differences(saved_json: str, now: Mapping[str, Any]) -> list[str]:
    try:
        saved = _flat(json.loads(saved_json))
    except ValueError:
        return []
    current = _flat(now)
    keys = sorted(set(saved) | set(current))
    return [
        f"{key}: saved {saved.get(key, '(unset)')!r}, now {current.get(key, '(unset)')!r}"
        for key in keys
        if saved.get(key) != current.get(key)
    ]


def check_resume(
    saved: Mapping[str, str | int], scenario: Scenario, last_settled: int | None, where: Path
) -> None:
    """Refuse, by name, to resume a saved chain with another seed, feeder, horizon start or
    scenario, or with fewer intervals than the chain already holds."""
    if not saved:
        log.warning("%s: the saved chain records no scenario; resuming unchecked", where)
        return
    now = run_facts(scenario)
    refuse = (
        f"{where} holds the chain of scenario {saved.get('scenario_name')!r}, "
        "another run's; --resume refused"
    )
    for key, label in (("feeder", "network.feeder"), ("seed", "seed")):
        if str(saved.get(key)) != str(now[key]):
            message = f"{refuse}: {label} is {saved.get(key)!r} there, {now[key]!r} now"
            raise UsageError(message)
    for key in ("start", "first_interval", "interval_min"):
        if str(saved.get(key)) != str(now[key]):
            message = f"{refuse}: horizon.{key} is {saved.get(key)!r} there, {now[key]!r} now"
            raise UsageError(message)
    if saved.get("scenario_sha256") != now["scenario_sha256"]:
        changed = _differences(str(saved.get("scenario_json", "{}")), _identity(scenario))
        detail = "; ".join(changed[:5]) + (
            f"; and {len(changed) - 5} more" if len(changed) > 5 else ""
        )
        message = f"{refuse}: the scenario differs ({detail or 'scenario hash differs'})"
        raise UsageError(message)
    held = 0 if last_settled is None else last_settled + 1
    if held > scenario.horizon.intervals:
        message = (
            f"{where}: the chain already holds {held} settled intervals, more than the "
            f"horizon's {scenario.horizon.intervals}; --resume refused (set "
            f"horizon.intervals={held} or more)"
        )
        raise UsageError(message)


def connection_limits_wh(world: World) -> dict[int, int]:
    """Each member's connection limit per interval (Wh): 4 x its meter rating ``p_max_kw``,
    and at least 1.25 x the largest energy it forecasts or meters in the run (and 1 kWh).
    On chain it caps the member's bid energy and reading, and it is the default reading of
    a silent meter (an import at the limit), so it must cover every real reading, also of a
    resumed run with a longer horizon (hence the margin over the rating)."""
    scale = 1000.0 * world.interval_h
    peak_kw = np.maximum(
        np.abs(world.members.forecast_net_kw).max(axis=1, initial=0.0),
        np.abs(world.members.actual_net_kw).max(axis=1, initial=0.0),
    )
    return {
        m.id: max(1000, math.ceil(max(4.0 * m.p_max_kw, 1.25 * float(p)) * scale))
        for m, p in zip(world.members.members, peak_kw, strict=True)
    }


def network_commitment(world: World) -> NetworkCommitment | None:
    """The DSO's linearised network to commit at setup, for the scenario's congestion rule
    (None without congestion management: then no curtailment can be recorded). Data over
    one contract is deployed in shards at setup; a feeder too large even for those (a
    meshed one past 25,367 buses with 2 loops, docs/security_on_chain.md) is committed as
    signed-only: the DSO signs its verdicts, the chain does not check the curtailments
    (docs/trust.md)."""
    rule = world.scenario.security.congestion
    if rule not in RULE_IDS:
        return None
    try:
        table = pack_network(committed_network(world))
    except NetworkDataTooLarge as error:
        log.warning("%s: curtailments will be signed by the DSO, not checked on chain", error)
        return NetworkCommitment(NETWORK_SIGNED_ONLY, b"")
    return NetworkCommitment(RULE_IDS[rule], table)


def run_with_chain(
    scenario: Scenario, out: Path, *, resume: bool = False, progress: bool = False
) -> RunResult:
    """Run ``scenario``, recording on the scenario's chain backend (state in ``out/chain``)."""
    if scenario.chain.keys is None and scenario.chain.backend != "none":
        refuse_seed_keys(scenario.chain.backend, "seed")  # before the world is built
    world = build_world(scenario)
    _check_strategies(world)
    keys = None
    if scenario.chain.backend != "none":
        keys = load_keys(scenario, [m.id for m in world.members.members])
    ledger = _open_ledger(scenario, out, resume, keys)
    resume_from = 0
    if ledger is not None:
        if resume and ledger.is_set_up():
            last = ledger.last_settled_interval()
            check_resume(ledger.saved_run(), scenario, last, out / CHAIN_DIR)
            resume_from = 0 if last is None else last + 1
            log.info("resuming from interval %d", resume_from)
        else:
            ledger.setup(
                members_for_ledger(world.members.members, connection_limits_wh(world)),
                world.tariffs,
                max_rounds(scenario.market),
                deposit_micro=10**12,
                clearing=scenario.market.clearing,
                fees=world.committed_fees,
                kappa=world.kappa,
                run=run_facts(scenario),
                network=network_commitment(world),
            )
    bar = Progress(
        f"{scenario.name} ({scenario.chain.backend})",
        scenario.horizon.intervals,
        done=resume_from,
        enabled=progress,
    )
    try:
        result = run(
            scenario,
            ledger=ledger,
            world=world,
            resume_from=resume_from,
            progress=lambda _t: bar.tick(),
        )
    finally:
        bar.close()
    if ledger is not None:
        result.chain_stats = ledger.stats().as_dict()
        result.chain_conserved = bool(ledger.conserved())
        result.chain_solvent = bool(ledger.view("solvent")[0])
        report = audit(ledger, receipts=load_receipts(out / CHAIN_DIR / RECEIPTS_FILE))
        result.audit_findings = len(report.findings)
        for finding in report.findings:
            log.warning("audit: %s", finding)
        result.chain = scenario.chain.backend
    return result


class Progress:
    """Progress over a run's intervals on stderr: a tqdm bar on a terminal; otherwise
    (a pipe, a log file, CI) a plain line such as ``ieee33 (none): 48/96 intervals (50 %)``
    each time another tenth of the horizon is done, and never a carriage return."""

    def __init__(self, label: str, total: int, *, done: int = 0, enabled: bool = True) -> None:
        self.label = label
        self.total = total
        self.done = done
        self.enabled = enabled
        self.bar: tqdm | None = None
        if enabled and sys.stderr.isatty():
            self.bar = tqdm(total=total, initial=done, desc=label, unit="interval")

    def tick(self) -> None:
        """One more interval done."""
        if self.bar is not None:
            self.bar.update(1)
            return
        before = self.done * 10 // max(self.total, 1)
        self.done += 1
        after = self.done * 10 // max(self.total, 1)
        if self.enabled and (after > before or self.done == self.total):
            percent = 100 * self.done // max(self.total, 1)
            sys.stderr.write(f"{self.label}: {self.done}/{self.total} intervals ({percent} %)\n")
            sys.stderr.flush()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def audit_folder(out: Path, chain: str | None = None, keys_dir: Path | None = None) -> AuditReport:
    """Re-derive clearing and settlement from the chain of a saved run; with a ``run.json``
    (a finished run), every interval of its horizon must be settled on chain.

    The audit reads only: it needs no private key. With ``keys_dir`` the operator of that
    keys folder (its ``operator.json`` address, not decrypted) must be the chain's."""
    source = chain or "embedded"
    ledger = Ledger.connect(source, state_dir=out / CHAIN_DIR, read_only=True)
    if keys_dir is not None:
        path = Path(keys_dir) / keystore_file("operator")
        given = keystore_address(path)
        if given != ledger.operator:
            message = (
                f"{path}: operator 0x{given.hex()}, but the chain in {out / CHAIN_DIR} was "
                f"set up by operator 0x{ledger.operator.hex()}: not this chain's keys"
            )
            raise KeysMismatch(message)
    receipts = load_receipts(out / CHAIN_DIR / RECEIPTS_FILE)
    return audit(ledger, expected_intervals=_horizon(out), receipts=receipts)


def _horizon(out: Path) -> int | None:
    """``scenario.horizon.intervals`` of ``out/run.json``, None without a readable one."""
    try:
        meta = json.loads((out / "run.json").read_text())
        intervals = meta["scenario"]["horizon"]["intervals"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return intervals if isinstance(intervals, int) else None


def scenario_member_ids(scenario: Scenario) -> list[int]:
    """The ids of ``scenario``'s members (the world is built to know them)."""
    return sorted(m.id for m in build_world(scenario).members.members)
