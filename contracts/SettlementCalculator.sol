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

    /// @notice The members [from, upTo) of the readings, in `span` = from << 128 | upTo, are
    ///         out of range.
    error BadSpan(uint256 from, uint256 upTo, uint256 members);

    uint256 private constant _U64 = 0xffffffffffffffff;
    /// @dev A member's entry of pass 1: quantity (low bits) | side << 254 (1 buyer, 2 seller).
    uint256 private constant _SIDE_SHIFT = 254;
    uint256 private constant _QUANTITY = (uint256(1) << 254) - 1;
    /// @dev Pass 2's word per member: its branch is known (_slice).
    uint256 private constant _KNOWN = uint256(1) << 255;
    uint256 private constant _U120 = (uint256(1) << 120) - 1;
    uint256 private constant _U128 = (uint256(1) << 128) - 1;

    uint256 private constant _MODE_SHORT = 1;
    uint256 private constant _MODE_SURPLUS = 2;
    uint256 private constant _MODE_OVER = 3;
    uint256 private constant _MODE_UNDER = 4;

    /// @notice Settle one interval, or the part of it that falls to the members [from, upTo)
    ///         of the readings (a page).
    /// @dev A page returns its members' changes in full (every trade of theirs is settled,
    ///      with each trade partner's position in its own trades), the GRID's change of their
    ///      residuals and of the trades whose buyer is theirs, and the fees of those trades:
    ///      the pages of a partition of the members add up to the whole settlement exactly.
    /// @param tariffs retail << 128 | feedIn << 64 | toleranceBp.
    /// @param trades The delivered trade word pairs.
    /// @param readings One reading word per member, ids ascending.
    /// @param parties For trade k: buyer's reading index << 128 | seller's reading index.
    /// @param span from << 128 | upTo: the members computed (0 << 128 | readings.length: all).
    /// @return deltas The change of each member of [from, upTo), micro-tokens (deltas[k - from]).
    /// @return gridDelta The GRID account's change due to these members.
    /// @return fees The OPERATOR account's change (network fees) due to these members.
    function compute(
        uint256 tariffs,
        uint256[] calldata trades,
        uint256[] calldata readings,
        uint256[] calldata parties,
        uint256 span
    ) external pure returns (int256[] memory deltas, int256 gridDelta, int256 fees) {
        uint256 from = span >> 128;
        uint256 upTo = uint128(span);
        if (from > upTo || upTo > readings.length) revert BadSpan(from, upTo, readings.length);
        uint256[] memory books = _schedules(trades, readings, parties);
        uint256[] memory done = new uint256[](readings.length);
        deltas = new int256[](upTo - from);
        gridDelta = _residuals(readings, books, done, tariffs, from, deltas);
        int256 tradeGrid;
        (tradeGrid, fees) = _settleTrades(trades, parties, readings, books, done, tariffs, from, deltas);
        gridDelta += tradeGrid;
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

    /// @dev Pass 1 over every trade: check the party hints, sum each member's contracted energy,
    ///      reject a member on both sides. Bounded: e < 2**64 and at most 2**32 trades.
    function _schedules(uint256[] calldata trades, uint256[] calldata readings, uint256[] calldata parties)
        private
        pure
        returns (uint256[] memory books)
    {
        if (parties.length * 2 != trades.length) revert LengthMismatch(trades.length / 2, parties.length);
        uint256 n = readings.length;
        books = new uint256[](n);
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
            uint256 buyer = books[b];
            uint256 seller = books[s];
            if (b == s || buyer >> _SIDE_SHIFT == 2) revert BothSides(buyerId);
            if (seller >> _SIDE_SHIFT == 1) revert BothSides(sellerId);
            unchecked {
                books[b] = ((buyer & _QUANTITY) + e) | (uint256(1) << _SIDE_SHIFT);
                books[s] = ((seller & _QUANTITY) + e) | (uint256(2) << _SIDE_SHIFT);
            }
        }
    }

    /// @dev A member's deviation branch (mode: 0 none, 1 seller short, 2 seller surplus,
    ///      3 buyer over-consumption, 4 buyer under-consumption), the slice it splits over its
    ///      trades, and the residual it settles with the GRID at the tariffs.
    function _branch(uint256 reading, uint256 book)
        private
        pure
        returns (uint256 mode, uint256 sliceTotal, int256 residual)
    {
        uint256 q = book & _QUANTITY;
        bool seller = book >> _SIDE_SHIFT == 2;
        int256 scheduled = seller ? SafeCast.toInt256(q) : -SafeCast.toInt256(q);
        int256 deviation = int256(int64(uint64(reading >> 160))) - scheduled;
        residual = deviation;
        if (q == 0 || deviation == 0) return (0, 0, residual);
        if (seller) {
            if (deviation < 0) {
                uint256 x = uint256(-deviation) < q ? uint256(-deviation) : q;
                return (_MODE_SHORT, x, deviation + SafeCast.toInt256(x));
            }
            return (_MODE_SURPLUS, uint256(deviation), 0);
        }
        if (deviation < 0) return (_MODE_OVER, uint256(-deviation), 0);
        uint256 y = uint256(deviation) < q ? uint256(deviation) : q;
        return (_MODE_UNDER, y, deviation - SafeCast.toInt256(y));
    }

    /// @dev Each member of the page settles its residual with the GRID at the tariffs (into
    ///      `deltas`, its branch kept in `done`: _slice); returns the GRID's change.
    function _residuals(
        uint256[] calldata readings,
        uint256[] memory books,
        uint256[] memory done,
        uint256 tariffs,
        uint256 from,
        int256[] memory deltas
    ) private pure returns (int256 grid) {
        for (uint256 k = 0; k < deltas.length; ++k) {
            (uint256 mode, uint256 total, int256 residual) = _branch(readings[from + k], books[from + k]);
            done[from + k] = _KNOWN | (mode << 248) | (total << 128);
            int256 amount = 0;
            if (residual > 0) {
                amount = SafeCast.toInt256((uint256(residual) * _feedIn(tariffs)) / 1000);
            } else if (residual < 0) {
                amount = -SafeCast.toInt256((uint256(-residual) * _retail(tariffs)) / 1000);
            }
            deltas[k] = amount;
            grid -= amount;
        }
    }

    /// @dev Pass 2 over the trades in order, each member's position in its own trades kept for
    ///      every member (`done`); the trades with a party in the page are settled. Returns
    ///      the GRID's and OPERATOR's changes of the trades whose buyer is in the page.
    function _settleTrades(
        uint256[] calldata trades,
        uint256[] calldata parties,
        uint256[] calldata readings,
        uint256[] memory books,
        uint256[] memory done,
        uint256 tariffs,
        uint256 from,
        int256[] memory deltas
    ) private pure returns (int256 grid, int256 fees) {
        uint256 width = deltas.length;
        for (uint256 k = 0; k < parties.length; ++k) {
            uint256 hint = parties[k];
            uint256 b = hint >> 128;
            uint256 s = uint128(hint);
            uint256 e = (trades[2 * k] >> 128) & _U64;
            bool buyerIn;
            bool sellerIn;
            unchecked {
                buyerIn = b - from < width;
                sellerIn = s - from < width;
            }
            if (!buyerIn && !sellerIn) {
                unchecked {
                    // positions only (low bits, below 2**96: no carry into the branch bits)
                    done[b] += e;
                    done[s] += e;
                }
                continue;
            }
            uint256 sSlice = _slice(done, s, readings[s], books[s], e);
            uint256 bSlice = _slice(done, b, readings[b], books[b], e);
            (int256 toBuyer, int256 toSeller, int256 g, int256 f) =
                _settleTrade(trades[2 * k + 1], e, sSlice, bSlice, tariffs);
            if (buyerIn) {
                deltas[b - from] += toBuyer;
                grid += g;
                fees += f;
            }
            if (sellerIn) deltas[s - from] += toSeller;
        }
    }

    /// @dev Member `k`'s slice of its next trade, of `e` Wh (cumulative floors in trade order),
    ///      as slice << 8 | mode (0 when it has no branch). `done[k]` holds the member's
    ///      position in its own trades (low 128 bits: contracts sum below 2**96) and, once
    ///      known, its branch: _KNOWN | mode << 248 | sliceTotal << 128 (sliceTotal is at most
    ///      |reading| + quantity < 2**97), so each member's branch is computed once.
    function _slice(uint256[] memory done, uint256 k, uint256 reading, uint256 book, uint256 e)
        private
        pure
        returns (uint256)
    {
        uint256 w = done[k];
        if (w & _KNOWN == 0) {
            (uint256 branchMode, uint256 total,) = _branch(reading, book);
            w |= _KNOWN | (branchMode << 248) | (total << 128);
        }
        unchecked {
            done[k] = w + e;
        }
        uint256 mode = (w >> 248) & 0x7f;
        if (mode == 0) return 0;
        uint256 sliceTotal = (w >> 128) & _U120;
        uint256 before = w & _U128;
        uint256 q = book & _QUANTITY;
        return (((sliceTotal * (before + e)) / q - (sliceTotal * before) / q) << 8) | mode;
    }

    /// @dev One trade of `e` Wh: P2P money on delivered energy, then the seller's and the
    ///      buyer's deviation slices (`sliceMode`, `bSliceMode`: slice << 8 | mode, of _slice).
    ///      Returns the buyer's, the seller's, the GRID's and the OPERATOR's changes.
    function _settleTrade(uint256 w1, uint256 e, uint256 sSliceMode, uint256 bSliceMode, uint256 tariffs)
        private
        pure
        returns (int256 toBuyer, int256 toSeller, int256 grid, int256 fee)
    {
        uint256 sMode = sSliceMode & 0xff;
        uint256 sSlice = sSliceMode >> 8;
        uint256 bSlice = bSliceMode >> 8;
        uint256 delivered = sMode == _MODE_SHORT ? e - sSlice : e;
        uint256 paid = (delivered * (w1 >> 192)) / 1000;
        uint256 received = (delivered * ((w1 >> 128) & _U64)) / 1000;
        toBuyer = -SafeCast.toInt256(paid);
        toSeller = SafeCast.toInt256(received);
        fee = SafeCast.toInt256(paid) - SafeCast.toInt256(received);
        uint256 band = (e * _toleranceBp(tariffs)) / 10_000;
        if (sSlice > 0) {
            (uint256 inBand, uint256 outBand) = _bands(sSlice, band);
            if (sMode == _MODE_SHORT) {
                uint256 penalty;
                (grid, penalty) = _shortfall(e, w1 >> 192, outBand, paid, _retail(tariffs));
                toBuyer += SafeCast.toInt256(penalty) - grid;
                toSeller -= SafeCast.toInt256(penalty);
            } else {
                grid = -SafeCast.toInt256(
                    (inBand * ((w1 >> 128) & _U64)) / 1000 + (outBand * _feedIn(tariffs)) / 1000
                );
                toSeller -= grid;
            }
        }
        if (bSlice > 0) {
            int256 g = _buyerSlice(w1 >> 192, band, bSlice, bSliceMode & 0xff, tariffs);
            toBuyer -= g;
            grid += g;
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

    /// @dev A buyer's over- or under-consumption slice on one trade at its price `pb`; returns
    ///      the GRID's change (the buyer's is its negative).
    function _buyerSlice(uint256 pb, uint256 band, uint256 slice, uint256 mode, uint256 tariffs)
        private
        pure
        returns (int256 grid)
    {
        (uint256 inBand, uint256 outBand) = _bands(slice, band);
        if (mode == _MODE_OVER) {
            grid = SafeCast.toInt256((inBand * pb) / 1000 + (outBand * _retail(tariffs)) / 1000);
        } else {
            grid = -SafeCast.toInt256((inBand * pb) / 1000 + (outBand * _feedIn(tariffs)) / 1000);
        }
    }
}
