// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {DataShards} from "./DataShards.sol";
import {PathFees} from "./PathFees.sol";

/// @title FeeClearing
/// @notice Verification of fee-aware clearing results (docs/methods.md section 3): the surplus-ranked
///         greedy rule of market/greedy.py re-executed to the unit, and the welfare-optimal rule
///         of market/optimal.py certified by integer LP duals. The operator computes off chain
///         and submits the result; the library only checks it ("checking costs less than
///         searching") and reverts with a named error carrying the offending index.
/// @dev Words use the layouts of Market.sol:
///        bid word:        member u32 <<224 | side u8 <<216 | eWh u64 <<152 | price u64 <<88 | bus u16 <<72
///        trade words (2): w0 = buyer u32 <<224 | seller u32 <<192 | eWh u64 <<128 | buyerBus u16 <<112
///                              | sellerBus u16 <<96;  w1 = buyerPrice u64 <<192 | sellerPrice u64 <<128
///      Fee table: `nBuses * nBuses` big-endian uint32 entries, entry (p, q) at byte offset
///      4 * (p * nBuses + q) is the fee in micro-tokens per kWh of a trade from a seller at bus p
///      to a buyer at bus q (market/fees.py: fees[seller_bus, buyer_bus]). Fees in path form
///      (PathFees.sol, market/path_fees.py) are used wherever a table is: greedy computes the
///      row of a leaving head's bus into `Queues.row` and scans it like a table row; optimal
///      (at most 36 buses) expands the whole table first.
///      Surplus of buyer i (bid b, bus q) and seller j (ask a, bus p): s = b - a - c[p][q]
///      (micro-tokens per kWh). Trade prices: the seller receives a + floor(s * num / den), the
///      buyer pays that plus c (kappa = num / den, the seller's share of the surplus).
///      Preconditions (Market.recordRound enforces them): member ids unique, bid words well formed.
library FeeClearing {
    /// @notice Clearing parameters: buses covered by the fee table and kappa = kappaNum / kappaDen.
    struct Config {
        uint256 nBuses;
        uint256 kappaNum;
        uint256 kappaDen;
    }

    /// @dev Greedy book: bid words in queue order and per-bus queue state.
    ///      Bus state word: headPrice u64 <<192 | headId u32 <<160 | headRemainingWh u64 <<96
    ///      | head u32 <<64 | end u32 <<32 | position in the active list u32. The queue of a bus
    ///      is book[head:end]; it is active while head < end. A page checks trades up to
    ///      `upTo`; those before `scanFrom` were verified by earlier pages: their steps are
    ///      replayed without the pair scans.
    struct Queues {
        uint256[] book;
        uint256[] buyState;
        uint256[] sellState;
        uint256[] activeBuy;
        uint256[] activeSell;
        bytes row;
        uint256 scanFrom;
        uint256 upTo;
    }

    /// @dev Optimal: inputs of one certificate check (bids and duals copied to memory) and the
    ///      first tie-level failure (check << 128 | index) + 1, 0 = none yet.
    struct Certificate {
        Config cfg;
        bytes fees;
        uint256[] bids;
        uint256[] duals;
        uint256[] traded;
        uint256 tieFailure;
    }

    // ----------------------------------------------------------------- errors
    /// @notice The fee table has the wrong byte length for the configured number of buses.
    error FeeTableLength(uint256 expectedBytes, uint256 gotBytes);
    /// @notice The submitted fee table does not hash to the recorded hash.
    error FeeTableMismatch(bytes32 recorded, bytes32 submitted);
    /// @notice kappa = num / den must satisfy den > 0 and num <= den; nBuses in 1..65536.
    error BadFeeConfig(uint256 nBuses, uint256 kappaNum, uint256 kappaDen);
    /// @notice Two parallel inputs have inconsistent lengths.
    error FeeInputLength(uint256 expected, uint256 got);
    /// @notice Bid `index` has a side other than 0/1 or zero energy.
    error MalformedOrder(uint256 index);
    /// @notice Bid `index` sits at a bus outside the fee table.
    error BusOutOfRange(uint256 index, uint256 bus);
    /// @notice The queue order is not a permutation sorted by (bus, price, member) at `position`.
    error BadQueueOrder(uint256 position);
    /// @notice Trade `trade` has non-zero unused bits.
    error MalformedTrade(uint256 trade);
    /// @notice Greedy: trade `trade` is not between the current heads of its buses' queues.
    error NotQueueHead(uint256 trade);
    /// @notice Greedy: trade `trade` has surplus <= 0.
    error NonPositiveSurplus(uint256 trade);
    /// @notice Greedy: trade `trade` does not trade min(remaining buy, remaining sell).
    error WrongQuantity(uint256 trade, uint256 expectedWh, uint256 gotWh);
    /// @notice Trade `trade`'s prices differ from the kappa split.
    error WrongPrice(uint256 trade, uint256 expectedBuyerPrice, uint256 expectedSellerPrice);
    /// @notice Greedy: at the step of trade `trade`, bus pair (sellerBus, buyerBus) ranked above
    ///         the pair that traded (larger surplus; ties: smaller fee, buyer id, seller id).
    error BetterPairExists(uint256 trade, uint256 sellerBus, uint256 buyerBus);
    /// @notice Greedy: after the last trade, bus pair (sellerBus, buyerBus) still has surplus > 0.
    error SurplusLeft(uint256 sellerBus, uint256 buyerBus);
    /// @notice Optimal: trade `trade`'s party hint does not name its buyer and seller bids.
    error BadParty(uint256 trade);
    /// @notice Optimal: trade `trade` has zero energy.
    error ZeroQuantity(uint256 trade);
    /// @notice Optimal: dual of bid `index` is >= 2**64.
    error DualOutOfRange(uint256 index);
    /// @notice Optimal: u_i + v_j != s_ij on trade `trade` (complementary slackness).
    error SlacknessViolated(uint256 trade);
    /// @notice Optimal: bid `index`'s dual-adjusted price (b - u of a buyer, a + v of a seller)
    ///         lies beyond the bound the certificate claims for its bus, or at it with a
    ///         tie-break term beyond the claimed one.
    error BoundNotClaimed(uint256 index);
    /// @notice Optimal: bid `index` trades more than its order.
    error Overfilled(uint256 index, uint256 tradedWh, uint256 orderWh);
    /// @notice Optimal: bid `index` has a positive dual but is not fully traded.
    error SlackOrderHasDual(uint256 index);
    /// @notice Optimal: max(b_i - u_i) at buyerBus - min(a_j + v_j) at sellerBus > fee (dual infeasible).
    error DualInfeasible(uint256 sellerBus, uint256 buyerBus);
    /// @notice Optimal: the welfare certificate holds, but the tie-break certificate does not:
    ///         the result is not the canonical optimum (docs/methods.md section 3). `check`: 0
    ///         tie-break slackness fails on trade `index`; 1 bid `index` has a non-zero
    ///         tie-break dual but is not full, or a negative one with a zero welfare dual; 2
    ///         tie-break dual infeasible at bus pair `index` = sellerBus << 16 | buyerBus; 3
    ///         trade `index` breaks the north-west-corner listing order.
    error NonCanonicalOptimum(uint256 check, uint256 index);

    uint256 private constant _U32 = 0xffffffff;
    uint256 private constant _U64 = 0xffffffffffffffff;
    uint256 private constant _U128 = 0xffffffffffffffffffffffffffffffff;
    /// @notice Flag (bit 255) of verifyGreedyPage's result: the page checked the last entry.
    uint256 internal constant DONE = 1 << 255;
    /// @dev Offset that keeps signed surpluses non-negative (|s| < 2**65).
    uint256 private constant _OFF = 0x40000000000000000;
    uint256 private constant _TRADE0_LOW = (1 << 96) - 1;
    uint256 private constant _TRADE1_LOW = (1 << 128) - 1;
    uint256 private constant _NONE = type(uint256).max;
    /// @dev Optimal tie-break penalty per Wh of a trade: w_i + w_j + d_pq with order weight
    ///      w = member id + 1 and bus-pair weight d_pq = nBuses**p * (q + 1) << _PAIR_SHIFT.
    uint256 private constant _PAIR_SHIFT = 34;
    /// @dev Largest fee table for the optimal rule (d_pq < 2**221) and bound on |tie duals|.
    uint256 private constant _MAX_OPTIMAL_BUSES = 36;
    int256 private constant _TIE_DUAL_BOUND = int256(1 << 240);
    uint256 private constant _CHECK_SLACKNESS = 0;
    uint256 private constant _CHECK_FILL = 1;
    uint256 private constant _CHECK_DUAL = 2;
    uint256 private constant _CHECK_PAIRING = 3;

    // ------------------------------------------------------------ fee table
    /// @notice Revert unless `fees` is a table (or path-form data) for `cfg` hashing to `recorded`.
    function checkFeeTable(Config memory cfg, bytes memory fees, bytes32 recorded) internal pure {
        if (PathFees.isPathForm(fees) && PathFees.check(fees) != cfg.nBuses) {
            revert FeeTableLength(4 * cfg.nBuses * cfg.nBuses, fees.length);
        }
        _checkConfig(cfg, fees);
        bytes32 h = keccak256(fees);
        if (h != recorded) revert FeeTableMismatch(recorded, h);
    }

    /// @notice Fee in micro-tokens per kWh from a seller at `sellerBus` to a buyer at `buyerBus`.
    function fee(bytes memory fees, uint256 nBuses, uint256 sellerBus, uint256 buyerBus)
        internal
        pure
        returns (uint256 c)
    {
        if (PathFees.isPathForm(fees)) return PathFees.fee(fees, sellerBus, buyerBus);
        assembly ("memory-safe") {
            c := shr(224, mload(add(add(fees, 0x20), shl(2, add(mul(sellerBus, nBuses), buyerBus)))))
        }
    }

    function _checkConfig(Config memory cfg, bytes memory fees) private pure {
        uint256 nb = cfg.nBuses;
        if (nb == 0 || nb > 65536 || cfg.kappaDen == 0 || cfg.kappaNum > cfg.kappaDen || cfg.kappaDen > _U64) {
            revert BadFeeConfig(nb, cfg.kappaNum, cfg.kappaDen);
        }
        if (PathFees.isPathForm(fees)) {
            uint256 pathBuses = PathFees.buses(fees);
            if (pathBuses != nb) revert FeeTableLength(4 * nb * nb, 4 * pathBuses * pathBuses);
        } else if (fees.length != 4 * nb * nb) {
            revert FeeTableLength(4 * nb * nb, fees.length);
        }
    }

    // --------------------------------------------------------------- greedy
    /// @notice Check that `trades` is exactly clear_greedy(bids, fees, kappa) (market/greedy.py).
    /// @param order Queue order: order[0:nBuys] indexes the buy bids sorted by (bus asc, price
    ///        desc, member asc), order[nBuys:] the sell bids by (bus asc, price asc, member asc).
    /// @param trades Trade word pairs in clearing order.
    /// @return welfareWhMicro Sum of s * eWh over the trades (micro-tokens/kWh x Wh).
    /// @dev Each pair version (a bus pair with fixed queue heads) is compared once, when one of
    ///      its heads leaves, with the key of the trade made at that step; keys must not
    ///      increase from trade to trade; versions alive at the end must have surplus <= 0.
    ///      Cost O(n + trades + sum over leaving heads of the active buses on the other side
    ///      + S*Q once). See docs/fee_clearing.md for the soundness argument.
    function verifyGreedy(
        Config memory cfg,
        bytes memory fees,
        uint256[] calldata bids,
        uint256[] calldata order,
        uint256 nBuys,
        uint256[] calldata trades
    ) internal pure returns (uint256 welfareWhMicro) {
        return verifyGreedyPage(cfg, fees, bids, order, nBuys, trades, _U128) & ~DONE;
    }

    /// @notice One page of verifyGreedy over its entries: the T trades, then the S seller buses
    ///         left active after them (the final check, one seller against every active buyer
    ///         bus). `span` = from << 128 | upTo (upTo = 2**128 - 1: to the end). Trades
    ///         before `from` were verified by earlier pages: their steps are replayed (queues,
    ///         keys, energies) without the scans for a better pair; the page's trades are
    ///         verified in full and its sellers checked for surplus left.
    /// @return welfareWhMicro Sum of s * eWh over the trades it reached, with DONE set when
    ///         the page ends at T + S (every entry checked).
    function verifyGreedyPage(
        Config memory cfg,
        bytes memory fees,
        uint256[] calldata bids,
        uint256[] calldata order,
        uint256 nBuys,
        uint256[] calldata trades,
        uint256 span
    ) internal pure returns (uint256 welfareWhMicro) {
        _checkConfig(cfg, fees);
        Queues memory qs = _queues(cfg.nBuses, bids, order, nBuys);
        if (PathFees.isPathForm(fees)) qs.row = new bytes(4 * cfg.nBuses + 32);
        uint256 nt = trades.length >> 1;
        uint256 from = span >> 128;
        uint256 upTo = span & _U128;
        if (from > upTo) revert FeeInputLength(from, upTo);
        qs.scanFrom = from < nt ? from : nt;
        qs.upTo = upTo < nt ? upTo : nt;
        welfareWhMicro = _greedyTrades(cfg, fees, qs, trades);
        if (upTo < nt) return welfareWhMicro;
        uint256 end = nt + qs.activeSell.length;
        if (upTo == _U128) upTo = end;
        if (upTo > end) revert FeeInputLength(end, upTo);
        qs.activeSell = _slice(qs.activeSell, from > nt ? from - nt : 0, upTo - nt);
        _noSurplusLeft(fees, cfg.nBuses, qs);
        if (upTo == end) welfareWhMicro |= DONE;
    }

    /// @dev A copy of list[a:b].
    function _slice(uint256[] memory list, uint256 a, uint256 b) private pure returns (uint256[] memory out) {
        out = new uint256[](b - a);
        for (uint256 i = a; i < b; ++i) {
            out[i - a] = list[i];
        }
    }

    /// @dev Re-run the greedy steps of trades [0, qs.upTo); returns their welfare.
    function _greedyTrades(Config memory cfg, bytes memory fees, Queues memory qs, uint256[] calldata trades)
        private
        pure
        returns (uint256 welfareWhMicro)
    {
        if (trades.length & 1 != 0) revert FeeInputLength(trades.length + 1, trades.length);
        uint256 upTo = qs.upTo;
        if (upTo > trades.length >> 1 || qs.scanFrom > upTo) revert FeeInputLength(trades.length >> 1, upTo);
        uint256 prevKey;
        (prevKey, welfareWhMicro) = _replay(cfg, fees, qs, trades);
        for (uint256 t = qs.scanFrom; t < upTo; ++t) {
            uint256 gain;
            (prevKey, gain) = _greedyStep(cfg, fees, qs, t, prevKey, trades[2 * t], trades[2 * t + 1]);
            unchecked {
                welfareWhMicro += gain;
            }
        }
    }

    /// @dev Replay the steps of the trades before qs.scanFrom (_replayStep); returns the last
    ///      one's key (_NONE if none) and their welfare.
    function _replay(Config memory cfg, bytes memory fees, Queues memory qs, uint256[] calldata trades)
        private
        pure
        returns (uint256 key, uint256 welfareWhMicro)
    {
        key = _NONE;
        for (uint256 t = 0; t < qs.scanFrom; ++t) {
            uint256 gain;
            (key, gain) = _replayStep(cfg, fees, qs, t, trades[2 * t]);
            unchecked {
                welfareWhMicro += gain;
            }
        }
    }

    /// @dev Revert with SurplusLeft if an active bus pair still has surplus > 0.
    function _noSurplusLeft(bytes memory fees, uint256 nb, Queues memory qs) private pure {
        (uint256 p, uint256 q) = qs.row.length == 0
            ? _surplusLeft(fees, nb, qs.buyState, qs.sellState, qs.activeBuy, qs.activeSell)
            : _surplusLeftPath(fees, qs);
        if (p != _NONE) revert SurplusLeft(p, q);
    }

    /// @dev _surplusLeft for fees in path form: the active sellers in list order, each against
    ///      the active buyers in list order (the seller's fees computed into qs.row first).
    function _surplusLeftPath(bytes memory fees, Queues memory qs) private pure returns (uint256, uint256) {
        uint256[] memory sellers = qs.activeSell;
        for (uint256 i = 0; i < sellers.length; ++i) {
            uint256 p = sellers[i];
            PathFees.fillRow(fees, qs.row, p, qs.activeBuy);
            uint256 q = _buyerAbove(qs.row, qs.buyState, qs.activeBuy, qs.sellState[p] >> 192);
            if (q != _NONE) return (p, q);
        }
        return (_NONE, _NONE);
    }

    /// @dev The first bus q of `buyers` whose head price exceeds `ask` + row[q], or _NONE.
    function _buyerAbove(bytes memory row, uint256[] memory buyState, uint256[] memory buyers, uint256 ask)
        private
        pure
        returns (uint256 q)
    {
        q = _NONE;
        assembly ("memory-safe") {
            let fees := add(row, 0x20)
            let heads := add(buyState, 0x20)
            let ptr := add(buyers, 0x20)
            let last := add(ptr, shl(5, mload(buyers)))
            for {} lt(ptr, last) { ptr := add(ptr, 0x20) } {
                let b := mload(ptr)
                if gt(shr(192, mload(add(heads, shl(5, b)))), add(ask, shr(224, mload(add(fees, shl(2, b)))))) {
                    q := b
                    break
                }
            }
        }
    }

    /// @dev Check the queue order and build the per-bus queues.
    function _queues(uint256 nb, uint256[] calldata bids, uint256[] calldata order, uint256 nBuys)
        private
        pure
        returns (Queues memory qs)
    {
        if (nBuys > bids.length) revert FeeInputLength(bids.length, nBuys);
        qs.book = _permute(nb, bids, order);
        qs.buyState = new uint256[](nb);
        qs.sellState = new uint256[](nb);
        // at most one entry per bus and one per bid (a bus joins with its first bid)
        uint256 capacity = nb < bids.length ? nb : bids.length;
        qs.activeBuy = _emptyList(capacity);
        qs.activeSell = _emptyList(capacity);
        uint256[] memory book = qs.book;
        uint256 prevKey = 0;
        for (uint256 k = 0; k < book.length; ++k) {
            uint256 w = book[k];
            bool isBuy = k < nBuys;
            if (((w >> 216) & 0xff == 0) != isBuy) revert BadQueueOrder(k);
            uint256 bus = (w >> 72) & 0xffff;
            uint256 price = (w >> 88) & _U64;
            uint256 key = (bus << 128) | ((isBuy ? _U64 - price : price) << 32) | (w >> 224);
            bool first = k == 0 || k == nBuys;
            if (!first && key <= prevKey) revert BadQueueOrder(k);
            uint256[] memory state = isBuy ? qs.buyState : qs.sellState;
            if (first || bus != prevKey >> 128) {
                uint256 pos = _push(isBuy ? qs.activeBuy : qs.activeSell, bus);
                state[bus] = (price << 192) | ((w >> 224) << 160) | (((w >> 152) & _U64) << 96) | (k << 64)
                    | ((k + 1) << 32) | pos;
            } else {
                state[bus] += 1 << 32;
            }
            prevKey = key;
        }
    }

    /// @dev bids[order[k]] for k = 0..n-1, checking that order is a permutation and each bid is
    ///      well formed with its bus inside the fee table.
    function _permute(uint256 nb, uint256[] calldata bids, uint256[] calldata order)
        private
        pure
        returns (uint256[] memory book)
    {
        uint256 n = bids.length;
        if (order.length != n) revert FeeInputLength(n, order.length);
        book = new uint256[](n);
        uint256[] memory seen = new uint256[]((n >> 8) + 1);
        for (uint256 k = 0; k < n; ++k) {
            uint256 idx = order[k];
            if (idx >= n) revert BadQueueOrder(k);
            uint256 bit = 1 << (idx & 0xff);
            uint256 slot = seen[idx >> 8];
            if (slot & bit != 0) revert BadQueueOrder(k);
            seen[idx >> 8] = slot | bit;
            uint256 w = bids[idx];
            _checkBid(w, idx, nb);
            book[k] = w;
        }
    }

    /// @dev Revert unless bid word w (index idx) has side 0/1, energy > 0 and bus < nb.
    function _checkBid(uint256 w, uint256 idx, uint256 nb) private pure {
        if ((w >> 216) & 0xff > 1 || (w >> 152) & _U64 == 0) revert MalformedOrder(idx);
        uint256 bus = (w >> 72) & 0xffff;
        if (bus >= nb) revert BusOutOfRange(idx, bus);
    }

    /// @dev An array with room for `capacity` words and length 0.
    function _emptyList(uint256 capacity) private pure returns (uint256[] memory list) {
        list = new uint256[](capacity);
        assembly ("memory-safe") {
            mstore(list, 0)
        }
    }

    /// @dev Append v to a list made by _emptyList (no capacity check: the callers push at most
    ///      one entry per bus and per bid).
    function _push(uint256[] memory list, uint256 v) private pure returns (uint256 pos) {
        assembly ("memory-safe") {
            pos := mload(list)
            mstore(add(add(list, 0x20), shl(5, pos)), v)
            mstore(list, add(pos, 1))
        }
    }

    /// @dev One greedy step: check trade `t` against the queue heads, compare the pair versions
    ///      that end with it, advance the queues. Returns the trade's key and s * eWh.
    function _greedyStep(
        Config memory cfg,
        bytes memory fees,
        Queues memory qs,
        uint256 t,
        uint256 prevKey,
        uint256 w0,
        uint256 w1
    ) private pure returns (uint256 key, uint256 gain) {
        (uint256 bw, uint256 sw) = _heads(qs, cfg.nBuses, t, w0);
        if (w0 & _TRADE0_LOW != 0 || w1 & _TRADE1_LOW != 0) revert MalformedTrade(t);
        uint256 c = fee(fees, cfg.nBuses, (w0 >> 96) & 0xffff, (w0 >> 112) & 0xffff);
        uint256 s;
        unchecked {
            // prices < 2**64 and c < 2**32: no overflow
            if ((bw >> 192) <= (sw >> 192) + c) revert NonPositiveSurplus(t);
            s = (bw >> 192) - (sw >> 192) - c;
            key = ((s + _OFF) << 96) | ((_U32 - c) << 64) | ((_U32 - ((bw >> 160) & _U32)) << 32)
                | (_U32 - ((sw >> 160) & _U32));
        }
        if (key > prevKey) revert BetterPairExists(t - 1, (w0 >> 96) & 0xffff, (w0 >> 112) & 0xffff);
        _checkPrices(cfg, t, w1, sw >> 192, c, s);
        gain = s * _consume(fees, cfg.nBuses, qs, t, key, bw, sw, w0);
    }

    /// @dev Queue state words of trade `t`'s buyer bus and seller bus; reverts with
    ///      NotQueueHead unless both queues are active and the trade names their heads.
    function _heads(Queues memory qs, uint256 nb, uint256 t, uint256 w0)
        private
        pure
        returns (uint256 bw, uint256 sw)
    {
        uint256 q = (w0 >> 112) & 0xffff;
        uint256 p = (w0 >> 96) & 0xffff;
        if (q >= nb || p >= nb) revert NotQueueHead(t);
        bw = qs.buyState[q];
        sw = qs.sellState[p];
        if (
            ((bw >> 64) & _U32) >= ((bw >> 32) & _U32) || ((sw >> 64) & _U32) >= ((sw >> 32) & _U32)
                || (w0 >> 224) != ((bw >> 160) & _U32) || ((w0 >> 192) & _U32) != ((sw >> 160) & _U32)
        ) revert NotQueueHead(t);
    }

    /// @dev Check trade t's energy (min of the heads' remaining Wh), compare the pair versions
    ///      that end with it against its key, advance the queues. Returns the energy.
    function _consume(
        bytes memory fees,
        uint256 nb,
        Queues memory qs,
        uint256 t,
        uint256 key,
        uint256 bw,
        uint256 sw,
        uint256 w0
    ) private pure returns (uint256 e) {
        uint256 rb = (bw >> 96) & _U64;
        uint256 rs = (sw >> 96) & _U64;
        e = rb < rs ? rb : rs;
        if ((w0 >> 128) & _U64 != e) revert WrongQuantity(t, e, (w0 >> 128) & _U64);
        // Pair versions ending now: row p if the seller leaves, column q if the buyer leaves.
        if (rs == e) {
            uint256 bad = qs.row.length == 0
                ? _rowCheck(fees, nb, (w0 >> 96) & 0xffff, sw, qs, key)
                : _pathRowCheck(fees, (w0 >> 96) & 0xffff, sw, qs, key);
            if (bad != _NONE) revert BetterPairExists(t, (w0 >> 96) & 0xffff, bad);
        }
        if (rb == e) {
            uint256 bad = qs.row.length == 0
                ? _columnCheck(fees, nb, (w0 >> 112) & 0xffff, bw, qs, key)
                : _pathColumnCheck(fees, (w0 >> 112) & 0xffff, bw, qs, key);
            if (bad != _NONE) revert BetterPairExists(t, bad, (w0 >> 112) & 0xffff);
        }
        if (rs == e) _advance(qs.book, qs.sellState, qs.activeSell, (w0 >> 96) & 0xffff);
        else qs.sellState[(w0 >> 96) & 0xffff] = sw - (e << 96);
        if (rb == e) _advance(qs.book, qs.buyState, qs.activeBuy, (w0 >> 112) & 0xffff);
        else qs.buyState[(w0 >> 112) & 0xffff] = bw - (e << 96);
    }

    /// @dev Take `e` Wh from the heads of trade word `w0`'s queues (state words bw, sw): a head
    ///      with nothing left leaves its queue.
    function _take(Queues memory qs, uint256 bw, uint256 sw, uint256 w0, uint256 e) private pure {
        if ((sw >> 96) & _U64 == e) _advance(qs.book, qs.sellState, qs.activeSell, (w0 >> 96) & 0xffff);
        else qs.sellState[(w0 >> 96) & 0xffff] = sw - (e << 96);
        if ((bw >> 96) & _U64 == e) _advance(qs.book, qs.buyState, qs.activeBuy, (w0 >> 112) & 0xffff);
        else qs.buyState[(w0 >> 112) & 0xffff] = bw - (e << 96);
    }

    /// @dev A step an earlier page verified in full: trade `t`'s heads, key and energy (the
    ///      same checks, so the state is the one that page left), and the queues advanced,
    ///      without the scans for a better pair. Returns the trade's key and s * eWh.
    function _replayStep(Config memory cfg, bytes memory fees, Queues memory qs, uint256 t, uint256 w0)
        private
        pure
        returns (uint256 key, uint256 gain)
    {
        (uint256 bw, uint256 sw) = _heads(qs, cfg.nBuses, t, w0);
        uint256 c = fee(fees, cfg.nBuses, (w0 >> 96) & 0xffff, (w0 >> 112) & 0xffff);
        uint256 s;
        (key, s) = _stepKey(bw, sw, c, t);
        uint256 rb = (bw >> 96) & _U64;
        uint256 rs = (sw >> 96) & _U64;
        uint256 e = rb < rs ? rb : rs;
        if ((w0 >> 128) & _U64 != e) revert WrongQuantity(t, e, (w0 >> 128) & _U64);
        _take(qs, bw, sw, w0, e);
        gain = s * e;
    }

    /// @dev Trade `t`'s surplus s = b - a - c > 0 (heads bw, sw; fee c) and its ranking key.
    function _stepKey(uint256 bw, uint256 sw, uint256 c, uint256 t) private pure returns (uint256 key, uint256 s) {
        unchecked {
            // prices < 2**64 and c < 2**32: no overflow
            if ((bw >> 192) <= (sw >> 192) + c) revert NonPositiveSurplus(t);
            s = (bw >> 192) - (sw >> 192) - c;
            key = ((s + _OFF) << 96) | ((_U32 - c) << 64) | ((_U32 - ((bw >> 160) & _U32)) << 32)
                | (_U32 - ((sw >> 160) & _U32));
        }
    }

    /// @dev First buyer bus q (active) whose pair with seller bus p (head word sw) has a key
    ///      above k, or _NONE. (Assembly reuses the argument slots to stay within the stack.)
    function _rowCheck(bytes memory fees, uint256 nb, uint256 p, uint256 sw, Queues memory qs, uint256 k)
        private
        pure
        returns (uint256 bad)
    {
        bad = _NONE;
        assembly ("memory-safe") {
            let a := shr(192, sw)
            sw := sub(_U32, and(shr(160, sw), _U32)) // seller id part of the key
            p := add(add(fees, 0x20), shl(2, mul(p, nb))) // fee row of p
            nb := shr(96, k) // surplus part of k
            fees := add(mload(add(qs, 0x20)), 0x20) // buyState data
            let ptr := add(mload(add(qs, 0x60)), 0x20) // activeBuy data
            let last := add(ptr, shl(5, mload(mload(add(qs, 0x60)))))
            for {} lt(ptr, last) { ptr := add(ptr, 0x20) } {
                let q := mload(ptr)
                let w := mload(add(fees, shl(5, q)))
                let c := shr(224, mload(add(p, shl(2, q))))
                let sv := sub(sub(add(shr(192, w), _OFF), a), c)
                if iszero(lt(sv, nb)) {
                    if gt(or(or(shl(96, sv), shl(64, sub(_U32, c))), or(shl(32, sub(_U32, and(shr(160, w), _U32))), sw)), k) {
                        bad := q
                        break
                    }
                }
            }
        }
    }

    /// @dev First seller bus p (active) whose pair with buyer bus q (head word bw) has a key
    ///      above k, or _NONE. (Assembly reuses the argument slots to stay within the stack.)
    function _columnCheck(bytes memory fees, uint256 nb, uint256 q, uint256 bw, Queues memory qs, uint256 k)
        private
        pure
        returns (uint256 bad)
    {
        bad = _NONE;
        assembly ("memory-safe") {
            let bOff := add(shr(192, bw), _OFF)
            bw := shl(32, sub(_U32, and(shr(160, bw), _U32))) // buyer id part of the key
            q := add(add(fees, 0x20), shl(2, q)) // fee column of q
            nb := shl(2, nb) // row stride in bytes
            fees := add(mload(add(qs, 0x40)), 0x20) // sellState data
            let ptr := add(mload(add(qs, 0x80)), 0x20) // activeSell data
            let last := add(ptr, shl(5, mload(mload(add(qs, 0x80)))))
            for {} lt(ptr, last) { ptr := add(ptr, 0x20) } {
                let p := mload(ptr)
                let w := mload(add(fees, shl(5, p)))
                let c := shr(224, mload(add(q, mul(p, nb))))
                let sv := sub(sub(bOff, shr(192, w)), c)
                if iszero(lt(sv, shr(96, k))) {
                    if gt(or(or(shl(96, sv), shl(64, sub(_U32, c))), or(bw, sub(_U32, and(shr(160, w), _U32)))), k) {
                        bad := p
                        break
                    }
                }
            }
        }
    }

    /// @dev _rowCheck for fees in path form: the fees of seller bus p to the active buyer buses
    ///      are computed into qs.row, which _rowCheck then reads as row 0 of a one-row table.
    function _pathRowCheck(bytes memory fees, uint256 p, uint256 sw, Queues memory qs, uint256 k)
        private
        pure
        returns (uint256)
    {
        PathFees.fillRow(fees, qs.row, p, qs.activeBuy);
        return _rowCheck(qs.row, 0, 0, sw, qs, k);
    }

    /// @dev _columnCheck for fees in path form (symmetric): the fees of the active seller buses
    ///      to buyer bus q are computed into qs.row, read by _columnCheck as column 0 of a
    ///      one-column table (stride 4 bytes).
    function _pathColumnCheck(bytes memory fees, uint256 q, uint256 bw, Queues memory qs, uint256 k)
        private
        pure
        returns (uint256)
    {
        PathFees.fillRow(fees, qs.row, q, qs.activeSell);
        return _columnCheck(qs.row, 1, 0, bw, qs, k);
    }

    /// @dev Move the queue of `bus` to its next order, or drop the bus from the active list.
    function _advance(uint256[] memory book, uint256[] memory state, uint256[] memory active, uint256 bus)
        private
        pure
    {
        uint256 w = state[bus];
        uint256 head = ((w >> 64) & _U32) + 1;
        uint256 end = (w >> 32) & _U32;
        if (head < end) {
            uint256 nw = book[head];
            state[bus] = (((nw >> 88) & _U64) << 192) | ((nw >> 224) << 160) | (((nw >> 152) & _U64) << 96)
                | (head << 64) | (end << 32) | (w & _U32);
            return;
        }
        uint256 pos = w & _U32;
        uint256 last = active.length - 1;
        uint256 moved = active[last];
        active[pos] = moved;
        state[moved] = (state[moved] & ~_U32) | pos;
        state[bus] = (head << 64) | (end << 32);
        assembly ("memory-safe") {
            mstore(active, last)
        }
    }

    /// @dev A pair of active buses (p, q) with surplus > 0, or (_NONE, _NONE).
    function _surplusLeft(
        bytes memory fees,
        uint256 nb,
        uint256[] memory buyState,
        uint256[] memory sellState,
        uint256[] memory activeBuy,
        uint256[] memory activeSell
    ) private pure returns (uint256 p, uint256 q) {
        p = _NONE;
        q = _NONE;
        assembly ("memory-safe") {
            let bStop := add(add(activeBuy, 0x20), shl(5, mload(activeBuy)))
            let sStop := add(add(activeSell, 0x20), shl(5, mload(activeSell)))
            for { let sPtr := add(activeSell, 0x20) } lt(sPtr, sStop) { sPtr := add(sPtr, 0x20) } {
                let a := shr(192, mload(add(add(sellState, 0x20), shl(5, mload(sPtr)))))
                let rowBase := add(add(fees, 0x20), shl(2, mul(mload(sPtr), nb)))
                for { let bPtr := add(activeBuy, 0x20) } lt(bPtr, bStop) { bPtr := add(bPtr, 0x20) } {
                    let qb := mload(bPtr)
                    if gt(shr(192, mload(add(add(buyState, 0x20), shl(5, qb)))), add(a, shr(224, mload(add(rowBase, shl(2, qb)))))) {
                        p := mload(sPtr)
                        q := qb
                        break
                    }
                }
                if iszero(eq(p, not(0))) { break }
            }
        }
    }

    // -------------------------------------------------------------- optimal
    /// @notice Check that `trades` is the canonical welfare-optimal clearing (docs/methods.md
    ///         section 3): welfare-optimal, certified by the welfare duals; among the welfare
    ///         optima the one of least tie-break penalty sum (w_i + w_j + d_pq) * eWh, certified
    ///         by the tie-break duals; split into trades north-west-corner style.
    /// @param parties For trade k: buyer bid index << 128 | seller bid index (checked hint).
    /// @param duals 2n + 4 nBuses words for n bids: duals[k] is the welfare dual u_i (buy bid k)
    ///        or v_j (sell bid k), micro-tokens per kWh, < 2**64; duals[n + k] the tie-break dual
    ///        of bid k, int256 (two's complement), |x| < 2**240; then the claimed bounds per bus
    ///        (the words _dualInfeasible compares): top[0..2 nBuses) (max over buyers at q of b -
    ///        u + OFF, 0 for none; then max of -w - u' over the buyers attaining it), then
    ///        bottom[0..2 nBuses) (min over sellers at p of a + v + OFF, 0 for none; then min of
    ///        w + v' over the sellers attaining it). Every bid is checked inside its bus's claim,
    ///        so claims that pass bound the true maxima and minima and dual feasibility checked
    ///        on the claims holds for the bids (the reference claims the exact values).
    /// @return welfareWhMicro Sum of s * eWh over the trades.
    /// @dev Welfare checks (named welfare errors): primal feasibility (each bid's trades <= its
    ///      order, eWh > 0, kappa-split prices), u_i + v_j == s_ij on every trade, welfare duals
    ///      zero on bids not fully traded, each bid within its bus's claimed bound, per bus pair
    ///      max_{i at q}(b_i - u_i) - min_{j at p}(a_j + v_j) <= c_pq (on the claims). Tie-break
    ///      checks on the welfare-optimal face (reverting NonCanonicalOptimum(check, index) once
    ///      every welfare check of the call passed): u'_i + v'_j == -(w_i + w_j + d_pq) on every
    ///      trade (check 0); tie duals zero on bids not fully traded and negative only where the
    ///      welfare dual is positive (1); on every bus pair whose welfare check holds with
    ///      equality, max(-w_i - u'_i) over the buyers at q that attain the max of b_i - u_i,
    ///      minus min(w_j + v'_j) over the sellers at p attaining the min of a_j + v_j, <= d_pq
    ///      (2); then the pairing order (3): trades sorted by (sellerBus, buyerBus), at each bus
    ///      the traded bids used up one after the other in queue order, within a bus pair every
    ///      trade but the last using up its seller or buyer. Cost O(n + trades + S*Q).
    function verifyOptimal(
        Config memory cfg,
        bytes memory fees,
        uint256[] calldata bids,
        uint256[] calldata trades,
        uint256[] calldata parties,
        uint256[] calldata duals
    ) internal pure returns (uint256 welfareWhMicro) {
        return verifyOptimalPage(cfg, fees, bids, trades, parties, duals, _U128) & ~DONE;
    }

    /// @notice verifyOptimal in pages. The entries are the T trades (each checked in full, with
    ///         its two bids' words and duals), the n bids (word, duals, claimed bound, fill: the
    ///         energy the trades give it, found by a walk over the trades' hints) and one final
    ///         entry (dual feasibility on the claimed bounds, the pairing order and the welfare
    ///         of every trade, s = u_i + v_j by the slackness each trade passed). `span` = from
    ///         << 128 | upTo (upTo = 2**128 - 1: to the end). Pages that partition [0, T + n +
    ///         1) on the same lists reject exactly what the whole check rejects; the error named
    ///         may be the first failure of the page that finds one.
    /// @return welfareWhMicro With DONE set when the page ends at T + n + 1: the sum of s * eWh
    ///         over every trade (else the page's own trades' sum).
    function verifyOptimalPage(
        Config memory cfg,
        bytes memory fees,
        uint256[] calldata bids,
        uint256[] calldata trades,
        uint256[] calldata parties,
        uint256[] calldata duals,
        uint256 span
    ) internal pure returns (uint256 welfareWhMicro) {
        _checkConfig(cfg, fees);
        if (cfg.nBuses > _MAX_OPTIMAL_BUSES) revert BadFeeConfig(cfg.nBuses, cfg.kappaNum, cfg.kappaDen);
        if (PathFees.isPathForm(fees)) fees = PathFees.dense(fees);
        if (duals.length != 2 * bids.length + 4 * cfg.nBuses) {
            revert FeeInputLength(2 * bids.length + 4 * cfg.nBuses, duals.length);
        }
        if (trades.length != 2 * parties.length) revert FeeInputLength(2 * parties.length, trades.length);
        uint256 nt = parties.length;
        uint256 end = nt + bids.length + 1;
        (uint256 from, uint256 upTo) = _pageSpan(span, end);
        Certificate memory cert = Certificate(cfg, fees, bids, duals, new uint256[](bids.length), 0);
        welfareWhMicro = _optimalTrades(cert, trades, parties, from, upTo < nt ? upTo : nt);
        if (upTo > nt && from + 1 < end) _optimalBids(cert, trades, parties, from > nt ? from - nt : 0, upTo - nt);
        if (upTo == end) {
            cert.traded = new uint256[](bids.length);
            welfareWhMicro = _welfare(cert, trades, parties);
            (uint256[] memory top, uint256[] memory bottom) = _claims(cert);
            _dualFeasible(cert, top, bottom);
        }
        // every welfare check of the call passed: the result may not be the canonical one
        uint256 tie = cert.tieFailure;
        if (tie != 0) revert NonCanonicalOptimum((tie - 1) >> 128, (tie - 1) & _U128);
        if (upTo < end) return welfareWhMicro;
        _pairingCheck(cert, trades, parties);
        welfareWhMicro |= DONE;
    }

    /// @dev [from, upTo) of `span` = from << 128 | upTo (upTo = 2**128 - 1: `end`), which must
    ///      be a non-empty part of [0, end).
    function _pageSpan(uint256 span, uint256 end) private pure returns (uint256 from, uint256 upTo) {
        from = span >> 128;
        upTo = span & _U128;
        if (upTo == _U128) upTo = end;
        if (from >= upTo || upTo > end) revert FeeInputLength(end, upTo);
    }

    /// @dev Check trades [from, upTo) in full; returns their welfare.
    function _optimalTrades(
        Certificate memory cert,
        uint256[] calldata trades,
        uint256[] calldata parties,
        uint256 from,
        uint256 upTo
    ) private pure returns (uint256 welfareWhMicro) {
        for (uint256 t = from; t < upTo; ++t) {
            uint256 gain = _optimalTrade(cert, t, trades[2 * t], trades[2 * t + 1], parties[t]);
            welfareWhMicro += gain;
        }
    }

    /// @dev Check bids [a, min(b, n)) (b past n: the final entry is in the page too).
    function _optimalBids(
        Certificate memory cert,
        uint256[] calldata trades,
        uint256[] calldata parties,
        uint256 a,
        uint256 b
    ) private pure {
        uint256 n = cert.bids.length;
        if (b > n) b = n;
        _tally(cert, trades, parties, a, b);
        for (uint256 k = a; k < b; ++k) {
            _optimalBid(cert, k);
        }
    }

    /// @dev The energy the trades give the bids [a, b) (their hints, each checked in range;
    ///      the hints themselves are checked against their trades by the trades' entries).
    function _tally(Certificate memory cert, uint256[] calldata trades, uint256[] calldata parties, uint256 a, uint256 b)
        private
        pure
    {
        uint256 n = cert.bids.length;
        uint256[] memory traded = cert.traded;
        for (uint256 t = 0; t < parties.length; ++t) {
            uint256 hint = parties[t];
            uint256 bi = hint >> 128;
            uint256 si = hint & _U128;
            if (bi >= n || si >= n) revert BadParty(t);
            uint256 e = (trades[2 * t] >> 128) & _U64;
            if (bi >= a && bi < b) traded[bi] += e;
            if (si >= a && si < b) traded[si] += e;
        }
    }

    /// @dev Check bid k: its word, its duals, its bus's claimed bound, its fill (cert.traded).
    function _optimalBid(Certificate memory cert, uint256 k) private pure {
        uint256 nb = cert.cfg.nBuses;
        uint256 w = cert.bids[k];
        _checkBid(w, k, nb);
        (uint256 d, int256 d2) = _duals(cert, k);
        uint256 bus = (w >> 72) & 0xffff;
        uint256 price = (w >> 88) & _U64;
        int256 weight = int256(w >> 224) + 1;
        uint256[] memory duals = cert.duals;
        uint256 claims = 2 * cert.bids.length;
        if ((w >> 216) & 0xff == 0) {
            uint256 x = price + _OFF - d;
            uint256 top = duals[claims + bus];
            if (x > top || (x == top && -weight - d2 > int256(duals[claims + nb + bus]))) revert BoundNotClaimed(k);
        } else {
            uint256 x = price + _OFF + d;
            uint256 bottom = duals[claims + 2 * nb + bus];
            if (bottom == 0 || x < bottom || (x == bottom && weight + d2 < int256(duals[claims + 3 * nb + bus]))) {
                revert BoundNotClaimed(k);
            }
        }
        uint256 order = (w >> 152) & _U64;
        uint256 got = cert.traded[k];
        if (got > order) revert Overfilled(k, got, order);
        if (d != 0 && got != order) revert SlackOrderHasDual(k);
        if (d2 != 0 && got != order) _noteTie(cert, _CHECK_FILL, k);
    }

    /// @dev Every trade's parties (so the pairing check's reads stay in range) and energy
    ///      (cert.traded, which the pairing check reads); returns the welfare, s = u_i + v_j.
    function _welfare(Certificate memory cert, uint256[] calldata trades, uint256[] calldata parties)
        private
        pure
        returns (uint256 welfareWhMicro)
    {
        uint256 nb = cert.cfg.nBuses;
        uint256[] memory duals = cert.duals;
        uint256[] memory traded = cert.traded;
        for (uint256 t = 0; t < parties.length; ++t) {
            uint256 w0 = trades[2 * t];
            (uint256 bi, uint256 si) = _parties(cert.bids, t, w0, parties[t]);
            if ((w0 >> 96) & 0xffff >= nb) revert BusOutOfRange(si, (w0 >> 96) & 0xffff);
            if ((w0 >> 112) & 0xffff >= nb) revert BusOutOfRange(bi, (w0 >> 112) & 0xffff);
            uint256 e = (w0 >> 128) & _U64;
            traded[bi] += e;
            traded[si] += e;
            welfareWhMicro += (duals[bi] + duals[si]) * e;
        }
    }

    /// @dev The claimed bounds (the last 4 nBuses words of the duals) as _dualInfeasible's
    ///      top and bottom arrays.
    function _claims(Certificate memory cert) private pure returns (uint256[] memory top, uint256[] memory bottom) {
        uint256 nb = cert.cfg.nBuses;
        uint256 claims = 2 * cert.bids.length;
        top = new uint256[](2 * nb);
        bottom = new uint256[](2 * nb);
        for (uint256 k = 0; k < 2 * nb; ++k) {
            top[k] = cert.duals[claims + k];
            bottom[k] = cert.duals[claims + 2 * nb + k];
        }
    }

    /// @dev Remember the first tie-level failure (reported once the welfare checks passed).
    function _noteTie(Certificate memory cert, uint256 check, uint256 index) private pure {
        if (cert.tieFailure == 0) cert.tieFailure = ((check << 128) | index) + 1;
    }

    /// @dev Revert with DualInfeasible unless every bus pair is dual feasible.
    function _dualFeasible(Certificate memory cert, uint256[] memory top, uint256[] memory bottom) private pure {
        (uint256 hard, uint256 soft) = _dualInfeasible(cert.fees, cert.cfg.nBuses, top, bottom);
        if (hard != _NONE) revert DualInfeasible(hard >> 16, hard & 0xffff);
        if (soft != _NONE) _noteTie(cert, _CHECK_DUAL, soft);
    }

    /// @dev Welfare dual and tie dual of bid k, range-checked.
    function _duals(Certificate memory cert, uint256 k) private pure returns (uint256 d, int256 d2) {
        uint256 n = cert.bids.length;
        d = cert.duals[k];
        if (d > _U64) revert DualOutOfRange(k);
        d2 = int256(cert.duals[n + k]);
        if (d2 >= _TIE_DUAL_BOUND || d2 <= -_TIE_DUAL_BOUND) revert DualOutOfRange(n + k);
        if (d2 < 0 && d == 0) _noteTie(cert, _CHECK_FILL, k);
    }

    /// @dev Check one trade of verifyOptimal (hint = buyer index << 128 | seller index); returns
    ///      s * eWh (its energy is booked on its bids by _tally and _welfare). Its two bids' words and duals are checked
    ///      first (the fee lookup and the sums below rely on them).
    function _optimalTrade(Certificate memory cert, uint256 t, uint256 w0, uint256 w1, uint256 hint)
        private
        pure
        returns (uint256 gain)
    {
        (uint256 bi, uint256 si) = _parties(cert.bids, t, w0, hint);
        _checkPair(cert, bi, si);
        if (w0 & _TRADE0_LOW != 0 || w1 & _TRADE1_LOW != 0) revert MalformedTrade(t);
        uint256 e = (w0 >> 128) & _U64;
        if (e == 0) revert ZeroQuantity(t);
        uint256 s = _surplus(cert, t, w0, w1, (bi << 128) | si);
        gain = s * e;
    }

    /// @dev Surplus s = b - a - c of trade `t` (pair = buyer bid << 128 | seller bid), checked:
    ///      welfare slackness, tie-break slackness (remembered), the kappa-split prices.
    function _surplus(Certificate memory cert, uint256 t, uint256 w0, uint256 w1, uint256 pair)
        private
        pure
        returns (uint256 s)
    {
        uint256 bi = pair >> 128;
        uint256 si = pair & _U128;
        uint256 b = (cert.bids[bi] >> 88) & _U64;
        uint256 a = (cert.bids[si] >> 88) & _U64;
        uint256 c = fee(cert.fees, cert.cfg.nBuses, (w0 >> 96) & 0xffff, (w0 >> 112) & 0xffff);
        // duals < 2**64 (checked), prices < 2**64, c < 2**32: the sum cannot overflow
        if (cert.duals[bi] + cert.duals[si] + a + c != b) revert SlacknessViolated(t);
        _tieSlackness(cert, t, bi, si);
        s = b - a - c;
        // the kappa-split prices, as _checkPrices (a call to it here is too deep for the
        // compiler's stack)
        uint256 sp = a + (s * cert.cfg.kappaNum) / cert.cfg.kappaDen;
        if (w1 != (((sp + c) << 192) | (sp << 128))) revert WrongPrice(t, sp + c, sp);
    }

    /// @dev A trade's two bids: their words and their duals' ranges.
    function _checkPair(Certificate memory cert, uint256 bi, uint256 si) private pure {
        uint256 nb = cert.cfg.nBuses;
        _checkBid(cert.bids[bi], bi, nb);
        _checkBid(cert.bids[si], si, nb);
        _duals(cert, bi);
        _duals(cert, si);
    }

    /// @dev Tie-break slackness of trade `t` (buyer bid bi, seller bid si):
    ///      u'_i + v'_j + w_i + w_j + d_pq == 0; a failure is remembered (check 0).
    function _tieSlackness(Certificate memory cert, uint256 t, uint256 bi, uint256 si) private pure {
        uint256[] memory bids = cert.bids;
        uint256[] memory duals = cert.duals;
        uint256 bw = bids[bi];
        uint256 sw = bids[si];
        uint256 weight = _pairWeight(cert.cfg.nBuses, (sw >> 72) & 0xffff, (bw >> 72) & 0xffff);
        uint256 sum;
        // indexes < n (checked by _parties); |tie duals| < 2**240 (checked), weights < 2**222:
        // the two's-complement sum is exact modulo 2**256 and zero iff the equation holds
        unchecked {
            sum = duals[bids.length + bi] + duals[bids.length + si] + (bw >> 224) + (sw >> 224) + 2 + weight;
        }
        if (sum != 0) _noteTie(cert, _CHECK_SLACKNESS, t);
    }

    /// @dev Tie-break weight of bus pair (p, q): nb**p * (q + 1) << 34 (< 2**221 for nb <= 36).
    function _pairWeight(uint256 nb, uint256 p, uint256 q) private pure returns (uint256 weight) {
        // nb <= 36, p < nb: nb**p * (q + 1) < 2**187, no overflow
        assembly ("memory-safe") {
            weight := shl(_PAIR_SHIFT, mul(exp(nb, p), add(q, 1)))
        }
    }

    /// @dev Bid indexes of a trade's buyer and seller from the hint, checked against the trade.
    function _parties(uint256[] memory bids, uint256 t, uint256 w0, uint256 hint)
        private
        pure
        returns (uint256 bi, uint256 si)
    {
        bi = hint >> 128;
        si = hint & _U128;
        if (bi >= bids.length || si >= bids.length) revert BadParty(t);
        uint256 bw = bids[bi];
        uint256 sw = bids[si];
        if (
            (bw >> 224) != (w0 >> 224) || (sw >> 224) != ((w0 >> 192) & _U32) || (bw >> 216) & 0xff != 0
                || (sw >> 216) & 0xff != 1 || (bw >> 72) & 0xffff != (w0 >> 112) & 0xffff
                || (sw >> 72) & 0xffff != (w0 >> 96) & 0xffff
        ) revert BadParty(t);
    }

    /// @dev Revert with WrongPrice unless w1 holds the kappa-split prices of surplus s.
    function _checkPrices(Config memory cfg, uint256 t, uint256 w1, uint256 a, uint256 c, uint256 s) private pure {
        uint256 sp = a + (s * cfg.kappaNum) / cfg.kappaDen;
        if (w1 != (((sp + c) << 192) | (sp << 128))) revert WrongPrice(t, sp + c, sp);
    }

    /// @dev North-west-corner pairing order (see verifyOptimal); reverts
    ///      NonCanonicalOptimum(3, trade). heads[bus] (sellers) and heads[nBuses + bus] (buyers):
    ///      queue key << 128 | Wh left of the head bid << 1 | 1 (0 = no bid used yet at the bus).
    function _pairingCheck(Certificate memory cert, uint256[] calldata trades, uint256[] calldata parties)
        private
        pure
    {
        uint256[] memory heads = new uint256[](2 * cert.cfg.nBuses);
        uint256 bad;
        // Bid indexes and the trades' buses were checked by _welfare: every memory read
        // below is in range.
        assembly ("memory-safe") {
            // Move the head at hp by a trade (first word `word`) of the bid at bp (tp: its traded
            // Wh): the head must be that bid while it has Wh left, else the bid must come later
            // in queue order (sellers: ask, id; buyers: bid descending, id). r = 1: order
            // broken, 2: head used up, 0: otherwise.
            function advance(hp, bp, tp, word, buyer) -> r {
                let w := mload(bp)
                let price := and(shr(88, w), 0xffffffffffffffff)
                if buyer { price := sub(0xffffffffffffffff, price) }
                let key := or(shl(32, price), shr(224, w))
                let head := mload(hp)
                let left := and(shr(1, head), 0xffffffffffffffff)
                let ok := 0
                switch and(iszero(iszero(head)), iszero(iszero(left)))
                case 1 { ok := eq(shr(128, head), key) }
                default {
                    ok := or(iszero(head), gt(key, shr(128, head)))
                    left := mload(tp)
                }
                let e := and(shr(128, word), 0xffffffffffffffff)
                if or(iszero(ok), gt(e, left)) {
                    r := 1
                    leave
                }
                left := sub(left, e)
                mstore(hp, or(or(shl(128, key), shl(1, left)), 1))
                if iszero(left) { r := 2 }
            }
            // All trades; returns the first trade breaking the order + 1, or 0. c: cert (cfg
            // with nBuses first, fees, bids, duals, traded); bid k's word and traded Wh sit at
            // bids + 32 (k + 1) and traded + 32 (k + 1). state: previous trade's bus pair << 1 |
            // its seller or buyer head was used up (all ones: no previous trade).
            function walk(c, hs, tOff, pOff, n) -> fail {
                let state := not(0)
                for { let t := 0 } lt(t, n) { t := add(t, 1) } {
                    let w0 := calldataload(add(tOff, shl(6, t)))
                    let hint := calldataload(add(pOff, shl(5, t)))
                    let k := shl(5, add(and(hint, 0xffffffffffffffffffffffffffffffff), 1))
                    let flags := advance(
                        add(hs, shl(5, add(and(shr(96, w0), 0xffff), 1))),
                        add(mload(add(c, 0x40)), k),
                        add(mload(add(c, 0x80)), k),
                        w0,
                        0
                    )
                    k := shl(5, add(shr(128, hint), 1))
                    flags := or(
                        flags,
                        advance(
                            add(hs, shl(5, add(add(mload(mload(c)), and(shr(112, w0), 0xffff)), 1))),
                            add(mload(add(c, 0x40)), k),
                            add(mload(add(c, 0x80)), k),
                            w0,
                            1
                        )
                    )
                    w0 := or(shl(16, and(shr(96, w0), 0xffff)), and(shr(112, w0), 0xffff))
                    if iszero(
                        or(eq(state, not(0)), or(gt(w0, shr(1, state)), and(eq(w0, shr(1, state)), and(state, 1))))
                    ) { flags := 1 }
                    if and(flags, 1) {
                        fail := add(t, 1)
                        leave
                    }
                    state := or(shl(1, w0), shr(1, flags))
                }
            }
            bad := walk(cert, heads, trades.offset, parties.offset, parties.length)
        }
        if (bad != 0) revert NonCanonicalOptimum(_CHECK_PAIRING, bad - 1);
    }

    /// @dev First bus pair p << 16 | q with top[q] > bottom[p] + c_pq (welfare infeasible), and
    ///      the first pair before it with top[q] == bottom[p] + c_pq and top[nb + q] -
    ///      bottom[nb + p] > d_pq (tie-level infeasible); _NONE where there is none.
    function _dualInfeasible(bytes memory fees, uint256 nb, uint256[] memory top, uint256[] memory bottom)
        private
        pure
        returns (uint256 hard, uint256 soft)
    {
        // scan() starts both at _NONE (not(0))
        uint256[] memory buyers = _buyerBuses(top, nb);
        assembly ("memory-safe") {
            // table, tops, bottoms: first data word of the fee table and the bound arrays;
            // [bStart, bStop): the buses with buyers
            function scan(table, n, tops, bottoms, bStart, bStop) -> h, t {
                h := not(0)
                t := not(0)
                for { let ps := 0 } lt(ps, n) { ps := add(ps, 1) } {
                    let y := mload(add(bottoms, shl(5, ps)))
                    if y {
                        let rowBase := add(table, shl(2, mul(ps, n)))
                        for { let bPtr := bStart } lt(bPtr, bStop) { bPtr := add(bPtr, 0x20) } {
                            let qb := mload(bPtr)
                            let x := mload(add(tops, shl(5, qb)))
                            let lim := add(y, shr(224, mload(add(rowBase, shl(2, qb)))))
                            if iszero(lt(x, lim)) {
                                if gt(x, lim) {
                                    h := or(shl(16, ps), qb)
                                    leave
                                }
                                // tight pair: the tie-break duals must satisfy it too (signed
                                // words; d_pq = n**p * (q + 1) << 34)
                                if eq(t, not(0)) {
                                    x := sub(mload(add(tops, shl(5, add(n, qb)))), mload(add(bottoms, shl(5, add(n, ps)))))
                                    if sgt(x, shl(34, mul(exp(n, ps), add(qb, 1)))) { t := or(shl(16, ps), qb) }
                                }
                            }
                        }
                    }
                }
            }
            let bStart := add(buyers, 0x20)
            hard, soft := scan(
                add(fees, 0x20), nb, add(top, 0x20), add(bottom, 0x20), bStart, add(bStart, shl(5, mload(buyers)))
            )
        }
    }

    /// @dev The buses q with top[q] != 0 (buyers present), ascending.
    function _buyerBuses(uint256[] memory top, uint256 nb) private pure returns (uint256[] memory list) {
        list = _emptyList(nb);
        for (uint256 k = 0; k < nb; ++k) {
            if (top[k] != 0) _push(list, k);
        }
    }
}

