// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {SafeCast} from "./SafeCast.sol";

/// @title SettlementCalculator
/// @notice The settlement rules of market/settlement.py in integers: from the delivered trades
///         and one reading per member, every member's change, the GRID's and the OPERATOR's.
///         Pure: the Market checks its inputs against the recorded hashes and books the result.
/// @dev Words use the layouts of Market.sol (trade word pairs, reading words). `tariffs` packs
///      retail u64 <<128 | feedIn u64 <<64 | toleranceBp (basis points, <= 10000).
///      Rules (docs/settlement.md): P2P money on delivered energy at the trade prices
///      (fee = paid - received to OPERATOR); each trader's deviation d = metered - scheduled
///      is split over its trades by cumulative floors; seller short: the buyer is supplied
///      by the GRID (in band at its price, beyond at retail) and the seller pays the buyer a
///      penalty so the buyer pays its contract; seller surplus to the GRID at feed-in;
///      buyer over at retail; buyer under take-or-pay, untaken energy resold at feed-in;
///      in-band slices at the trade price; non-traders and residuals at the tariffs.
///      Each amount is floored once and booked twice, so money is conserved exactly.
contract SettlementCalculator {
    /// @notice A traded member has no reading at the hinted index.
    error MissingReading(uint32 member);
    /// @notice A member both buys and sells in one interval's delivered trades.
    error BothSides(uint32 member);
    /// @notice The party hints do not match the trades.
    error LengthMismatch(uint256 expected, uint256 got);

    uint256 private constant _U64 = 0xffffffffffffffff;

    /// @notice Settle one interval.
    /// @param trades The delivered trade word pairs.
    /// @param readings One reading word per member, ids ascending.
    /// @param parties For trade k: buyer's reading index << 128 | seller's reading index.
    /// @param tariffs retail << 128 | feedIn << 64 | toleranceBp.
    /// @return deltas Each reading's member's change, micro-tokens (same order as readings).
    /// @return gridDelta The GRID account's change.
    /// @return fees The OPERATOR account's change (network fees).
    function compute(
        uint256[] calldata trades,
        uint256[] calldata readings,
        uint256[] calldata parties,
        uint256 tariffs
    ) external pure returns (int256[] memory deltas, int256 gridDelta, int256 fees) {
        Book[] memory books = _schedules(trades, readings, parties);
        gridDelta = _memberDeviations(readings, books, tariffs);
        int256 tradeGrid;
        (tradeGrid, fees) = _settleTrades(trades, parties, books, tariffs);
        gridDelta += tradeGrid;
        uint256 n = readings.length;
        deltas = new int256[](n);
        for (uint256 k = 0; k < n; ++k) {
            deltas[k] = books[k].money;
        }
    }

    function _retail(uint256 tariffs) private pure returns (uint256) {
        return (tariffs >> 128) & _U64;
    }

    function _feedIn(uint256 tariffs) private pure returns (uint256) {
        return (tariffs >> 64) & _U64;
    }

    function _toleranceBp(uint256 tariffs) private pure returns (uint256) {
        return tariffs & 0xffff;
    }

    /// @dev Per-member working record of one settlement (memory only).
    ///      flags: bit 0 buyer, bit 1 seller; mode: 0 none, 1 seller short, 2 seller surplus,
    ///      3 buyer over-consumption, 4 buyer under-consumption.
    struct Book {
        int256 money;
        int256 scheduled;
        uint256 quantity;
        uint256 sliceTotal;
        uint256 cumulative;
        uint256 allocated;
        uint256 flags;
        uint256 mode;
    }

    uint256 private constant _MODE_SHORT = 1;
    uint256 private constant _MODE_SURPLUS = 2;
    uint256 private constant _MODE_OVER = 3;
    uint256 private constant _MODE_UNDER = 4;

    /// @dev Pass 1: check the party hints, sum each member's contracted energy and schedule,
    ///      reject a member on both sides. Bounded: e < 2**64 and at most 2**32 trades.
    function _schedules(uint256[] calldata trades, uint256[] calldata readings, uint256[] calldata parties)
        private
        pure
        returns (Book[] memory books)
    {
        if (parties.length * 2 != trades.length) revert LengthMismatch(trades.length / 2, parties.length);
        uint256 n = readings.length;
        books = new Book[](n);
        for (uint256 k = 0; k < parties.length; ++k) {
            uint256 w0 = trades[2 * k];
            uint256 hint = parties[k];
            uint256 b = hint >> 128;
            uint256 s = uint128(hint);
            uint32 buyerId = uint32(w0 >> 224);
            uint32 sellerId = uint32(w0 >> 192);
            if (b >= n || uint32(readings[b] >> 224) != buyerId) revert MissingReading(buyerId);
            if (s >= n || uint32(readings[s] >> 224) != sellerId) revert MissingReading(sellerId);
            uint256 e = (w0 >> 128) & _U64;
            Book memory buyer = books[b];
            Book memory seller = books[s];
            if (b == s || buyer.flags & 2 != 0) revert BothSides(buyerId);
            if (seller.flags & 1 != 0) revert BothSides(sellerId);
            unchecked {
                buyer.flags = 1;
                seller.flags = 2;
                buyer.quantity += e;
                seller.quantity += e;
                buyer.scheduled -= int256(e);
                seller.scheduled += int256(e);
            }
        }
    }

    /// @dev Each member's branch and slice total; its residual with the GRID at the tariffs.
    ///      Returns the GRID's change.
    function _memberDeviations(uint256[] calldata readings, Book[] memory books, uint256 tariffs)
        private
        pure
        returns (int256 grid)
    {
        uint256 retail = _retail(tariffs);
        uint256 feedIn = _feedIn(tariffs);
        for (uint256 k = 0; k < readings.length; ++k) {
            Book memory bk = books[k];
            int256 deviation = int256(int64(uint64(readings[k] >> 160))) - bk.scheduled;
            int256 residual = deviation;
            uint256 q = bk.quantity;
            if (q > 0) {
                if (bk.flags == 2) {
                    if (deviation < 0) {
                        uint256 x = uint256(-deviation) < q ? uint256(-deviation) : q;
                        (bk.mode, bk.sliceTotal) = (_MODE_SHORT, x);
                        residual = deviation + SafeCast.toInt256(x);
                    } else if (deviation > 0) {
                        (bk.mode, bk.sliceTotal) = (_MODE_SURPLUS, uint256(deviation));
                        residual = 0;
                    }
                } else if (deviation < 0) {
                    (bk.mode, bk.sliceTotal) = (_MODE_OVER, uint256(-deviation));
                    residual = 0;
                } else if (deviation > 0) {
                    uint256 x = uint256(deviation) < q ? uint256(deviation) : q;
                    (bk.mode, bk.sliceTotal) = (_MODE_UNDER, x);
                    residual = deviation - SafeCast.toInt256(x);
                }
            }
            if (residual > 0) {
                int256 amount = SafeCast.toInt256((uint256(residual) * feedIn) / 1000);
                bk.money += amount;
                grid -= amount;
            } else if (residual < 0) {
                int256 amount = SafeCast.toInt256((uint256(-residual) * retail) / 1000);
                bk.money -= amount;
                grid += amount;
            }
        }
    }

    /// @dev Pass 2 over the trades in order; returns the GRID's and OPERATOR's changes.
    function _settleTrades(uint256[] calldata trades, uint256[] calldata parties, Book[] memory books, uint256 tariffs)
        private
        pure
        returns (int256 grid, int256 fees)
    {
        for (uint256 k = 0; k < parties.length; ++k) {
            uint256 hint = parties[k];
            (int256 g, int256 f) = _settleTrade(books[hint >> 128], books[uint128(hint)], trades[2 * k], trades[2 * k + 1], tariffs);
            grid += g;
            fees += f;
        }
    }

    /// @dev The member's slice of a trade of `e` Wh: cumulative floors in trade order.
    function _slice(Book memory bk, uint256 e) private pure returns (uint256 piece) {
        if (bk.mode == 0) return 0;
        uint256 cumulative = bk.cumulative + e;
        bk.cumulative = cumulative;
        uint256 after_ = (bk.sliceTotal * cumulative) / bk.quantity;
        piece = after_ - bk.allocated;
        bk.allocated = after_;
    }

    /// @dev Pass 2 for one trade: P2P money on delivered energy, then the seller's and the
    ///      buyer's deviation slices. Returns the GRID's and OPERATOR's changes.
    function _settleTrade(Book memory buyer, Book memory seller, uint256 w0, uint256 w1, uint256 tariffs)
        private
        pure
        returns (int256 grid, int256 fee)
    {
        uint256 e = (w0 >> 128) & _U64;
        uint256 sSlice = _slice(seller, e);
        uint256 bSlice = _slice(buyer, e);
        uint256 delivered = seller.mode == _MODE_SHORT ? e - sSlice : e;
        uint256 paid = (delivered * (w1 >> 192)) / 1000;
        uint256 received = (delivered * ((w1 >> 128) & _U64)) / 1000;
        buyer.money -= SafeCast.toInt256(paid);
        seller.money += SafeCast.toInt256(received);
        fee = SafeCast.toInt256(paid) - SafeCast.toInt256(received);
        if (sSlice > 0) grid = _sellerSlice(buyer, seller, e, w1, sSlice, paid, tariffs);
        if (bSlice > 0) grid += _buyerSlice(buyer, w1 >> 192, (e * _toleranceBp(tariffs)) / 10_000, bSlice, tariffs);
    }

    /// @dev A seller's short or surplus slice on one trade of `e` Wh; returns the GRID's change.
    function _sellerSlice(
        Book memory buyer,
        Book memory seller,
        uint256 e,
        uint256 w1,
        uint256 slice,
        uint256 paid,
        uint256 tariffs
    ) private pure
        returns (int256 grid)
    {
        (uint256 inBand, uint256 outBand) = _bands(slice, (e * _toleranceBp(tariffs)) / 10_000);
        if (seller.mode == _MODE_SHORT) {
            uint256 penalty;
            (grid, penalty) = _shortfall(e, w1 >> 192, outBand, paid, _retail(tariffs));
            buyer.money += SafeCast.toInt256(penalty) - grid;
            seller.money -= SafeCast.toInt256(penalty);
        } else {
            grid = -SafeCast.toInt256((inBand * ((w1 >> 128) & _U64)) / 1000 + (outBand * _feedIn(tariffs)) / 1000);
            seller.money -= grid;
        }
    }

    /// @dev A slice split at the tolerance band: (in band, beyond the band).
    function _bands(uint256 slice, uint256 band) private pure returns (uint256 inBand, uint256 outBand) {
        inBand = slice < band ? slice : band;
        outBand = slice - inBand;
    }

    /// @dev A seller short by `slice` Wh (`outBand` of it beyond the band) on a trade of `e` Wh at
    ///      buyer price `pb`: the GRID's change and the seller's penalty to the buyer.
    ///      The buyer receives e - slice + inBand = e - outBand Wh at its price.
    function _shortfall(uint256 e, uint256 pb, uint256 outBand, uint256 paid, uint256 retail)
        private
        pure
        returns (int256 grid, uint256 penalty)
    {
        uint256 covered = ((e - outBand) * pb) / 1000;
        uint256 atRetail = (outBand * retail) / 1000;
        uint256 contract_ = (e * pb) / 1000;
        penalty = atRetail + covered > contract_ ? atRetail + covered - contract_ : 0;
        grid = SafeCast.toInt256(covered - paid + atRetail);
    }

    /// @dev A buyer's over- or under-consumption slice on one trade; returns the GRID's change.
    function _buyerSlice(Book memory buyer, uint256 pb, uint256 band, uint256 slice, uint256 tariffs)
        private
        pure
        returns (int256 grid)
    {
        uint256 inBand = slice < band ? slice : band;
        uint256 outBand = slice - inBand;
        if (buyer.mode == _MODE_OVER) {
            grid = SafeCast.toInt256((inBand * pb) / 1000 + (outBand * _retail(tariffs)) / 1000);
        } else {
            grid = -SafeCast.toInt256((inBand * pb) / 1000 + (outBand * _feedIn(tariffs)) / 1000);
        }
        buyer.money -= grid;
    }
}
