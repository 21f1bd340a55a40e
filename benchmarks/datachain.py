"""An embedded chain with one verifier contract, and committed data deployed on demand (as
one data contract, or in shards with a directory, as the ledger's setup deploys them).
Shared by the gas benchmarks of committed data (bench_network_tree, bench_data_shards)."""

from __future__ import annotations

from gridledger.ledger.backends import EmbeddedBackend
from gridledger.ledger.contracts import artifact
from gridledger.ledger.deploy import create_address
from gridledger.ledger.encoding import address_of, derive_key, sign_transaction
from gridledger.ledger.shards import directory, init_code, split

__all__ = ["DataChain"]


class DataChain:
    """The contract ``name`` deployed on a new embedded chain by an account of ``label``."""

    def __init__(self, label: bytes, name: str) -> None:
        self.key = derive_key(label, "operator")
        self.sender = address_of(self.key)
        self.backend = EmbeddedBackend(funded=[self.sender])
        self.abi = artifact(name)
        self.verifier, _ = self.create(self.abi.deploy_data())

    def create(self, code: bytes, gas: int = 8_000_000) -> tuple[bytes, int]:
        """(address, gas used) of a contract created with init ``code``."""
        nonce = self.backend.nonce(self.sender)
        raw = sign_transaction(self.backend.chain_id, self.key, None, code, gas, nonce, 10**9)
        (result,) = self.backend.send([raw])
        self.backend.seal()
        assert result.status
        return create_address(self.sender, nonce), result.gas_used

    def commit(self, data: bytes) -> tuple[bytes, int, int]:
        """(address, shards, deployment gas) of ``data`` as one contract or in shards."""
        chunks = split(data)
        if len(chunks) == 1:
            address, gas = self.create(init_code(data))
            return address, 0, gas
        made = [self.create(init_code(c)) for c in chunks]
        address, gas = self.create(init_code(directory(chunks, [a for a, _ in made])))
        return address, len(chunks), gas + sum(g for _, g in made)

    def gas(self, function: str, *args: object) -> int:
        """``eth_estimateGas`` (exact) of calling the verifier's ``function``."""
        payload = self.abi.encode_call(function, *args)
        return self.backend.estimate_gas(self.sender, self.verifier, payload, exact=True)
