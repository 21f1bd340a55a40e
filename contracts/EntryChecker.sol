// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {BID_LOW_BITS, BID_TYPE, READING_LOW_BITS, READING_ROUND, READING_TYPE, SIG_S_MASK, U64_MASK} from "./Words.sol";

/// @title EntryChecker
/// @notice The per-entry checks of a Market's bid rounds and meter readings: word layout,
///         limits, member records, the members' own (direct) entries and EIP-712 signatures.
/// @dev A library with external functions: the Market calls it by DELEGATECALL (linked at
///      deployment), so it runs in the Market's storage. `slots` packs the storage slots of
///      the Market's mappings it reads: members | direct << 64 | directBits << 128 |
///      directCount << 192 (a member record is word 0: account, bus <<160, active <<184,
///      limitWh <<192; word 1: meter). It writes no storage; checkReadings emits
///      ReadingDefaulted. The errors are the Market's (same signatures), so callers decode
///      them with the Market's ABI. Kept out of the Market so that it stays under the
///      EIP-170 code size limit.
library EntryChecker {
    /// @notice Entry `index` does not have a larger member id than the entry before it.
    error NotAscending(uint256 index, uint32 member);
    /// @notice Entry `index` is malformed (unused bits set, side > 1, or zero energy).
    error MalformedBid(uint256 index, uint32 member);
    /// @notice No member `member` is registered.
    error UnknownMember(uint32 member);
    /// @notice Member `member` is suspended.
    error MemberSuspended(uint32 member);
    /// @notice A bid's bus differs from its member's registered bus.
    error BusMismatch(uint32 member, uint16 registered, uint16 got);
    /// @notice Entry `index`'s signature is not by its member's account.
    error BadSignature(uint256 index, uint32 member);
    /// @notice Reading `index` is not signed by its member's meter account.
    error NotMemberMeter(uint256 index, uint32 member, address signer);
    /// @notice Reading `index` repeats the member of the reading before it.
    error DuplicateReading(uint256 index, uint32 member);
    /// @notice Bid `index`'s price is above the cap (the retail tariff).
    error PriceAboveCap(uint256 index, uint32 member, uint64 capPerKwhMicro);
    /// @notice Entry `index`'s energy is beyond its member's connection limit.
    error AboveLimit(uint256 index, uint32 member, uint64 limitWh);

    /// @notice An unsigned entry is not the member's own direct submission (or its default).
    error DirectEntryMismatch(uint256 index, uint32 member);
    /// @notice A relayed entry for a member who sent its own.
    error DirectEntryIgnored(uint256 index, uint32 member);
    /// @notice Not every direct submission is in the batch.
    error DirectEntryMissing(uint256 expected, uint256 included);
    /// @notice A default reading before the reading window closed.
    error ReadingWindowOpen(uint32 interval, uint256 deadlineBlock);
    /// @notice Curtailment `index` names no trade, has non-zero unused bits or an unknown
    ///         element kind, or cuts more than its trade has left (the Market's error).
    error BadCurtailment(uint256 index);

    /// @notice A meter's reading was missing and its default was recorded (the Market's event).
    event ReadingDefaulted(uint32 indexed interval, uint32 indexed member);


    uint256 private constant _CURT_LOW = (1 << 120) - 1;
    uint256 private constant _E_ASC = 0x0674878600000000000000000000000000000000000000000000000000000000; // NotAscending(uint256,uint32)
    uint256 private constant _E_BAD = 0x90bf108100000000000000000000000000000000000000000000000000000000; // MalformedBid(uint256,uint32)
    uint256 private constant _E_UNKNOWN = 0x083b386400000000000000000000000000000000000000000000000000000000; // UnknownMember(uint32)
    uint256 private constant _E_SUSP = 0x1df5d6e100000000000000000000000000000000000000000000000000000000; // MemberSuspended(uint32)
    uint256 private constant _E_BUS = 0x984a209c00000000000000000000000000000000000000000000000000000000; // BusMismatch(uint32,uint16,uint16)
    uint256 private constant _E_SIG = 0x8bb8fec100000000000000000000000000000000000000000000000000000000; // BadSignature(uint256,uint32)
    uint256 private constant _E_METER = 0x22afd3e900000000000000000000000000000000000000000000000000000000; // NotMemberMeter(uint256,uint32,address)
    uint256 private constant _E_DUP = 0x4c411b4300000000000000000000000000000000000000000000000000000000; // DuplicateReading(uint256,uint32)
    uint256 private constant _E_CAP = 0xf8e2b5b400000000000000000000000000000000000000000000000000000000; // PriceAboveCap(uint256,uint32,uint64)
    uint256 private constant _E_LIMIT = 0x1a08b67e00000000000000000000000000000000000000000000000000000000; // AboveLimit(uint256,uint32,uint64)

    /// @notice keccak256 of the trade words after the curtailments (each cuts one trade's
    ///         energy, never below zero): what the Market records as the delivery hash.
    function curtailedHash(uint256[] calldata trades, uint256[] calldata curtailments)
        external
        pure
        returns (bytes32)
    {
        uint256[] memory cut = trades;
        uint256 nTrades = trades.length / 2;
        for (uint256 k = 0; k < curtailments.length; ++k) {
            uint256 c = curtailments[k];
            uint256 t = c >> 224;
            uint256 cutWh = (c >> 160) & U64_MASK;
            if (t >= nTrades || c & _CURT_LOW != 0 || (c >> 152) & 0xff > 2) revert BadCurtailment(k);
            uint256 w0 = cut[2 * t];
            uint256 e = (w0 >> 128) & U64_MASK;
            if (cutWh > e) revert BadCurtailment(k);
            cut[2 * t] = (w0 & ~(U64_MASK << 128)) | ((e - cutWh) << 128);
        }
        return keccak256(abi.encodePacked(cut));
    }

    /// @notice Check the members' own (direct) bids in the whole list `bids` (an unsigned entry
    ///         must be the member's direct bid, a member who sent one cannot be relayed, every
    ///         direct bid is included), then the bid words [from, upTo) and their signatures: ids strictly
    ///         ascending, well-formed word, price within `cap`, energy within the member's
    ///         limit, registered and active member, matching bus, EIP-712 signature (domain
    ///         `domain`) by the member's account (skipped for unsigned entries when `direct`:
    ///         the Market matched them to the members' own bids).
    function checkBids(
        uint256 slots,
        bytes32 domain,
        uint256 cap,
        uint32 interval,
        uint8 round,
        uint256[] calldata bids,
        bytes32[] calldata sigs,
        uint256 from,
        uint256 upTo
    ) external view {
        bool direct = _count(slots, interval, round) != 0;
        if (direct) _checkDirect(slots, interval, round, bids, sigs);
        uint256 membersSlot = slots & U64_MASK;
        // Scratch beyond the free memory pointer: p = struct words (typehash, interval, round,
        // member, side, eWh, price, bus), p+0x100 = 0x1901 || domain || structHash,
        // p+0x180 = ecrecover input. Constant words are written once.
        _prepareDigest(domain, BID_TYPE, interval, round, 0x100);
        assembly ("memory-safe") {
            let p := mload(0x40)
            let prev := 0
            if from { prev := shr(224, calldataload(add(bids.offset, shl(5, sub(from, 1))))) }
            for { let k := from } lt(k, upTo) { k := add(k, 1) } {
                let w := calldataload(add(bids.offset, shl(5, k)))
                let id := shr(224, w)
                if and(gt(k, 0), iszero(gt(id, prev))) {
                    mstore(0, _E_ASC)
                    mstore(4, k)
                    mstore(0x24, id)
                    revert(0, 0x44)
                }
                prev := id
                let e := and(shr(152, w), U64_MASK)
                if or(or(and(w, BID_LOW_BITS), gt(and(shr(216, w), 0xff), 1)), iszero(e)) {
                    mstore(0, _E_BAD)
                    mstore(4, k)
                    mstore(0x24, id)
                    revert(0, 0x44)
                }
                if gt(and(shr(88, w), U64_MASK), cap) {
                    mstore(0, _E_CAP)
                    mstore(4, k)
                    mstore(0x24, id)
                    mstore(0x44, cap)
                    revert(0, 0x64)
                }
                mstore(0, id)
                mstore(0x20, membersSlot)
                let m := sload(keccak256(0, 0x40))
                if iszero(and(m, 0xffffffffffffffffffffffffffffffffffffffff)) {
                    mstore(0, _E_UNKNOWN)
                    mstore(4, id)
                    revert(0, 0x24)
                }
                let r := calldataload(add(sigs.offset, shl(6, k)))
                let vs := calldataload(add(add(sigs.offset, shl(6, k)), 0x20))
                let isDirect := and(direct, iszero(or(r, vs)))
                // a member's own bid, sent while it was active, stays in its round
                if and(iszero(and(shr(184, m), 0xff)), iszero(isDirect)) {
                    mstore(0, _E_SUSP)
                    mstore(4, id)
                    revert(0, 0x24)
                }
                if gt(e, shr(192, m)) {
                    mstore(0, _E_LIMIT)
                    mstore(4, k)
                    mstore(0x24, id)
                    mstore(0x44, shr(192, m))
                    revert(0, 0x64)
                }
                if iszero(eq(and(shr(72, w), 0xffff), and(shr(160, m), 0xffff))) {
                    mstore(0, _E_BUS)
                    mstore(4, id)
                    mstore(0x24, and(shr(160, m), 0xffff))
                    mstore(0x44, and(shr(72, w), 0xffff))
                    revert(0, 0x64)
                }
                if iszero(isDirect) {
                    mstore(add(p, 0x60), id)
                    mstore(add(p, 0x80), and(shr(216, w), 0xff))
                    mstore(add(p, 0xa0), e)
                    mstore(add(p, 0xc0), and(shr(88, w), U64_MASK))
                    mstore(add(p, 0xe0), and(shr(72, w), 0xffff))
                    mstore(add(p, 0x122), keccak256(p, 0x100))
                    mstore(add(p, 0x180), keccak256(add(p, 0x100), 0x42))
                    mstore(add(p, 0x1a0), add(27, shr(255, vs)))
                    mstore(add(p, 0x1c0), r)
                    mstore(add(p, 0x1e0), and(vs, SIG_S_MASK))
                    mstore(0, 0)
                    pop(staticcall(gas(), 1, add(p, 0x180), 0x80, 0, 0x20))
                    if iszero(eq(mload(0), and(m, 0xffffffffffffffffffffffffffffffffffffffff))) {
                        mstore(0, _E_SIG)
                        mstore(4, k)
                        mstore(0x24, id)
                        revert(0, 0x44)
                    }
                }
            }
        }
    }

    /// @notice Check the unsigned readings of the whole list (each the meter's direct reading
    ///         or, from block `deadline` on, the default netWh = -limitWh; a member with a
    ///         direct reading cannot be relayed; every direct reading included; ReadingDefaulted
    ///         for those in [from, upTo)), then the reading words [from, upTo): ids strictly ascending (a repeated id
    ///         reverts DuplicateReading), well formed, registered member, |netWh| within its
    ///         limit, and the EIP-712 signature of each signed entry by the member's own meter
    ///         account. Returns the number of active members read.
    function checkReadings(
        uint256 slots,
        bytes32 domain,
        uint32 interval,
        uint256 deadline,
        uint256[] calldata readings,
        bytes32[] calldata sigs,
        uint256 from,
        uint256 upTo
    ) external returns (uint256 active) {
        bool unsigned = _checkUnsignedReadings(slots, interval, deadline, readings, sigs, from, upTo);
        uint256 membersSlot = slots & U64_MASK;
        // Scratch: p = (typehash, interval, member, netWh), p+0x80 = 0x1901 || domain ||
        // structHash, p+0x100 = ecrecover input.
        _prepareDigest(domain, READING_TYPE, interval, 0, 0x80);
        assembly ("memory-safe") {
            let p := mload(0x40)
            let prev := 0
            if from { prev := shr(224, calldataload(add(readings.offset, shl(5, sub(from, 1))))) }
            for { let k := from } lt(k, upTo) { k := add(k, 1) } {
                let w := calldataload(add(readings.offset, shl(5, k)))
                let id := shr(224, w)
                if and(gt(k, 0), iszero(gt(id, prev))) {
                    mstore(0, _E_ASC)
                    if eq(id, prev) { mstore(0, _E_DUP) }
                    mstore(4, k)
                    mstore(0x24, id)
                    revert(0, 0x44)
                }
                prev := id
                if and(w, READING_LOW_BITS) {
                    mstore(0, _E_BAD)
                    mstore(4, k)
                    mstore(0x24, id)
                    revert(0, 0x44)
                }
                mstore(0, id)
                mstore(0x20, membersSlot)
                let base := keccak256(0, 0x40)
                let m := sload(base)
                let meter := and(sload(add(base, 1)), 0xffffffffffffffffffffffffffffffffffffffff)
                if iszero(meter) {
                    mstore(0, _E_UNKNOWN)
                    mstore(4, id)
                    revert(0, 0x24)
                }
                active := add(active, iszero(iszero(and(shr(184, m), 0xff))))
                let net := signextend(7, and(shr(160, w), U64_MASK))
                let limit := shr(192, m)
                if or(sgt(net, limit), slt(net, sub(0, limit))) {
                    mstore(0, _E_LIMIT)
                    mstore(4, k)
                    mstore(0x24, id)
                    mstore(0x44, limit)
                    revert(0, 0x64)
                }
                let r := calldataload(add(sigs.offset, shl(6, k)))
                let vs := calldataload(add(add(sigs.offset, shl(6, k)), 0x20))
                if iszero(and(unsigned, iszero(or(r, vs)))) {
                    mstore(add(p, 0x40), id)
                    mstore(add(p, 0x60), net)
                    mstore(add(p, 0xa2), keccak256(p, 0x80))
                    mstore(add(p, 0x100), keccak256(add(p, 0x80), 0x42))
                    mstore(add(p, 0x120), add(27, shr(255, vs)))
                    mstore(add(p, 0x140), r)
                    mstore(add(p, 0x160), and(vs, SIG_S_MASK))
                    mstore(0, 0)
                    pop(staticcall(gas(), 1, add(p, 0x100), 0x80, 0, 0x20))
                    let signer := mload(0)
                    if iszero(eq(signer, meter)) {
                        mstore(0, _E_METER)
                        mstore(4, k)
                        mstore(0x24, id)
                        mstore(0x44, signer)
                        revert(0, 0x64)
                    }
                }
            }
        }
    }

    /// @dev Direct bids in a batch: an unsigned entry must be the member's own direct bid, a
    ///      member who sent one cannot be relayed, and every direct bid must be included.
    function _checkDirect(uint256 slots, uint32 interval, uint256 round, uint256[] calldata words, bytes32[] calldata sigs)
        private
        view
    {
        uint256 included = 0;
        for (uint256 k = 0; k < words.length; ++k) {
            uint32 id = uint32(words[k] >> 224);
            bool unsigned = sigs[2 * k] == 0 && sigs[2 * k + 1] == 0;
            if (unsigned) {
                if (_direct(slots, interval, round, id) != words[k]) revert DirectEntryMismatch(k, id);
                ++included;
            } else if (_hasDirect(slots, interval, round, id)) {
                revert DirectEntryIgnored(k, id);
            }
        }
        uint256 expected = _count(slots, interval, round);
        if (included != expected) revert DirectEntryMissing(expected, included);
    }

    /// @dev Unsigned readings of the whole list: each is the meter's direct reading or a
    ///      default once the window has closed; members with a direct reading cannot be
    ///      relayed; every direct reading is included. Returns whether any entry is unsigned.
    function _checkUnsignedReadings(
        uint256 slots,
        uint32 interval,
        uint256 deadline,
        uint256[] calldata readings,
        bytes32[] calldata sigs,
        uint256 from,
        uint256 upTo
    ) private returns (bool any) {
        uint256 expected = _count(slots, interval, READING_ROUND);
        uint256 included = 0;
        for (uint256 k = 0; k < readings.length; ++k) {
            uint256 w = readings[k];
            uint32 id = uint32(w >> 224);
            if (sigs[2 * k] != 0 || sigs[2 * k + 1] != 0) {
                if (expected != 0 && _hasDirect(slots, interval, READING_ROUND, id)) revert DirectEntryIgnored(k, id);
                continue;
            }
            any = true;
            uint256 stored = _direct(slots, interval, READING_ROUND, id);
            if (stored != 0) {
                if (stored != w) revert DirectEntryMismatch(k, id);
                ++included;
                continue;
            }
            if (block.number < deadline) revert ReadingWindowOpen(interval, deadline);
            uint256 limit = _limitWh(slots, id);
            if (limit == 0 || w != ((uint256(id) << 224) | (uint256(uint64(-int64(uint64(limit)))) << 160))) {
                revert DirectEntryMismatch(k, id);
            }
            if (k >= from && k < upTo) emit ReadingDefaulted(interval, id);
        }
        if (included != expected) revert DirectEntryMissing(expected, included);
    }

    /// @dev The Market's `_direct[keccak256(abi.encode(interval, round, id))]`.
    function _direct(uint256 slots, uint32 interval, uint256 round, uint32 id) private view returns (uint256 v) {
        bytes32 at = keccak256(abi.encode(keccak256(abi.encode(interval, round, id)), (slots >> 64) & U64_MASK));
        assembly ("memory-safe") {
            v := sload(at)
        }
    }

    /// @dev Whether member `id` has a bit in the Market's direct bitmap of (`interval`, `round`).
    function _hasDirect(uint256 slots, uint32 interval, uint256 round, uint32 id) private view returns (bool) {
        bytes32 at = keccak256(abi.encode(keccak256(abi.encode(interval, round, id >> 8)), (slots >> 128) & U64_MASK));
        uint256 bits;
        assembly ("memory-safe") {
            bits := sload(at)
        }
        return (bits >> (id & 0xff)) & 1 == 1;
    }

    /// @dev The Market's `_directCount[interval << 16 | round]`.
    function _count(uint256 slots, uint32 interval, uint256 round) private view returns (uint256 v) {
        bytes32 at = keccak256(abi.encode((uint256(interval) << 16) | round, slots >> 192));
        assembly ("memory-safe") {
            v := sload(at)
        }
    }

    /// @dev The connection limit of member `id` (word 0 of its record, bits 192..255).
    function _limitWh(uint256 slots, uint32 id) private view returns (uint256 v) {
        bytes32 at = keccak256(abi.encode(id, slots & U64_MASK));
        assembly ("memory-safe") {
            v := shr(192, sload(at))
        }
    }

    /// @dev Write the constant parts of an EIP-712 digest computation into scratch memory at
    ///      the free memory pointer: typehash, interval, `second` and 0x1901 || domain at
    ///      `prefixAt`.
    function _prepareDigest(bytes32 domain, bytes32 typehash, uint256 interval, uint256 second, uint256 prefixAt)
        private
        pure
    {
        assembly ("memory-safe") {
            let p := mload(0x40)
            mstore(p, typehash)
            mstore(add(p, 0x20), interval)
            mstore(add(p, 0x40), second)
            mstore(add(p, prefixAt), shl(240, 0x1901))
            mstore(add(add(p, prefixAt), 0x02), domain)
        }
    }
}