/// @title FeeClearingVerifier
/// @notice Stateless front end of the FeeClearing library for Market (which deploys one in its
///         constructor for the fee rules; the library inlined into Market would exceed the
///         EIP-170 code size limit). The fee table is read with EXTCODECOPY from a data
///         contract whose code is 0x00 || table (written once by Market.configureClearing).
/// @dev `cfg` packs nBuses << 128 | kappaNum << 64 | kappaDen. Reverts with the library's errors.
contract FeeClearingVerifier {
    uint256 private constant _U64 = 0xffffffffffffffff;

    /// @notice FeeClearing.verifyGreedy with the fee table of data contract `table`.
    function verifyGreedy(
        uint256 cfg,
        address table,
        uint256[] calldata bids,
        uint256[] calldata order,
        uint256 nBuys,
        uint256[] calldata trades
    ) external view returns (uint256 welfareWhMicro) {
        (FeeClearing.Config memory c, bytes memory fees) = _load(cfg, table);
        return FeeClearing.verifyGreedy(c, fees, bids, order, nBuys, trades);
    }

    /// @notice FeeClearing.verifyGreedyPage with the fee table of data contract `table`.
    function verifyGreedyPage(
        uint256 cfg,
        address table,
        uint256[] calldata bids,
        uint256[] calldata order,
        uint256 nBuys,
        uint256[] calldata trades,
        uint256 span
    ) external view returns (uint256 welfareWhMicro) {
        (FeeClearing.Config memory c, bytes memory fees) = _load(cfg, table);
        return FeeClearing.verifyGreedyPage(c, fees, bids, order, nBuys, trades, span);
    }

    /// @notice FeeClearing.verifyOptimalPage with the fee table of data contract `table`.
    function verifyOptimalPage(
        uint256 cfg,
        address table,
        uint256[] calldata bids,
        uint256[] calldata trades,
        uint256[] calldata parties,
        uint256[] calldata duals,
        uint256 span
    ) external view returns (uint256 welfareWhMicro) {
        (FeeClearing.Config memory c, bytes memory fees) = _load(cfg, table);
        return FeeClearing.verifyOptimalPage(c, fees, bids, trades, parties, duals, span);
    }

    /// @notice FeeClearing.verifyOptimal with the fee table of data contract `table`.
    function verifyOptimal(
        uint256 cfg,
        address table,
        uint256[] calldata bids,
        uint256[] calldata trades,
        uint256[] calldata parties,
        uint256[] calldata duals
    ) external view returns (uint256 welfareWhMicro) {
        (FeeClearing.Config memory c, bytes memory fees) = _load(cfg, table);
        return FeeClearing.verifyOptimal(c, fees, bids, trades, parties, duals);
    }

    /// @dev Unpack the configuration and read the fee table (code of `table` after its first
    ///      byte, or the shards its directory lists; a table or path-form data for nBuses).
    function _load(uint256 cfg, address table) private view returns (FeeClearing.Config memory c, bytes memory fees) {
        c = FeeClearing.Config(cfg >> 128, (cfg >> 64) & _U64, cfg & _U64);
        fees = DataShards.load(table);
        uint256 size = 4 * c.nBuses * c.nBuses;
        uint256 got = fees.length;
        if (PathFees.isPathForm(fees)) {
            uint256 nb = PathFees.buses(fees);
            got = 4 * nb * nb;
        }
        if (got != size) revert FeeClearing.FeeTableLength(size, got);
    }

    /// @notice Length in bytes of the fee table committed at `data` (its shards' total for a
    ///         directory; reverts with DataShards' errors if a shard does not match). Path-form
    ///         data is validated in full (PathFees.check: reverts with BadPathFees) and counts
    ///         as the 4 * nBuses**2 bytes of the table it stands for.
    function dataBytes(address data) external view returns (uint256) {
        bytes memory d = DataShards.load(data);
        if (!PathFees.isPathForm(d)) return d.length;
        uint256 nb = PathFees.check(d);
        return 4 * nb * nb;
    }
}
