"""Deployment of one market: members, clearing configuration and the setup transactions.

Setup is one block of operator transactions: deploy the settlement token and the
Market (the Market's constructor deploys the FeeClearingVerifier for the fee rules),
record the fee table and kappa (fee rules only), register the members in chunks, mint
and approve the escrow, deposit every member's escrow and the GRID account's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from fractions import Fraction
from typing import Protocol

import numpy as np
import numpy.typing as npt
import rlp
from eth_utils import keccak, to_checksum_address

from gridledger.errors import ChainError
from gridledger.ledger.contracts import Artifact
from gridledger.ledger.fee_clearing import kappa_args, pack_fee_table
from gridledger.ledger.keys import PublicKeys
from gridledger.ledger.txqueue import (
    GAS_APPROVE,
    GAS_DEPLOY_MARKET,
    GAS_DEPLOY_MARKET_FEE_RULE,
    GAS_DEPLOY_TOKEN,
    GAS_DEPOSIT_GRID,
    GAS_MINT,
    TxQueue,
    gas_configure,
    gas_deposit,
    gas_register,
)
from gridledger.market.settlement import Tariffs

__all__ = [
    "CLEARING_RULE_IDS",
    "MAX_FEE_TABLE_BYTES",
    "REGISTER_CHUNK",
    "ROLE_CODES",
    "ClearingConfig",
    "Deployment",
    "LedgerMember",
    "MemberLike",
    "clearing_config",
    "create_address",
    "members_for_ledger",
    "plan_deployment",
    "setup_transactions",
]

CLEARING_RULE_IDS: dict[str, int] = {"uniform": 0, "greedy": 1, "optimal": 2}
ROLE_CODES: dict[str, int] = {"consumer": 0, "producer": 1, "prosumer": 2}
MAX_FEE_TABLE_BYTES = 24_575  # one data contract (EIP-170 code size limit - 1)
REGISTER_CHUNK = 64


@dataclass(frozen=True, slots=True)
class LedgerMember:
    """A member as the chain sees it: id, bus, role code (:data:`ROLE_CODES`)."""

    id: int
    bus: int
    role: int


class MemberLike(Protocol):
    """What :func:`members_for_ledger` reads of a member: id, bus and role (name or enum)."""

    @property
    def id(self) -> int: ...

    @property
    def bus(self) -> int: ...

    @property
    def role(self) -> str | Enum: ...


def members_for_ledger(members: Sequence[MemberLike]) -> list[LedgerMember]:
    """Map members with ``id``, ``bus``, ``role`` (str or enum) to ledger members."""
    out = []
    for m in members:
        role = str(getattr(m.role, "value", m.role))
        if role not in ROLE_CODES:
            message = f"member {m.id}: role {role!r} not in {sorted(ROLE_CODES)}"
            raise ChainError(message)
        out.append(LedgerMember(int(m.id), int(m.bus), ROLE_CODES[role]))
    return out


@dataclass(frozen=True, slots=True, eq=False)
class ClearingConfig:
    """The clearing rule run on chain; for the fee rules the fee table and kappa."""

    rule: str = "uniform"
    fees: npt.NDArray[np.int64] | None = None
    kappa: Fraction = Fraction(1, 2)


@dataclass(frozen=True, slots=True, eq=False)
class Deployment:
    """What one setup put on chain (saved in ``ledger.json``)."""

    token: bytes
    market: bytes
    rounds: int
    tariffs: Tariffs
    clearing: ClearingConfig
    members: tuple[LedgerMember, ...]  # by id, unique
    deposit_micro: int
    grid_deposit_micro: int


def create_address(sender: bytes, nonce: int) -> bytes:
    """Address of the contract that ``sender`` creates with its transaction ``nonce``."""
    return bytes(keccak(rlp.encode([sender, nonce]))[12:])


def clearing_config(
    clearing: str,
    fees: npt.ArrayLike | None,
    kappa: Fraction | float,
    members: Sequence[LedgerMember],
) -> tuple[ClearingConfig, bytes | None]:
    """Validate the rule; the configuration and, for a fee rule, the packed fee table."""
    if clearing not in CLEARING_RULE_IDS:
        message = (
            f"setup(): clearing rule {clearing!r} is not implemented on chain; "
            f"use one of {sorted(CLEARING_RULE_IDS)}"
        )
        raise ChainError(message)
    kappa_frac = Fraction(*kappa_args(kappa))
    if clearing == "uniform":
        if fees is not None and np.any(np.asarray(fees)):
            message = "setup(): clearing 'uniform' charges no network fees; use greedy/optimal"
            raise ChainError(message)
        return ClearingConfig(clearing, None, kappa_frac), None
    max_bus = max((m.bus for m in members), default=0)
    if fees is None:
        table = np.zeros((max_bus + 1, max_bus + 1), dtype=np.int64)
    else:
        table = np.asarray(fees).astype(np.int64)
    packed = pack_fee_table(table)
    if table.shape[0] <= max_bus:
        message = (
            f"setup(): fee table covers buses 0..{table.shape[0] - 1}, a member is at bus {max_bus}"
        )
        raise ChainError(message)
    if len(packed) > MAX_FEE_TABLE_BYTES:
        message = (
            f"setup(): fee table of {table.shape[0]} buses is {len(packed)} bytes; one data "
            f"contract holds at most {MAX_FEE_TABLE_BYTES} (78 buses)"
        )
        raise ChainError(message)
    return ClearingConfig(clearing, table, kappa_frac), packed


def plan_deployment(
    operator: bytes,
    nonce: int,
    members: Sequence[LedgerMember],
    tariffs: Tariffs,
    rounds: int,
    deposits_micro: tuple[int, int | None],
    clearing: tuple[str, npt.ArrayLike | None, Fraction | float],
) -> tuple[Deployment, bytes | None]:
    """Check the setup's parameters; the deployment and, for a fee rule, the packed fee table.

    The token and the Market are created by the ``operator``'s transactions ``nonce`` and
    ``nonce + 1``. ``deposits_micro`` is ``(per member, GRID account)``, GRID None: the
    members' total. ``clearing`` is ``(rule, fees, kappa)`` (:func:`clearing_config`).
    """
    if not 1 <= rounds <= 255:
        message = f"setup(): rounds={rounds} must be in 1..255"
        raise ChainError(message)
    config, table = clearing_config(*clearing, members)
    by_id = {m.id: m for m in members}
    deposit_micro, grid_micro = deposits_micro
    deployment = Deployment(
        token=create_address(operator, nonce),
        market=create_address(operator, nonce + 1),
        rounds=rounds,
        tariffs=tariffs,
        clearing=config,
        members=tuple(by_id[i] for i in sorted(by_id)),
        deposit_micro=deposit_micro,
        grid_deposit_micro=deposit_micro * len(by_id) if grid_micro is None else grid_micro,
    )
    return deployment, table


def setup_transactions(
    txq: TxQueue,
    keys: PublicKeys,
    abis: tuple[Artifact, Artifact],
    deployment: Deployment,
    table: bytes | None,
) -> list[tuple[str, bytes]]:
    """The signed setup transactions ``(label, raw)`` of ``deployment``, in order.

    ``abis`` are the token's and the Market's; ``table`` the packed fee table (fee rules).
    The token and the Market must be at the addresses of the operator's next two nonces.
    ``keys`` gives the public addresses (operator, members' accounts and meters); the
    transactions are signed by ``txq``'s operator signer.
    """
    token_abi, market_abi = abis
    d = deployment
    operator = to_checksum_address(keys.operator)
    ids = [m.id for m in d.members]
    total = d.deposit_micro * len(ids) + d.grid_deposit_micro
    deploy_market = market_abi.deploy_data(
        operator,
        to_checksum_address(d.token),
        d.rounds,
        d.tariffs.retail_per_kwh_micro,
        d.tariffs.feed_in_per_kwh_micro,
        CLEARING_RULE_IDS[d.clearing.rule],
        d.tariffs.tolerance_bp,
    )
    gas_market = GAS_DEPLOY_MARKET if table is None else GAS_DEPLOY_MARKET_FEE_RULE
    steps = [
        ("deploy token", txq.sign(None, token_abi.deploy_data(operator), GAS_DEPLOY_TOKEN)),
        ("deploy market", txq.sign(None, deploy_market, gas_market)),
    ]
    if table is not None:
        assert d.clearing.fees is not None
        n_buses = int(d.clearing.fees.shape[0])
        kappa = kappa_args(d.clearing.kappa)
        data = market_abi.encode_call("configureClearing", n_buses, *kappa, table)
        steps.append(("configure clearing", txq.sign(d.market, data, gas_configure(len(table)))))
    for start in range(0, len(d.members), REGISTER_CHUNK):
        chunk = d.members[start : start + REGISTER_CHUNK]
        data = market_abi.encode_call(
            "registerMembers",
            [m.id for m in chunk],
            [to_checksum_address(keys.member_address(m.id)) for m in chunk],
            [to_checksum_address(keys.meter_address(m.id)) for m in chunk],
            [m.bus for m in chunk],
            [m.role for m in chunk],
        )
        steps.append(("register members", txq.sign(d.market, data, gas_register(len(chunk)))))
    mint = token_abi.encode_call("mint", operator, total)
    steps.append(("mint", txq.sign(d.token, mint, GAS_MINT)))
    approve = token_abi.encode_call("approve", to_checksum_address(d.market), total)
    steps.append(("approve", txq.sign(d.token, approve, GAS_APPROVE)))
    if ids:
        data = market_abi.encode_call("depositMany", ids, [d.deposit_micro] * len(ids))
        steps.append(("deposit members", txq.sign(d.market, data, gas_deposit(len(ids)))))
    grid = market_abi.encode_call("depositGrid", d.grid_deposit_micro)
    steps.append(("deposit grid", txq.sign(d.market, grid, GAS_DEPOSIT_GRID)))
    return steps
