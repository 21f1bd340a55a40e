// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title UniformClearing
/// @notice The uniform-price double auction of market/double_auction.py, run on a book whose
///         priority order the caller supplies and this contract checks in O(n).
/// @dev Bid and trade word layouts: contracts/Market.sol.
contract UniformClearing {
    /// @notice The supplied clearing order is not a valid sorted permutation.
    error BadOrder(uint256 position);

    uint256 private constant _U64 = 0xffffffffffffffff;

    /// @notice Clear `bids` in the order `order`: order[0:nBuys] indexes the buy bids by price
    ///         descending then member ascending, order[nBuys:] the sell bids by price ascending
    ///         then member ascending. Returns the trade word pairs and the uniform price
    ///         (0 if nothing trades).
    function clear(uint256[] calldata bids, uint256[] calldata order, uint256 nBuys)
        external
        pure
        returns (uint256[] memory trades, uint64 price)
    {
        return _clearUniform(_sortedBook(bids, order, nBuys), nBuys);
    }

    /// @dev Check that `order` is a permutation of the bid indexes in clearing priority and
    ///      return the bid words in that order.
    function _sortedBook(uint256[] calldata bids, uint256[] calldata order, uint256 nBuys)
        internal
        pure
        returns (uint256[] memory book)
    {
        uint256 n = bids.length;
        if (order.length != n || nBuys > n) revert BadOrder(n);
        book = new uint256[](n);
        uint256[] memory seen = new uint256[]((n >> 8) + 1);
        uint256 prevPrice = 0;
        uint256 prevMember = 0;
        for (uint256 k = 0; k < n; ++k) {
            uint256 idx = order[k];
            if (idx >= n) revert BadOrder(k);
            uint256 bit = 1 << (idx & 0xff);
            uint256 slot = seen[idx >> 8];
            if (slot & bit != 0) revert BadOrder(k);
            seen[idx >> 8] = slot | bit;
            uint256 w = bids[idx];
            book[k] = w;
            uint256 price = (w >> 88) & _U64;
            uint256 id = w >> 224;
            bool isBuy = k < nBuys;
            if (((w >> 216) & 0xff == 0) != isBuy) revert BadOrder(k);
            if (k != 0 && k != nBuys) {
                bool ok = isBuy
                    ? (price < prevPrice || (price == prevPrice && id > prevMember))
                    : (price > prevPrice || (price == prevPrice && id > prevMember));
                if (!ok) revert BadOrder(k);
            }
            prevPrice = price;
            prevMember = id;
        }
    }

    /// @dev Uniform-price rule of market/double_auction.py on a checked book
    ///      (book[0:nBuys] buys, book[nBuys:] sells, each in priority order).
    function _clearUniform(uint256[] memory book, uint256 nBuys)
        internal
        pure
        returns (uint256[] memory trades, uint64 price)
    {
        uint256 n = book.length;
        trades = new uint256[](n == 0 ? 0 : 2 * (n - 1));
        uint256 count = 0;
        uint256 i = 0;
        uint256 j = nBuys;
        uint256 remBuy = i < nBuys ? (book[i] >> 152) & _U64 : 0;
        uint256 remSell = j < n ? (book[j] >> 152) & _U64 : 0;
        uint256 lastPrices = 0; // lastBid << 64 | lastAsk
        while (i < nBuys && j < n) {
            uint256 buyW = book[i];
            uint256 sellW = book[j];
            if (((buyW >> 88) & _U64) < ((sellW >> 88) & _U64)) break;
            uint256 e = remBuy < remSell ? remBuy : remSell;
            trades[2 * count] = ((buyW >> 224) << 224) | ((sellW >> 224) << 192) | (e << 128)
                | (((buyW >> 72) & 0xffff) << 112) | (((sellW >> 72) & 0xffff) << 96);
            ++count;
            lastPrices = (((buyW >> 88) & _U64) << 64) | ((sellW >> 88) & _U64);
            remBuy -= e;
            remSell -= e;
            if (remBuy == 0 && ++i < nBuys) remBuy = (book[i] >> 152) & _U64;
            if (remSell == 0 && ++j < n) remSell = (book[j] >> 152) & _U64;
        }
        if (count > 0) price = uint64(((lastPrices >> 64) + (lastPrices & _U64)) / 2);
        uint256 w1 = (uint256(price) << 192) | (uint256(price) << 128);
        for (uint256 k = 0; k < count; ++k) {
            trades[2 * k + 1] = w1;
        }
        assembly ("memory-safe") {
            mstore(trades, mul(count, 2))
        }
    }
}
