"""Start a local anvil node (npm ``@foundry-rs/anvil``) for tests and benchmarks.

The binary is looked up in ``node_modules/@foundry-rs/anvil-*/bin/anvil`` below the
current directory and the source checkout, then on ``PATH``. ``npm ci`` in the
repository installs the pinned version (package.json).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from gridledger.errors import ChainError

__all__ = ["AnvilNode", "find_anvil", "start_anvil"]

_CHECKOUT = Path(__file__).resolve().parents[3]


def find_anvil() -> Path | None:
    """Path of an anvil binary, or None."""
    for root in (Path.cwd(), _CHECKOUT):
        for candidate in sorted((root / "node_modules" / "@foundry-rs").glob("anvil-*/bin/anvil")):
            if candidate.is_file():
                return candidate
    found = shutil.which("anvil")
    return Path(found) if found else None


@dataclass
class AnvilNode:
    """A running anvil process on 127.0.0.1."""

    process: subprocess.Popen[bytes]
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()

    def __enter__(self) -> AnvilNode:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_anvil(
    timeout_s: float = 20.0,
    state: Path | None = None,
    *,
    block_gas_limit: int | None = None,
    tx_gas_limit: bool = False,
) -> AnvilNode:
    """Start anvil on a free port and wait until it accepts connections (``block_gas_limit``:
    its blocks' gas limit, anvil's own 30M when None; ``tx_gas_limit``: enforce EIP-7825's
    per-transaction cap of 16,777,216 gas, ``--enable-tx-gas-limit``).

    With ``state``, anvil loads its chain from that file if it exists and writes the chain
    to it when stopped (``anvil --state``; :meth:`AnvilNode.stop` sends SIGTERM, on which
    anvil writes it; a SIGKILLed anvil writes nothing).
    """
    binary = find_anvil()
    if binary is None:
        message = "anvil not found: run `npm ci` in the repository (installs @foundry-rs/anvil)"
        raise ChainError(message)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    process = subprocess.Popen(
        [
            str(binary),
            *("--host", "127.0.0.1", "--port", str(port), "--silent"),
            *(() if state is None else ("--state", str(state))),
            *(() if block_gas_limit is None else ("--gas-limit", str(block_gas_limit))),
            *(("--enable-tx-gas-limit",) if tx_gas_limit else ()),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    node = AnvilNode(process, port)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return node
        except OSError:
            if process.poll() is not None:
                break
            time.sleep(0.1)
    node.stop()
    message = f"anvil ({binary}) did not open port {port} within {timeout_s} s"
    raise ChainError(message)
