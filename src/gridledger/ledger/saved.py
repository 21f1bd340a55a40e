"""``ledger.json``: the saved deployment of a ledger, validated against a schema.

The file is written (atomically: temporary file, then rename) before the setup
transactions are sent, with ``"set_up": false``, and again with ``"set_up": true`` once
the setup block is in the log. The deployment is planned before anything is sent
(contract addresses follow from the operator's nonce), so a setup that is killed and
run again writes the same file. Reading it checks every key's type and form; any
deviation is one :class:`~gridledger.errors.SavedChainDamaged` naming the file and key.

The file records where the keys came from (``keys``: ``{"source": "seed"}`` for the
simulation keys of the embedded chain, ``{"source": "keystores", "dir": ...}``) and the
public addresses, never a private key or the seed they were derived from (version 4;
earlier versions are refused by name, :class:`~gridledger.errors.SavedChainOutdated`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gridledger.errors import ChainError, SavedChainDamaged, SavedChainOutdated
from gridledger.ledger import store
from gridledger.ledger.deploy import (
    ChainTiming,
    ClearingConfig,
    Deployment,
    Helpers,
    LedgerMember,
    NetworkCommitment,
)
from gridledger.ledger.fee_clearing import pack_fee_table
from gridledger.ledger.reference import unpack_fee_table
from gridledger.market.settlement import Tariffs

__all__ = [
    "LEDGER_FILE",
    "LEDGER_VERSION",
    "RunFacts",
    "SavedKeys",
    "SavedLedger",
    "SavedMember",
    "deployment_from_saved",
    "load_ledger_file",
    "open_saved",
    "progress_note",
    "saved_from_deployment",
    "write_ledger_file",
]

LEDGER_FILE = "ledger.json"
LEDGER_VERSION: Literal[4] = 4

RunFacts = dict[str, str | int]
"""The caller's facts about the run (scenario hash, seed, horizon...), kept opaque."""

Address = Annotated[str, Field(pattern=r"^[0-9a-f]{40}$")]
HexBytes = Annotated[str, Field(pattern=r"^([0-9a-f]{2})*$")]


class SavedMember(BaseModel):
    """One registered member: id, bus and role code."""

    model_config = ConfigDict(strict=True, extra="forbid")

    id: int
    bus: int
    role: int
    limit_wh: int = Field(ge=1)


class SavedKeys(BaseModel):
    """Where the deployment's keys come from: ``"seed"`` (simulation keys, embedded chain
    only) or ``"keystores"`` in folder ``dir``."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    source: Literal["seed", "keystores"]
    dir: str | None = None


class SavedLedger(BaseModel):
    """The schema of ``ledger.json`` (version 4)."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    version: Literal[4]
    chain: str
    chain_id: int
    keys: SavedKeys
    token: Address
    market: Address
    operator: Address
    rounds: int = Field(ge=1, le=255)
    retail_per_kwh_micro: int
    feed_in_per_kwh_micro: int
    tolerance_bp: int
    clearing: Literal["uniform", "greedy", "optimal"]
    kappa_num: int
    kappa_den: int = Field(ge=1)
    fee_buses: int | None
    fee_table: HexBytes | None
    deposit_micro: int
    grid_deposit_micro: int
    members: list[SavedMember]
    helpers: dict[Literal["clearing", "calculator", "curtailments", "entries"], Address]
    dso: Address
    grid: Address
    timing: dict[Literal["round_blocks", "reading_blocks", "settle_blocks"], int]
    network_cfg: int | None
    network_table: HexBytes | None
    shards: list[Address] = []  # data contracts of a fee table or network in parts
    set_up: bool
    run: dict[str, str | int]


def _describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        key = ".".join(str(k) for k in item["loc"]) or "(top level)"
        found = "" if item["type"] == "missing" else f", found {item['input']!r:.60}"
        parts.append(f"key {key!r}: {item['msg']}{found}")
    return "; ".join(parts)


def load_ledger_file(state_dir: Path) -> SavedLedger | None:
    """The validated ``ledger.json`` of ``state_dir``; None when there is none."""
    path = state_dir / LEDGER_FILE
    if not path.exists():
        return None
    try:
        raw: Any = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        message = f"{path}: saved chain damaged: not a complete JSON document ({error})"
        raise SavedChainDamaged(message) from error
    if isinstance(raw, dict) and raw.get("version", 1) != LEDGER_VERSION:
        version = raw.get("version", 1)
        why = {
            3: "its Market records rounds and readings without pages (an earlier interface)",
            2: "it records the seed of its keys and an earlier Market contract",
        }.get(version, "its transaction log carries no hashes and cannot be verified")
        message = (
            f"{path}: saved by an older gridledger (ledger.json version {version!r}, this "
            f"one reads version {LEDGER_VERSION}); {why}: run it again"
        )
        raise SavedChainOutdated(message)
    try:
        saved = SavedLedger.model_validate(raw)
    except ValidationError as error:
        message = f"{path}: saved chain damaged: {_describe(error)}"
        raise SavedChainDamaged(message) from error
    try:
        deployment_from_saved(saved)
    except (ChainError, ValueError) as error:
        message = f"{path}: saved chain damaged: key 'fee_table': {error}"
        raise SavedChainDamaged(message) from error
    return saved


