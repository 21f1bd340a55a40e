"""gridledger: peer-to-peer electricity trading in distribution grids on a ledger."""

from gridledger.errors import GridledgerError

__all__ = ["GridledgerError", "__version__"]
__version__ = "0.1.0"
