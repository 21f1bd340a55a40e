// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title PathFees
/// @notice Network fees in path form (market/path_fees.py): the fee of a trade from bus p to bus
///         q is the least sum of integer branch fees over a path from p to q, plus a flat part.
///         The data holds an Euler tour of a spanning tree with a sparse table of range minima
///         and the fees to the ends of the loop-closing branches, so any entry costs a few
///         memory reads while the data grows with the number of buses, not its square.
/// @dev Layout (big-endian; all entries uint32):
///        [0, 32)   MAGIC = keccak256("gridledger.PathFees.v1")
///        [32, 64)  nBuses u32 | tourLength E u32 | levels K u8 | portals S u8 | flat u32 | zeros
///        first     nBuses entries: first position of each bus in the tour (< E)
///        table     K rows of E entries: row k, entry i = min(level[i .. i + 2**k - 1]) for
///                  i <= E - 2**k, zero beyond; row 0 is `level` itself (K = bit length of E)
///        portals   nBuses rows of S entries: least path fee from the bus to each portal
///      fee(p, q) = flat + min(level[fp] + level[fq] - 2 min(level[fp..fq]),
///                             min_s portal[p][s] + portal[q][s]),  fp, fq = first[p], first[q].
///      A tree fee is taken as 0 where the rows above row 0 would make it negative. `check`
///      validates a layout once (sizes and ranges), so `fee` never reads outside it and every
///      fee is below 2**32 (levels, portal fees and flat are below 2**30).
library PathFees {
    /// @notice Path-form data is malformed: `check` 0 header or length (index = byte length),
    ///         1 `first` of bus `index` outside the tour, 2 level `index` >= 2**30, 3 portal
    ///         fee `index` (bus * S + portal) >= 2**30.
    error BadPathFees(uint256 check, uint256 index);

    bytes32 internal constant MAGIC = keccak256("gridledger.PathFees.v1");
    uint256 private constant _LIMIT = 1 << 30;
    uint256 private constant _MAX_TOUR = 1 << 17;
    uint256 private constant _MAX_PORTALS = 64;

    /// @notice Whether `d` starts with MAGIC (path form); a fee table never does (the ledger
    ///         refuses to pack one that would).
    function isPathForm(bytes memory d) internal pure returns (bool yes) {
        if (d.length < 64) return false;
        bytes32 w;
        assembly ("memory-safe") {
            w := mload(add(d, 0x20))
        }
        yes = w == MAGIC;
    }

    /// @notice Header fields of path-form data `d`, its length checked against them.
    function header(bytes memory d) internal pure returns (uint256 nb, uint256 e, uint256 k, uint256 s) {
        uint256 h;
        assembly ("memory-safe") {
            h := mload(add(d, 0x40))
        }
        nb = h >> 224;
        e = (h >> 192) & 0xffffffff;
        k = (h >> 184) & 0xff;
        s = (h >> 176) & 0xff;
        uint256 bits = 0;
        for (uint256 x = e; x != 0; x >>= 1) {
            ++bits;
        }
        if (
            nb == 0 || nb > 65536 || e == 0 || e > _MAX_TOUR || k != bits || s > _MAX_PORTALS
                || (h >> 144) & 0xffffffff >= _LIMIT || h & ((1 << 144) - 1) != 0
                || d.length != 64 + 4 * (nb + k * e + nb * s)
        ) revert BadPathFees(0, d.length);
    }

    /// @notice The number of buses of path-form data `d`, its header and length checked.
    function buses(bytes memory d) internal pure returns (uint256 nb) {
        (nb,,,) = header(d);
    }

    /// @notice Validate path-form data `d` (see the layout); returns its number of buses.
    /// @dev Checks what keeps every read inside the data and every fee below 2**32: the header
    ///      and length, `first` inside the tour, levels and portal fees below 2**30. The rows
    ///      above row 0 are not checked against the levels: `fee` takes whatever minimum they
    ///      hold (a tree fee that would be negative counts as 0), market/path_fees.py computes
    ///      fees from the committed rows the same way, and the audit reports rows that are
    ///      not the range minima of their levels.
    function check(bytes memory d) internal pure returns (uint256 nb) {
        uint256 e;
        uint256 k;
        uint256 s;
        (nb, e, k, s) = header(d);
        uint256 bad;
        assembly ("memory-safe") {
            // first entry in [from, to) that is >= limit, as (code << 128 | index) + 1, or 0
            function atLeast(from, to, limit, code) -> found {
                for { let ptr := from } lt(ptr, to) { ptr := add(ptr, 4) } {
                    if iszero(lt(shr(224, mload(ptr)), limit)) {
                        found := add(or(shl(128, code), shr(2, sub(ptr, from))), 1)
                        leave
                    }
                }
            }
            let first := add(d, 0x60)
            let table := add(first, shl(2, nb))
            bad := atLeast(first, table, e, 1)
            if iszero(bad) { bad := atLeast(table, add(table, shl(2, e)), _LIMIT, 2) }
            if iszero(bad) {
                let portals := add(table, shl(2, mul(k, e)))
                bad := atLeast(portals, add(portals, shl(2, mul(nb, s))), _LIMIT, 3)
            }
        }
        if (bad != 0) revert BadPathFees((bad - 1) >> 128, (bad - 1) & type(uint128).max);
    }

    /// @notice The fee from a seller at bus `p` to a buyer at bus `q` (p, q < nBuses; `d`
    ///         validated by `check`), micro-tokens per kWh.
    function fee(bytes memory d, uint256 p, uint256 q) internal pure returns (uint256 c) {
        c = _fees(d, p, q, 0, 0);
    }

    /// @notice Write fee(bus, q) as a uint32 at byte 4 * q of `row` for every q in `targets`
    ///         (read by the fee table's row and column scans in place of a table row; `row`
    ///         holds 4 * nBuses + 32 bytes, so no write leaves it).
    function fillRow(bytes memory d, bytes memory row, uint256 bus, uint256[] memory targets) internal pure {
        uint256 list;
        uint256 out;
        assembly ("memory-safe") {
            list := targets
            out := add(row, 0x20)
        }
        _fees(d, bus, 0, list, out);
    }

    /// @dev With list == 0 the fee from `bus` to bus `q`. Otherwise, for every bus b of the
    ///      uint256[] at memory `list`, fee(bus, b) written as a uint32 at `out` + 4 b (the
    ///      other bytes of the word kept), and 0 returned. What depends on `bus` alone is read
    ///      once into eight words past the free memory pointer (few stack slots per pair).
    function _fees(bytes memory d, uint256 bus, uint256 q, uint256 list, uint256 out)
        private
        pure
        returns (uint256 c)
    {
        assembly ("memory-safe") {
            // ctx: first | table | row bytes | portal rows | portals S | fa | la | portal row of bus
            function pairFee(ctx, b) -> v {
                let fb := shr(224, mload(add(mload(ctx), shl(2, b))))
                let lo := mload(add(ctx, 0xa0))
                let hi := fb
                if gt(lo, hi) {
                    hi := lo
                    lo := fb
                }
                // r = floor(log2(hi - lo + 1)) (< 2**17, branch-free): the widest row whose two
                // windows cover [lo, hi]
                let len := add(sub(hi, lo), 1)
                let r := shl(4, gt(len, 0xffff))
                len := shr(r, len)
                let t := shl(3, gt(len, 0xff))
                len := shr(t, len)
                r := or(r, t)
                t := shl(2, gt(len, 0xf))
                len := shr(t, len)
                r := or(r, t)
                t := shl(1, gt(len, 0x3))
                len := shr(t, len)
                r := or(or(r, t), gt(len, 0x1))
                let table := mload(add(ctx, 0x20))
                let row := add(table, mul(r, mload(add(ctx, 0x40))))
                let low := shr(224, mload(add(row, shl(2, lo))))
                t := shr(224, mload(add(row, shl(2, add(sub(hi, shl(r, 1)), 1)))))
                if lt(t, low) { low := t }
                v := add(mload(add(ctx, 0xc0)), shr(224, mload(add(table, shl(2, fb)))))
                low := shl(1, low)
                switch gt(low, v)
                case 1 { v := 0 }
                default { v := sub(v, low) }
                let ns := mload(add(ctx, 0x80))
                if ns {
                    let pa := mload(add(ctx, 0xe0))
                    let pb := add(mload(add(ctx, 0x60)), shl(2, mul(b, ns)))
                    let paEnd := add(pa, shl(2, ns))
                    for {} lt(pa, paEnd) {
                        pa := add(pa, 4)
                        pb := add(pb, 4)
                    } {
                        t := add(shr(224, mload(pa)), shr(224, mload(pb)))
                        if lt(t, v) { v := t }
                    }
                }
            }
            let ctx := mload(0x40)
            {
                let h := mload(add(d, 0x40))
                let first := add(d, 0x60)
                let table := add(first, shl(2, shr(224, h)))
                let rowBytes := shl(2, and(shr(192, h), 0xffffffff))
                let s := and(shr(176, h), 0xff)
                let portals := add(table, mul(and(shr(184, h), 0xff), rowBytes))
                let fa := shr(224, mload(add(first, shl(2, bus))))
                mstore(ctx, first)
                mstore(add(ctx, 0x20), table)
                mstore(add(ctx, 0x40), rowBytes)
                mstore(add(ctx, 0x60), portals)
                mstore(add(ctx, 0x80), s)
                mstore(add(ctx, 0xa0), fa)
                mstore(add(ctx, 0xc0), shr(224, mload(add(table, shl(2, fa)))))
                mstore(add(ctx, 0xe0), add(portals, shl(2, mul(bus, s))))
                c := and(shr(144, h), 0xffffffff) // the flat fee
            }
            switch list
            case 0 { c := add(pairFee(ctx, q), c) }
            default {
                let ptr := add(list, 0x20)
                let listEnd := add(ptr, shl(5, mload(list)))
                for {} lt(ptr, listEnd) { ptr := add(ptr, 0x20) } {
                    let b := mload(ptr)
                    let at := add(out, shl(2, b))
                    mstore(at, or(shl(224, add(pairFee(ctx, b), c)), and(mload(at), 0x00000000ffffffffffffffffffffffffffffffffffffffffffffffffffffffff)))
                }
                c := 0
            }
        }
    }

    /// @notice The (nBuses, nBuses) fee table of path-form data `d` (small feeders only).
    function dense(bytes memory d) internal pure returns (bytes memory table) {
        uint256 nb = buses(d);
        table = new bytes(4 * nb * nb);
        for (uint256 p = 0; p < nb; ++p) {
            for (uint256 q = 0; q < nb; ++q) {
                uint256 c = fee(d, p, q);
                assembly ("memory-safe") {
                    let at := add(add(table, 0x20), shl(2, add(mul(p, nb), q)))
                    mstore(at, or(shl(224, c), and(mload(at), 0x00000000ffffffffffffffffffffffffffffffffffffffffffffffffffffffff)))
                }
            }
        }
    }
}