def write_ledger_file(state_dir: Path, saved: SavedLedger) -> None:
    """Write ``ledger.json`` atomically (temporary file, fsync, rename)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    tmp = state_dir / (LEDGER_FILE + ".tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(saved.model_dump(), indent=2) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, state_dir / LEDGER_FILE)


def saved_from_deployment(
    chain: str,
    chain_id: int,
    keys: tuple[Mapping[str, str], bytes],
    d: Deployment,
    run: RunFacts,
    set_up: bool = False,
) -> SavedLedger:
    """The ``ledger.json`` of deployment ``d``; ``keys`` are ``(where the keys come from,
    operator address)`` (:meth:`~gridledger.ledger.keys.KeyRing.record`)."""
    source, operator = keys
    fees = d.clearing.fees
    return SavedLedger(
        version=LEDGER_VERSION,
        chain=chain,
        chain_id=chain_id,
        keys=SavedKeys.model_validate(dict(source)),
        token=d.token.hex(),
        market=d.market.hex(),
        operator=operator.hex(),
        rounds=d.rounds,
        retail_per_kwh_micro=d.tariffs.retail_per_kwh_micro,
        feed_in_per_kwh_micro=d.tariffs.feed_in_per_kwh_micro,
        tolerance_bp=d.tariffs.tolerance_bp,
        clearing=d.clearing.rule,  # type: ignore[arg-type]  # validated by plan_deployment
        kappa_num=d.clearing.kappa.numerator,
        kappa_den=d.clearing.kappa.denominator,
        fee_buses=None if fees is None else int(fees.shape[0]),
        fee_table=None if fees is None else (d.clearing.packed or pack_fee_table(fees)).hex(),
        deposit_micro=d.deposit_micro,
        grid_deposit_micro=d.grid_deposit_micro,
        members=[SavedMember(**asdict(m)) for m in d.members],
        helpers={
            "clearing": d.helpers.clearing.hex(),
            "calculator": d.helpers.calculator.hex(),
            "curtailments": d.helpers.curtailments.hex(),
            "entries": d.helpers.entries.hex(),
        },
        dso=d.dso.hex(),
        grid=d.grid.hex(),
        timing=asdict(d.timing),  # type: ignore[arg-type]  # the three ChainTiming fields
        network_cfg=None if d.network is None else d.network.cfg,
        network_table=None if d.network is None else d.network.table.hex(),
        shards=[a.hex() for a in d.shards],
        set_up=set_up,
        run=dict(run),
    )


def deployment_from_saved(saved: SavedLedger) -> Deployment:
    """The :class:`Deployment` recorded in a validated ``ledger.json``."""
    fees = None
    packed = None
    if saved.fee_table is not None:
        if saved.fee_buses is None:
            message = "a fee table needs 'fee_buses'"
            raise ValueError(message)
        packed = bytes.fromhex(saved.fee_table)
        fees = unpack_fee_table(packed, saved.fee_buses)
    by_id = {m.id: LedgerMember(m.id, m.bus, m.role, m.limit_wh) for m in saved.members}
    network = None
    if saved.network_cfg is not None and saved.network_table is not None:
        network = NetworkCommitment(saved.network_cfg, bytes.fromhex(saved.network_table))
    helpers = saved.helpers
    return Deployment(
        token=bytes.fromhex(saved.token),
        market=bytes.fromhex(saved.market),
        rounds=saved.rounds,
        tariffs=Tariffs(
            saved.retail_per_kwh_micro, saved.feed_in_per_kwh_micro, saved.tolerance_bp
        ),
        clearing=ClearingConfig(
            saved.clearing, fees, Fraction(saved.kappa_num, saved.kappa_den), packed
        ),
        members=tuple(by_id[i] for i in sorted(by_id)),
        deposit_micro=saved.deposit_micro,
        grid_deposit_micro=saved.grid_deposit_micro,
        helpers=Helpers(
            bytes.fromhex(helpers["clearing"]),
            bytes.fromhex(helpers["calculator"]),
            bytes.fromhex(helpers["curtailments"]),
            bytes.fromhex(helpers["entries"]),
        ),
        dso=bytes.fromhex(saved.dso),
        grid=bytes.fromhex(saved.grid),
        timing=ChainTiming(**saved.timing),
        network=network,
        shards=tuple(bytes.fromhex(a) for a in saved.shards),
    )


def progress_note(txlog: store.TxLog | None) -> str:
    """The last interval settled according to ``txlog`` and how to continue ("" if none)."""
    if txlog is None or not txlog.records:
        return ""
    last = txlog.records[-1].interval
    held = (
        "no interval is settled yet, the setup is done"
        if last is None
        else f"the last interval settled is interval {last}"
    )
    return (
        f"{held} (local log {txlog.path}); transactions sent just before may have reached "
        "the node: `--resume` reconciles them by nonce and continues the run once the node "
        "is back with its state"
    )


def open_saved(state_dir: Path, read_only: bool) -> tuple[SavedLedger | None, store.TxLog]:
    """The verified ``ledger.json`` and log of ``state_dir``, checked against each other."""
    saved = load_ledger_file(state_dir)
    txlog = store.TxLog.open(state_dir)
    ledger_file = state_dir / LEDGER_FILE
    if saved is None and txlog.records:
        message = (
            f"{ledger_file}: saved chain damaged: the file is missing, but {txlog.path} "
            f"holds {len(txlog.records)} records"
        )
        raise SavedChainDamaged(message)
    if saved is not None and saved.set_up and not txlog.records:
        found = "is empty" if txlog.path.exists() else "is missing"
        message = (
            f"{txlog.path}: saved chain damaged: {ledger_file} says the setup was done, "
            f"but the log {found}"
        )
        raise SavedChainDamaged(message)
    if read_only and not txlog.records:
        what = "no saved ledger" if saved is None else "a setup that was interrupted"
        message = f"{state_dir}: {what}, nothing to open read-only"
        raise ChainError(message)
    if not read_only:
        txlog.cut_torn()
    return saved, txlog
