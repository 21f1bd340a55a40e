// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {DataShards} from "./DataShards.sol";

/// @title SecurityVerifier
/// @notice Checks that the curtailments of a security verdict are justified by the DSO's
///         committed linearised network (docs/security_on_chain.md): every curtailment names a
///         monitored element that was violated before, cutting its trade relieves that element,
///         and after all cuts every violated element's linearised margin is >= 0. Under the `lp`
///         congestion rule an integer dual certificate also proves that no cheaper set of cuts
///         exists (up to one Wh per cut trade). Stateless; Market calls it from recordSecurity.
/// @dev Network data: the code of a data contract, 0x00 || data (never runs), read with
///      EXTCODECOPY, or a directory of shard contracts holding it in parts (DataShards). data = 16-byte header || R x nBuses big-endian int32 sensitivities:
///        header: version u8 (=1) | scaleExp u8 (=9) | nBuses u16 | nBusRows u16 | nLineRows u16
///                | nTrafoRows u16 | intervalSeconds u32 | 2 zero bytes
///        entry (r, b) at byte 16 + 4 * (r * nBuses + b): the growth of row r's margin, in 1e-9
///        percent of the limit, per Wh cut from a seller at bus b within one interval.
///      Rows: bus upper-voltage rows for buses 1..nBusRows (kind 0, row = bus - 1), then
///      upward-flow loading rows of lines 0..nLineRows-1 (kind 1), then of transformers
///      0..nTrafoRows-1 (kind 2).
///      Version 2 (radial feeders, O(nBuses) bytes): the same header with version 2 and
///      nBusRows = nBuses - 1, then per bus b (8 bytes): parent u16 | depth u16 | value int32
///      (bus 0 is the root: its own parent, depth 0; every other bus one deeper than its
///      parent), then per branch row (6 bytes): child u16 | value int32. Bus row of bus k at
///      bus b: the value of the lowest common ancestor of k and b; branch row at bus b: its
///      value if its child bus is b or an ancestor of b, else 0.
///      Version 3 (meshed feeders, O(nBuses x loops) bytes): version 2's body for a spanning
///      tree (a loop-closing branch has value 0), header byte 14 = k loops and byte 15 = shift
///      S, then per bus b 2k int32 (its loop vector), then per row r 2k int32 (its row
///      vector). A row's relief at bus b is its tree relief plus the loop correction
///      (sum_i rowVec[r][i] * busVec[b][i] + 2**(S-1)) >> S (no rounding term when S = 0);
///      a branch row takes the absolute value of the sum (docs/security_on_chain.md).
///      Words (bit 255 is the top bit; unused low bits must be zero):
///        trade words (2): w0 = buyer u32 <<224 | seller u32 <<192 | eWh u64 <<128 | buyerBus u16 <<112
///                              | sellerBus u16 <<96;  w1 = buyerPrice u64 <<192 | sellerPrice u64 <<128
///        curtailment word: tradeIndex u32 <<224 | cutWh u64 <<160 | elementKind u8 <<152
///                          | elementIndex u32 <<120
///        margin word:      elementKind u8 <<248 | elementIndex u32 <<216 | marginNpct int64 <<152
///                          | allowanceNpct u64 <<88   (rows strictly ascending)
///      A row's effective margin is marginNpct - allowanceNpct: the AC power-flow margin before
///      curtailment minus the DSO's declared linearisation allowance (both signed by the DSO).
///      cfg: 0 = greedy rule (no certificate), 1 = lp rule (certificate = one dual per margin
///      row, scaled by DUAL_SCALE).
contract SecurityVerifier {
    /// @notice Dual scale of the lp certificate: duals are floor(y * DUAL_SCALE), y in
    ///         (micro-tokens per kWh) per (1e-9 percent).
    uint256 public constant DUAL_SCALE = 1e18;
    /// @notice Configuration: greedy congestion rule (feasibility only).
    uint256 public constant RULE_GREEDY = 0;
    /// @notice Configuration: lp congestion rule (feasibility and least cost certificate).
    uint256 public constant RULE_LP = 1;
    /// @notice Configuration flag: the network data was checked when it was committed (Market
    ///         calls verifyCurtailments without it, on an empty verdict, in configureNetwork), so
    ///         a tree need not be checked again; Market sets it on every verdict.
    uint256 public constant NETWORK_CHECKED = 1 << 128;
    /// @notice Length of the network data header (bytes).
    uint256 public constant HEADER_BYTES = 16;
    /// @notice Largest network data one data contract can hold (EIP-170 code size - 1).
    uint256 public constant MAX_NETWORK_BYTES = 24_575;
    /// @notice Flag (bit 255) of verifyCurtailmentsPage's result: the page checked the last
    ///         entry (the result's other bits are the cost).
    uint256 public constant DONE = 1 << 255;

    uint256 private constant _U16 = 0xffff;
    uint256 private constant _U32 = 0xffffffff;
    uint256 private constant _U64 = 0xffffffffffffffff;
    uint256 private constant _CURT_LOW = (1 << 120) - 1;
    uint256 private constant _MARGIN_LOW = (1 << 88) - 1;
    uint256 private constant _DUAL_LIMIT = 1 << 96;
    uint256 private constant _NONE = type(uint256).max;

    /// @dev Network shape, read from the data header.
    struct Network {
        uint256 nBuses;
        uint256 nBusRows;
        uint256 nLineRows;
        uint256 nTrafoRows;
        uint256 version;
        uint256 nLoops;
        uint256 shift;
        uint256 loopBase;
        bytes table;
    }

    // ----------------------------------------------------------------- errors
    /// @notice `cfg` names no congestion rule.
    error BadSecurityConfig(uint256 cfg);
    /// @notice The data contract's code is not a version-1, 2 or 3 network of the size its
    ///         header states.
    error NetworkDataLength(uint256 expectedBytes, uint256 gotBytes);
    /// @notice Versions 2 and 3: the header's bus rows are not one per non-root bus.
    error BadNetworkShape(uint256 nBuses, uint256 nBusRows);
    /// @notice Versions 2 and 3: bus entry `index` (< nBuses) is not a tree node one deeper than its
    ///         parent (the root: its own parent at depth 0), or branch entry
    ///         `index - nBuses` names no non-root bus.
    error BadNetworkTree(uint256 index);
    /// @notice The trade list has an odd number of words.
    error BadTradeWords(uint256 words);
    /// @notice Margin word `index` is malformed, names no committed row, or its row does not
    ///         strictly follow the previous margin's row.
    error BadMargin(uint256 index);
    /// @notice Margin word `index` reports a row that was not violated (AC margin >= 0).
    error NotViolated(uint256 index);
    /// @notice Curtailment `index` has non-zero unused bits, names no trade, or cuts 0 Wh.
    error MalformedCurtailment(uint256 index);
    /// @notice Curtailment `index` names no committed element row.
    error UnknownElement(uint256 index);
    /// @notice Curtailment `index` names an element row without a margin word.
    error NoMargin(uint256 index);
    /// @notice Cutting the trade of curtailment `index` does not relieve its row (relief <= 0).
    error TradeDoesNotLoad(uint256 index);
    /// @notice The cuts up to curtailment `index` exceed its trade's energy.
    error CutExceedsTrade(uint256 index);
    /// @notice After all cuts, the row of margin word `index` has a negative linearised margin.
    error NotRelieved(uint256 index);
    /// @notice The certificate does not have one dual per margin row (none for greedy).
    error CertificateLength(uint256 expected, uint256 got);
    /// @notice Dual `index` of the certificate is >= 2**96.
    error DualOutOfRange(uint256 index);
    /// @notice lp: the cuts cost more than the dual bound allows (costScaled > boundScaled).
    error BadCurtailmentCertificate(int256 costScaled, int256 boundScaled);
    /// @notice A page of a verdict's entries must be a non-empty part of [0, `entries`).
    error BadVerdictSpan(uint256 entries, uint256 upTo);

    /// @notice Revert unless the curtailments are justified by the network in data contract
    ///         `data` and the DSO's margins.
    /// @param data Data contract holding 0x00 || network data (see the contract notes).
    /// @param cfg RULE_GREEDY or RULE_LP, with NETWORK_CHECKED if `data` was checked before.
    /// @param trades The interval's cleared trade word pairs.
    /// @param curtailments Curtailment words (each names the row its cut relieves).
    /// @param margins Margin words of every row the cuts are made for, rows ascending.
    /// @param certificate lp: one scaled dual per margin word; greedy: empty.
    /// @return costWhMicro Sum over trades of cutWh * (sellerPrice + 1): the lost traded value
    ///         the lp rule minimises (micro-tokens per kWh x Wh).
    function verifyCurtailments(
        address data,
        uint256 cfg,
        uint256[] calldata trades,
        uint256[] calldata curtailments,
        uint256[] calldata margins,
        uint256[] calldata certificate
    ) external view returns (uint256 costWhMicro) {
        (uint256 result,) = _verify(data, cfg, trades, curtailments, margins, certificate, type(uint128).max, 0);
        return result & ~DONE;
    }

    /// @notice verifyCurtailments in pages. The entries are the m margin rows (each: its
    ///         linearised margin after all cuts is >= 0), then the T trades (each: its term of
    ///         the lp certificate's bound, nothing under the greedy rule), then one final entry
    ///         (the cost and, lp, cost against bound); every page checks the margin words and
    ///         the curtailments (the cuts every entry needs). `span` = from << 128 | upTo (upTo =
    ///         2**128 - 1: to the end). `carried`: the sum of the trade terms earlier pages
    ///         returned (the caller keeps it). Pages that partition [0, m + T + 1) on the same
    ///         lists reject exactly what the whole check rejects.
    /// @return result The cost (verifyCurtailments' return) with DONE set, at the final entry;
    ///         0 on an earlier page.
    /// @return terms This page's trade terms of the bound (scaled, signed).
    function verifyCurtailmentsPage(
        address data,
        uint256 cfg,
        uint256[] calldata trades,
        uint256[] calldata curtailments,
        uint256[] calldata margins,
        uint256[] calldata certificate,
        uint256 span,
        int256 carried
    ) external view returns (uint256 result, int256 terms) {
        return _verify(data, cfg, trades, curtailments, margins, certificate, span, carried);
    }

    function _verify(
        address data,
        uint256 cfg,
        uint256[] calldata trades,
        uint256[] calldata curtailments,
        uint256[] calldata margins,
        uint256[] calldata certificate,
        uint256 span,
        int256 carried
    ) private view returns (uint256 result, int256 terms) {
        uint256 rule = cfg & ~NETWORK_CHECKED;
        if (rule > RULE_LP) revert BadSecurityConfig(cfg);
        Network memory net = _load(data, cfg == rule);
        if (trades.length % 2 != 0) revert BadTradeWords(trades.length);
        (uint256[] memory rows, int256[] memory need) = _margins(net, margins);
        uint256[] memory cut = _cuts(net, trades, curtailments, rows);
        uint256 m = rows.length;
        (uint256 from, uint256 upTo) = _verdictSpan(span, m + cut.length + 1);
        _relieved(net, trades, cut, rows, need, from, upTo < m ? upTo : m);
        if (rule == RULE_LP) {
            if (certificate.length != m) revert CertificateLength(m, certificate.length);
            // the rows' part of the bound (checking the duals' ranges before any term uses
            // them), carried with the trades' terms to the final entry
            carried += _rowBound(need, certificate);
            terms = _tradeTerms(net, trades, cut, rows, certificate, (from << 128) | upTo);
        } else if (certificate.length != 0) {
            revert CertificateLength(0, certificate.length);
        }
        if (upTo <= m + cut.length) return (0, terms);
        uint256 cost = _cost(trades, cut);
        if (rule == RULE_LP) {
            int256 bound = carried + terms;
            int256 scaled = int256(DUAL_SCALE) * int256(cost);
            if (scaled > bound) revert BadCurtailmentCertificate(scaled, bound);
        }
        result = cost | DONE;
    }

    /// @dev [from, upTo) of `span` (upTo = 2**128 - 1: `entries`), a non-empty part of
    ///      [0, entries).
    function _verdictSpan(uint256 span, uint256 entries) private pure returns (uint256 from, uint256 upTo) {
        from = span >> 128;
        upTo = span & type(uint128).max;
        if (upTo == type(uint128).max) upTo = entries;
        if (from >= upTo || upTo > entries) revert BadVerdictSpan(entries, upTo);
    }

    /// @notice The committed row of element (`kind`, `index`), or type(uint256).max if none.
    function rowOf(address data, uint256 kind, uint256 index) external view returns (uint256) {
        return _row(_load(data, true), kind, index);
    }

    // --------------------------------------------------------------- internals
    /// @dev Read the network data (code of `data` after its first byte, or the shards its
    ///      directory lists: contracts/DataShards.sol) and check its size.
    function _load(address data, bool checkTree) private view returns (Network memory net) {
        bytes memory table = DataShards.load(data);
        uint256 got = table.length;
        if (got < HEADER_BYTES) revert NetworkDataLength(HEADER_BYTES, got);
        uint256 head;
        assembly ("memory-safe") {
            head := mload(add(table, 0x20))
        }
        net.nBuses = (head >> 224) & _U16;
        net.nBusRows = (head >> 208) & _U16;
        net.nLineRows = (head >> 192) & _U16;
        net.nTrafoRows = (head >> 176) & _U16;
        uint256 nRows = net.nBusRows + net.nLineRows + net.nTrafoRows;
        net.version = head >> 248;
        uint256 expected = HEADER_BYTES + 4 * nRows * net.nBuses;
        if (net.version > 1) {
            expected = HEADER_BYTES + 8 * net.nBuses + 6 * (net.nLineRows + net.nTrafoRows);
            if (net.version == 3) {
                net.nLoops = (head >> 136) & 0xff;
                net.shift = (head >> 128) & 0xff;
                net.loopBase = expected;
                expected += 8 * net.nLoops * (net.nBuses + nRows);
            }
        }
        if (net.version == 0 || net.version > 3 || got != expected) revert NetworkDataLength(expected, got);
        net.table = table;
        if (net.version != 1 && checkTree) _checkTree(net);
    }

    /// @dev Versions 2 and 3: the root is its own parent at depth 0, every other bus is one deeper than
    ///      its parent (so every walk to the root ends), every branch names a non-root bus.
    function _checkTree(Network memory net) private pure {
        uint256 nb = net.nBuses;
        if (nb == 0 || net.nBusRows + 1 != nb) revert BadNetworkShape(nb, net.nBusRows);
        for (uint256 b = 0; b < nb; ++b) {
            (uint256 parent, uint256 depth) = _node(net, b);
            bool ok = b == 0 ? (parent == 0 && depth == 0) : (parent < nb && depth == _depth(net, parent) + 1);
            if (!ok) revert BadNetworkTree(b);
        }
        uint256 nBranches = net.nLineRows + net.nTrafoRows;
        for (uint256 r = 0; r < nBranches; ++r) {
            (uint256 child,) = _branch(net, r);
            if (child == 0 || child >= nb) revert BadNetworkTree(nb + r);
        }
    }

    /// @dev Versions 2 and 3: bus `b`'s entry word (parent u16 | depth u16 | value int32 at the top).
    function _nodeWord(Network memory net, uint256 b) private pure returns (uint256 w) {
        bytes memory table = net.table;
        uint256 offset = HEADER_BYTES + 8 * b;
        assembly ("memory-safe") {
            w := mload(add(add(table, 0x20), offset))
        }
    }

    function _node(Network memory net, uint256 b) private pure returns (uint256 parent, uint256 depth) {
        uint256 w = _nodeWord(net, b);
        parent = w >> 240;
        depth = (w >> 224) & _U16;
    }

    function _depth(Network memory net, uint256 b) private pure returns (uint256) {
        return (_nodeWord(net, b) >> 224) & _U16;
    }

    /// @dev Versions 2 and 3: branch row `r`'s child bus and value.
    function _branch(Network memory net, uint256 r) private pure returns (uint256 child, int256 value) {
        bytes memory table = net.table;
        uint256 offset = HEADER_BYTES + 8 * net.nBuses + 6 * r;
        uint256 w;
        assembly ("memory-safe") {
            w := mload(add(add(table, 0x20), offset))
        }
        child = w >> 240;
        value = int256(int32(uint32((w >> 208) & _U32)));
    }

    /// @dev Versions 2 and 3: the lowest common ancestor of buses `a` and `b` (a checked tree).
    function _lca(Network memory net, uint256 a, uint256 b) private pure returns (uint256) {
        (uint256 pa, uint256 da) = _node(net, a);
        (uint256 pb, uint256 db) = _node(net, b);
        while (da > db) {
            a = pa;
            (pa, da) = _node(net, a);
        }
        while (db > da) {
            b = pb;
            (pb, db) = _node(net, b);
        }
        while (a != b) {
            a = pa;
            b = pb;
            (pa,) = _node(net, a);
            (pb,) = _node(net, b);
        }
        return a;
    }

    /// @dev Versions 2 and 3: relief of `row` at `bus` (bus < nBuses) from the tree.
    function _treeRelief(Network memory net, uint256 row, uint256 bus) private pure returns (int256) {
        if (row < net.nBusRows) {
            return int256(int32(uint32((_nodeWord(net, _lca(net, row + 1, bus)) >> 192) & _U32)));
        }
        (uint256 child, int256 value) = _branch(net, row - net.nBusRows);
        uint256 childDepth = _depth(net, child);
        (uint256 parent, uint256 depth) = _node(net, bus);
        while (depth > childDepth) {
            bus = parent;
            (parent, depth) = _node(net, bus);
        }
        return bus == child ? value : int256(0);
    }

    /// @dev Version 3: the loop correction of `row` at `bus` (< nBuses): the rounded, shifted
    ///      dot product of the row's and the bus's 2k int32 loop vectors (|x| < 2**31, so the
    ///      sum of at most 510 products cannot overflow).
    function _loopRelief(Network memory net, uint256 row, uint256 bus) private pure returns (int256 s) {
        uint256 m = 2 * net.nLoops;
        bytes memory table = net.table;
        uint256 atBus = net.loopBase + 4 * m * bus;
        uint256 atRow = net.loopBase + 4 * m * (net.nBuses + row);
        assembly ("memory-safe") {
            let base := add(table, 0x20)
            for { let i := 0 } lt(i, m) { i := add(i, 1) } {
                let x := signextend(3, shr(224, mload(add(base, add(atBus, mul(4, i))))))
                let y := signextend(3, shr(224, mload(add(base, add(atRow, mul(4, i))))))
                s := add(s, mul(x, y))
            }
        }
        uint256 sh = net.shift;
        if (sh > 0) s = (s + int256(1 << (sh - 1))) >> sh;
    }

    /// @dev Committed row of element (kind, index), _NONE if the network has no such row.
    function _row(Network memory net, uint256 kind, uint256 index) private pure returns (uint256) {
        if (kind == 0) return (index >= 1 && index <= net.nBusRows) ? index - 1 : _NONE;
        if (kind == 1) return index < net.nLineRows ? net.nBusRows + index : _NONE;
        if (kind == 2) return index < net.nTrafoRows ? net.nBusRows + net.nLineRows + index : _NONE;
        return _NONE;
    }

    /// @dev Sensitivity of `row` to a Wh cut at `bus` (0 for a bus outside the network).
    function _relief(Network memory net, uint256 row, uint256 bus) private pure returns (int256 s) {
        if (bus >= net.nBuses) return 0;
        if (net.version != 1) {
            s = _treeRelief(net, row, bus);
            if (net.version == 3) {
                s += _loopRelief(net, row, bus);
                if (row >= net.nBusRows && s < 0) s = -s;
            }
            return s;
        }
        bytes memory table = net.table;
        uint256 offset = HEADER_BYTES + 4 * (row * net.nBuses + bus);
        assembly ("memory-safe") {
            s := signextend(3, shr(224, mload(add(add(table, 0x20), offset))))
        }
    }

    /// @dev Check the margin words; their rows and needs (allowance - margin, > 0).
    function _margins(Network memory net, uint256[] calldata margins)
        private
        pure
        returns (uint256[] memory rows, int256[] memory need)
    {
        uint256 n = margins.length;
        rows = new uint256[](n);
        need = new int256[](n);
        uint256 previous = 0;
        for (uint256 k = 0; k < n; ++k) {
            uint256 w = margins[k];
            uint256 row = _row(net, w >> 248, (w >> 216) & _U32);
            if (w & _MARGIN_LOW != 0 || row == _NONE || (k > 0 && row <= previous)) revert BadMargin(k);
            int256 margin = int256(int64(uint64((w >> 152) & _U64)));
            if (margin >= 0) revert NotViolated(k);
            rows[k] = row;
            need[k] = int256((w >> 88) & _U64) - margin;
            previous = row;
        }
    }

    /// @dev Position of `row` among the ascending `rows`, _NONE if absent.
    function _find(uint256[] memory rows, uint256 row) private pure returns (uint256) {
        uint256 lo = 0;
        uint256 hi = rows.length;
        while (lo < hi) {
            uint256 mid = (lo + hi) >> 1;
            uint256 r = rows[mid];
            if (r == row) return mid;
            if (r < row) lo = mid + 1;
            else hi = mid;
        }
        return _NONE;
    }

    /// @dev Check every curtailment word; the total cut (Wh) of each trade.
    function _cuts(
        Network memory net,
        uint256[] calldata trades,
        uint256[] calldata curtailments,
        uint256[] memory rows
    ) private pure returns (uint256[] memory cut) {
        uint256 nTrades = trades.length / 2;
        cut = new uint256[](nTrades);
        for (uint256 k = 0; k < curtailments.length; ++k) {
            uint256 c = curtailments[k];
            uint256 t = c >> 224;
            uint256 cutWh = (c >> 160) & _U64;
            if (c & _CURT_LOW != 0 || t >= nTrades || cutWh == 0) revert MalformedCurtailment(k);
            uint256 row = _row(net, (c >> 152) & 0xff, (c >> 120) & _U32);
            if (row == _NONE) revert UnknownElement(k);
            if (_find(rows, row) == _NONE) revert NoMargin(k);
            uint256 w0 = trades[2 * t];
            if (_relief(net, row, (w0 >> 96) & _U16) <= 0) revert TradeDoesNotLoad(k);
            uint256 total = cut[t] + cutWh;
            if (total > (w0 >> 128) & _U64) revert CutExceedsTrade(k);
            cut[t] = total;
        }
    }

    /// @dev The linearised margin after all cuts of margin rows [a, b) is >= 0 (the trades
    ///      that are cut listed once, so each row visits only them).
    function _relieved(
        Network memory net,
        uint256[] calldata trades,
        uint256[] memory cut,
        uint256[] memory rows,
        int256[] memory need,
        uint256 a,
        uint256 b
    ) private pure {
        if (a >= b) return;
        uint256[] memory cutTrades = new uint256[](cut.length);
        uint256 n = 0;
        for (uint256 t = 0; t < cut.length; ++t) {
            if (cut[t] != 0) cutTrades[n++] = t;
        }
        for (uint256 k = a; k < b; ++k) {
            int256 after_ = -need[k];
            for (uint256 i = 0; i < n; ++i) {
                uint256 t = cutTrades[i];
                after_ += _relief(net, rows[k], (trades[2 * t] >> 96) & _U16) * int256(cut[t]);
            }
            if (after_ < 0) revert NotRelieved(k);
        }
    }

    /// @dev Sum over trades of cut * (sellerPrice + 1).
    function _cost(uint256[] calldata trades, uint256[] memory cut) private pure returns (uint256 cost) {
        for (uint256 t = 0; t < cut.length; ++t) {
            if (cut[t] != 0) cost += cut[t] * (((trades[2 * t + 1] >> 128) & _U64) + 1);
        }
    }

    /// @dev sum_r y_r S[r, bus]: the scaled dual value of one Wh cut at `bus`, computed once
    ///      per bus: trades share seller buses, so the certificate costs rows x distinct buses
    ///      reliefs, not rows x trades. The loads are kept in a hash table sized by the trades
    ///      (`keys` = bus + 1, 0 empty; a power of two above twice the trades, so a probe ends).
    function _dualLoad(
        Network memory net,
        uint256[] memory rows,
        uint256[] calldata certificate,
        uint256 bus,
        uint256[] memory keys,
        int256[] memory loads
    ) private pure returns (int256 g) {
        if (bus >= net.nBuses) return 0; // off the network: no relief on any row
        uint256 mask = keys.length - 1;
        uint256 i = (bus * 0x9E3779B1) & mask;
        for (uint256 key = keys[i]; key != 0; key = keys[i]) {
            if (key == bus + 1) return loads[i];
            i = (i + 1) & mask;
        }
        for (uint256 k = 0; k < rows.length; ++k) {
            g += int256(certificate[k]) * _relief(net, rows[k], bus);
        }
        keys[i] = bus + 1;
        loads[i] = g;
    }

    /// @dev lp: with duals y (scaled), z_t = max(0, sum_r y_r S[r, bus_t] - DUAL_SCALE w_t) makes
    ///      (y, z) dual feasible; the dual bound D = sum_r y_r need_r - sum_t z_t E_t. The cuts pass
    ///      if DUAL_SCALE * cost <= D + DUAL_SCALE * sum_{cut t} w_t + sum_r need_r (one Wh per cut
    ///      trade for rounding up, one dual unit per row for flooring the duals): _rowBound is
    ///      the rows' part, this the trades' of the entries in `span` (trade t is entry m + t).
    function _tradeTerms(
        Network memory net,
        uint256[] calldata trades,
        uint256[] memory cut,
        uint256[] memory rows,
        uint256[] calldata certificate,
        uint256 span
    ) private pure returns (int256 terms) {
        uint256 m = rows.length;
        uint256 from = span >> 128;
        uint256 upTo = span & type(uint128).max;
        uint256 a = from > m ? from - m : 0;
        uint256 b = upTo > m + cut.length ? cut.length : (upTo > m ? upTo - m : 0);
        if (a >= b) return 0;
        uint256 size = 1;
        while (size <= 2 * (b - a)) size <<= 1;
        uint256[] memory keys = new uint256[](size);
        int256[] memory loads = new int256[](size);
        for (uint256 t = a; t < b; ++t) {
            uint256 w0 = trades[2 * t];
            int256 g = _dualLoad(net, rows, certificate, (w0 >> 96) & _U16, keys, loads);
            terms += _tradeBound(w0, trades[2 * t + 1], cut[t] != 0, g);
        }
    }

    /// @dev sum_r (y_r + 1) need_r, checking every dual's range.
    function _rowBound(int256[] memory need, uint256[] calldata certificate) private pure returns (int256 bound) {
        for (uint256 k = 0; k < need.length; ++k) {
            uint256 y = certificate[k];
            if (y >= _DUAL_LIMIT) revert DualOutOfRange(k);
            bound += (int256(y) + 1) * need[k];
        }
    }

    /// @dev One trade's share of the bound (g: the dual load of its seller's bus): -z_t E_t,
    ///      plus DUAL_SCALE w_t if the trade is cut.
    function _tradeBound(uint256 w0, uint256 w1, bool isCut, int256 g) private pure returns (int256 share) {
        int256 weight = int256(DUAL_SCALE) * int256(((w1 >> 128) & _U64) + 1);
        if (g > weight) share = -(g - weight) * int256((w0 >> 128) & _U64);
        if (isCut) share += weight;
    }
}
