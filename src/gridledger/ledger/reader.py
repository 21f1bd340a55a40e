"""Read access to a deployed market: view calls, events, balances.

:class:`ChainReader` is what the audit needs; :class:`~gridledger.ledger.facade.Ledger`
extends it with the transactions of setup and of every interval.
"""

from __future__ import annotations

from typing import Any

from gridledger.errors import ChainError
from gridledger.ledger.backends import Backend, CallReverted
from gridledger.ledger.contracts import DecodedEvent, artifact, decode_error
from gridledger.ledger.deploy import Deployment, LedgerMember
from gridledger.ledger.reference import merge_settlement_pages
from gridledger.ledger.resume import last_settled_interval
from gridledger.market.settlement import GRID, OPERATOR

__all__ = ["ChainReader"]


class ChainReader:
    """The token and Market of ``deployment`` on ``backend``, read as ``operator``."""

    def __init__(self, backend: Backend, operator: bytes) -> None:
        self.backend = backend
        self.operator = operator
        self.market_abi = artifact("Market")
        self.token_abi = artifact("SettlementToken")
        self.deployment: Deployment | None = None
        self.members: dict[int, LedgerMember] = {}

    @property
    def market(self) -> bytes | None:
        """Address of the Market contract (None before setup)."""
        return None if self.deployment is None else self.deployment.market

    @property
    def token(self) -> bytes | None:
        """Address of the settlement token (None before setup)."""
        return None if self.deployment is None else self.deployment.token

    def is_set_up(self) -> bool:
        """True when a market is deployed (this session or a restored one)."""
        return self.deployment is not None

    def _deployed(self) -> Deployment:
        if self.deployment is None:
            message = "ledger is not set up: call setup() first"
            raise ChainError(message)
        return self.deployment

    def view(self, function: str, *args: Any) -> tuple[Any, ...]:
        """Call a view function of the Market contract."""
        market = self._deployed().market
        data = self.market_abi.encode_call(function, *args)
        try:
            output = self.backend.call(self.operator, market, data)
        except CallReverted as error:
            message = f"Market.{function}{args} reverted: {decode_error(error.data)}"
            raise ChainError(message) from error
        return self.market_abi.decode_output(function, output)

    def token_view(self, function: str, *args: Any) -> tuple[Any, ...]:
        """Call a view function of the settlement token."""
        token = self._deployed().token
        data = self.token_abi.encode_call(function, *args)
        return self.token_abi.decode_output(function, self.backend.call(self.operator, token, data))

    def events(self) -> list[DecodedEvent]:
        """Every Market event on chain, in chain order (a paged settlement's
        ``IntervalSettled`` made whole: :func:`~gridledger.ledger.reference.merge_settlement_pages`)."""
        market = self._deployed().market
        return merge_settlement_pages(
            self.market_abi.decode_logs(self.backend.logs(market), market)
        )

    def last_settled_interval(self) -> int | None:
        """Highest settled interval on chain, or None before the first settlement."""
        return None if self.deployment is None else last_settled_interval(self.view)

    def balances(self) -> dict[int, int]:
        """Escrow balances: members by id, GRID and OPERATOR (negative = recorded debt)."""
        out = {m: int(self.view("balanceMicro", m)[0]) for m in sorted(self.members)}
        out[GRID] = int(self.view("gridBalanceMicro")[0])
        out[OPERATOR] = int(self.view("operatorBalanceMicro")[0])
        return out

    def conserved(self) -> bool:
        """The contract's own check: deposits == balances + withdrawals == tokens held."""
        return bool(self.view("conserved")[0])

    def close(self) -> None:
        """Release the backend."""
        self.backend.close()
