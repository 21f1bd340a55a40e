// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {MarketBase} from "./MarketBase.sol";
import {MarketDesk} from "./MarketDesk.sol";
import {SafeCast} from "./SafeCast.sol";
import {FeeClearing, FeeClearingVerifier} from "./FeeClearing.sol";
import {SettlementCalculator} from "./SettlementCalculator.sol";
import {EntryChecker} from "./EntryChecker.sol";
import {BID_LOW_BITS, READING_LOW_BITS, READING_ROUND, U64_MASK} from "./Words.sol";

/// @title Market
/// @notice Interval market of a distribution feeder: bidding rounds with deadlines (signed
///         batches relayed by the operator, or bids sent straight by members), on-chain
///         clearing checked against the recorded bids, a DSO-signed security verdict whose
///         curtailments are checked against the committed linearised network, meter readings
///         (one per active member, a stated default for silent meters), settlement from escrow
///         with locks, and pull-based withdrawals (docs/ledger.md, docs/trust.md).
/// @dev The steps of every interval are here; the rest (configuring the fee rule and the
///      network, the welfare-optimal clearing, the security verdict, expiry) is in its desk
///      (contracts/MarketDesk.sol), which the constructor deploys with the same parameters
///      and every call this contract does not implement reaches by DELEGATECALL: one address,
///      one storage, one event log, under EIP-170's code size limit. Types, storage and the
///      record layouts: contracts/MarketBase.sol.
contract Market is MarketBase {
    using SafeCast for uint256;

    /// @notice The desk this Market forwards its other calls to (deployed by the constructor).
    address public immutable desk;

    /// @param cfg Deployment parameters (see MarketBase.Config).
    constructor(Config memory cfg) MarketBase(cfg) {
        desk = address(new MarketDesk(cfg));
    }

    /// @notice Any other call runs the desk's code on this Market's storage (DELEGATECALL to
    ///         the immutable `desk`, deployed by the constructor with the same parameters);
    ///         a function neither implements reverts without data.
    fallback() external {
        address target = desk;
        assembly ("memory-safe") {
            let p := mload(0x40)
            calldatacopy(p, 0, calldatasize())
            let ok := delegatecall(gas(), target, p, calldatasize(), 0, 0)
            returndatacopy(p, 0, returndatasize())
            if iszero(ok) { revert(p, returndatasize()) }
            return(p, returndatasize())
        }
    }

    // ------------------------------------------------------------------ views
    /// @notice The bid member `id` sent straight to the contract for `round` of `interval`
    ///         (0 if none); round 256 holds meters' direct readings.
    function directSubmission(uint32 interval, uint256 round, uint32 id) external view returns (uint256) {
        return _direct[_directKey(interval, round, id)];
    }

    // ---------------------------------------------------------------- bidding
    /// @notice Open `interval` for bidding (operator only): round 0 opens now.
    function openInterval(uint32 interval) external onlyOperator {
        IntervalState storage st = _inPhase(interval, Phase.None);
        st.phase = Phase.Bidding;
        st.openedBlock = uint64(block.number);
        emit IntervalOpened(interval, block.number);
    }

    /// @notice Send your own bid for the open round of `interval` (the member's account only),
    ///         before the round's deadline (`roundBlocks` blocks after it opened); the
    ///         operator's batch must then hold exactly this bid for the member, even if the
    ///         member is suspended after sending it.
    function submitBid(uint32 interval, uint8 round, uint256 bid) external {
        IntervalState storage st = _inPhase(interval, Phase.Bidding);
        if (round != st.roundsRecorded) revert WrongRound(interval, st.roundsRecorded, round);
        uint256 deadline = uint256(st.openedBlock) + roundBlocks;
        if (block.number >= deadline) revert SubmissionClosed(interval, deadline);
        uint32 id = uint32(bid >> 224);
        Member storage m = _members[id];
        if (m.account != msg.sender) revert NotMemberAccount(id, msg.sender);
        if (!m.active) revert MemberSuspended(id);
        uint256 e = (bid >> 152) & U64_MASK;
        if (bid & BID_LOW_BITS != 0 || (bid >> 216) & 0xff > 1 || e == 0) revert MalformedBid(0, id);
        if (((bid >> 88) & U64_MASK) > retailPerKwhMicro) revert PriceAboveCap(0, id, retailPerKwhMicro);
        if (e > m.limitWh) revert AboveLimit(0, id, m.limitWh);
        uint16 bus = uint16(bid >> 72);
        if (bus != m.bus) revert BusMismatch(id, m.bus, bus);
        _storeDirect(interval, round, id, bid);
        emit BidSubmitted(interval, round, id, bid);
    }

    /// @notice Record round `round` of `interval` (operator only): the members' signed bids and
    ///         every bid members sent themselves (unsigned entries). A `binding` round (always the
    ///         last) is the one cleared: each bid's worst case is locked from its member's escrow.
    ///         A round too large for one block is recorded in pages: every page resubmits the
    ///         whole list (checked against the first page's hash) and checks, signature by
    ///         signature, the bids [pagedBids, upTo); the last page (upTo = bids.length)
    ///         records the round. Pages wait for the round's deadline.
    /// @param bids Bid words, member ids strictly ascending (one bid per member).
    /// @param sigs Compact signatures (all zero for a member's own direct bid).
    /// @param upTo End (exclusive) of the bids this call checks.
    function recordRound(
        uint32 interval,
        uint8 round,
        bool binding,
        uint256[] calldata bids,
        bytes32[] calldata sigs,
        uint256 upTo
    ) external onlyOperator {
        IntervalState storage st = _inPhase(interval, Phase.Bidding);
        if (round != st.roundsRecorded) revert WrongRound(interval, st.roundsRecorded, round);
        uint256 n = bids.length;
        uint256 from = st.pagedBids;
        binding = binding || round + 1 == rounds;
        if (upTo > n || (upTo <= from && n != 0) || (from != 0 && binding != st.pagedBinding)) {
            revert BadPage(interval, from, upTo, n);
        }
        if (sigs.length != 2 * n) revert LengthMismatch(2 * n, sigs.length);
        uint256 deadline = uint256(st.openedBlock) + roundBlocks;
        if (block.number < deadline && (upTo != n || n != activeMemberCount)) revert RoundStillOpen(interval, deadline);
        bytes32 h = from == 0 ? _hashWords(bids) : _checkHash(interval, bids, st.bidsHash);
        _checkBids(interval, round, bids, sigs, from, upTo);
        if (binding && from == 0) {
            if (hasPendingInterval) revert IntervalPending(pendingInterval);
            hasPendingInterval = true;
            pendingInterval = interval;
            st.deadlineBlock = uint64(block.number + settleBlocks);
        }
        uint256 excluded = st.excludedBids;
        if (binding) excluded += _lockBinding(interval, bids, from, upTo);
        if (upTo < n) {
            st.bidsHash = h;
            st.pagedBids = upTo.toUint32();
            st.excludedBids = excluded.toUint32();
            st.pagedBinding = binding;
            emit RoundPaged(interval, round, uint32(from), uint32(upTo));
            return;
        }
        st.bidsHash = h;
        st.bidCount = n.toUint32();
        st.openedBlock = uint64(block.number);
        unchecked {
            st.roundsRecorded = round + 1;
        }
        if (from != 0) {
            st.pagedBids = 0;
            st.excludedBids = 0;
            st.pagedBinding = false;
        }
        _emitRound(interval, round, binding, h, bids);
        if (binding) {
            st.bidCount = (n - excluded).toUint32();
            if (excluded != 0) st.bidsHash = _admittedHash(interval, bids, n - excluded);
            st.phase = Phase.Clearing;
        }
    }

    /// @dev Lock the worst case of binding bids [from, upTo): a buyer its payment
    ///      eWh * price / 1000, a seller its shortfall penalty ceil(eWh * (retail - price) / 1000)
    ///      + 1. A bid whose member's free escrow cannot cover it is left out of the clearing
    ///      (BidExcluded, and a bit in the interval's exclusion bitmap), so nobody can block a
    ///      round with a bid it cannot pay for. Returns the number left out.
    function _lockBinding(uint32 interval, uint256[] calldata bids, uint256 from, uint256 upTo)
        private
        returns (uint256 excluded)
    {
        uint256 retail = retailPerKwhMicro;
        for (uint256 k = from; k < upTo; ++k) {
            uint256 w = bids[k];
            uint256 e = (w >> 152) & U64_MASK;
            uint256 price = (w >> 88) & U64_MASK;
            uint256 needed = (w >> 216) & 0xff == 0 ? (e * price) / 1000 : (e * (retail - price) + 999) / 1000 + 1;
            uint32 id = uint32(w >> 224);
            if (_tryLock(id, interval, needed) < 0) {
                emit BidExcluded(interval, id, int256(_accounts[id].balance), needed);
                _directBits[_directKey(interval, _EXCLUDED_ROUND, uint32(k >> 8))] |= 1 << (k & 0xff);
                ++excluded;
            }
        }
    }

    /// @dev Hash of the binding bids admitted to the clearing (those not in the exclusion bitmap).
    function _admittedHash(uint32 interval, uint256[] calldata bids, uint256 count) private view returns (bytes32) {
        uint256[] memory admitted = new uint256[](count);
        uint256 j = 0;
        for (uint256 k = 0; k < bids.length; ++k) {
            if ((_directBits[_directKey(interval, _EXCLUDED_ROUND, uint32(k >> 8))] >> (k & 0xff)) & 1 == 0) {
                admitted[j] = bids[k];
                ++j;
            }
        }
        return keccak256(abi.encodePacked(admitted));
    }

    /// @dev Storage key of a direct submission (`round` 256: a meter's reading).
    function _directKey(uint32 interval, uint256 round, uint32 id) private pure returns (bytes32) {
        return keccak256(abi.encode(interval, round, id));
    }

    function _countKey(uint32 interval, uint256 round) private pure returns (uint256) {
        return (uint256(interval) << 16) | round;
    }

    /// @dev Store a direct submission; mark its member in the round's bitmap.
    function _storeDirect(uint32 interval, uint256 round, uint32 id, uint256 word) private {
        bytes32 key = _directKey(interval, round, id);
        if (_direct[key] == 0) {
            ++_directCount[_countKey(interval, round)];
            bytes32 bitsKey = _directKey(interval, round, id >> 8);
            _directBits[bitsKey] |= 1 << (id & 0xff);
        }
        _direct[key] = word;
    }

    /// @dev Whether member `id` sent a direct submission for (`interval`, `round`).
    function _hasDirect(uint32 interval, uint256 round, uint32 id) private view returns (bool) {
        return (_directBits[_directKey(interval, round, id >> 8)] >> (id & 0xff)) & 1 == 1;
    }

    /// @dev Check the bid words [from, upTo) and their signatures, and the members' own bids
    ///      in the whole list (EntryChecker.checkBids).
    function _checkBids(
        uint32 interval,
        uint8 round,
        uint256[] calldata bids,
        bytes32[] calldata sigs,
        uint256 from,
        uint256 upTo
    ) private view {
        EntryChecker.checkBids(_slots(), domainSeparator(), retailPerKwhMicro, interval, round, bids, sigs, from, upTo);
    }

    /// @dev Storage slots the EntryChecker reads: members | direct << 64 | directBits << 128
    ///      | directCount << 192.
    function _slots() private pure returns (uint256 slots) {
        assembly ("memory-safe") {
            slots := or(
                or(_members.slot, shl(64, _direct.slot)), or(shl(128, _directBits.slot), shl(192, _directCount.slot))
            )
        }
    }

    /// @dev Emit RoundRecorded(interval, round, binding, hash, bids), copying the words from
    ///      calldata in one step.
    function _emitRound(uint32 interval, uint8 round, bool binding, bytes32 h, uint256[] calldata words) private {
        bytes32 topic0 = RoundRecorded.selector;
        assembly ("memory-safe") {
            let p := mload(0x40)
            mstore(p, round)
            mstore(add(p, 0x20), binding)
            mstore(add(p, 0x40), h)
            mstore(add(p, 0x60), 0x80)
            mstore(add(p, 0x80), words.length)
            let size := shl(5, words.length)
            calldatacopy(add(p, 0xa0), words.offset, size)
            log2(p, add(0xa0, size), topic0, interval)
        }
    }

    // --------------------------------------------------------------- clearing
    /// @notice Clear `interval` from its binding round (operator only).
    /// @dev The operator resubmits the round's bid words (checked against the stored hash) and
    ///      the clearing order: `order[0:nBuys]` indexes the buy bids by price descending, then
    ///      member ascending; `order[nBuys:]` the sell bids by price ascending, then member
    ///      ascending. The contract checks the order in O(n) and matches with two cursors.
    function clear(uint32 interval, uint256[] calldata bids, uint256[] calldata order, uint256 nBuys)
        external
        onlyOperator
    {
        IntervalState storage st = _clearingBids(interval, RULE_UNIFORM, bids);
        (uint256[] memory trades, uint64 price) = uniformClearing.clear(bids, order, nBuys);
        bytes32 th = keccak256(abi.encodePacked(trades));
        st.tradesHash = th;
        st.tradeCount = (trades.length / 2).toUint32();
        st.phase = Phase.Security;
        emit IntervalCleared(interval, RULE_UNIFORM, price, th, trades);
    }

    // ---------------------------------------------------------- fee clearing
    /// @notice Clear `interval` with the greedy rule (operator only): the operator submits the
    ///         result of market/greedy.py and the contract re-executes it to the unit, in pages
    ///         when it does not fit one transaction: each call checks the entries [done, upTo)
    ///         (the trades, then the seller buses left active, checked for surplus left;
    ///         FeeClearing.verifyGreedyPage), `done` = `tradeCount` while the interval is in
    ///         Clearing (0 at first); the whole list travels with every page (its hash fixed by
    ///         the first) and the page that checks the last entry records the clearing.
    /// @param bids The last round's bid words (checked against the stored hash).
    /// @param order Queue order: order[0:nBuys] indexes the buy bids by (bus asc, price desc,
    ///        member asc), order[nBuys:] the sell bids by (bus asc, price asc, member asc).
    /// @param trades Trade word pairs in clearing order (see FeeClearing.verifyGreedy).
    /// @param upTo End of this page (entries: trades, then active seller buses).
    function clearGreedy(
        uint32 interval,
        uint256[] calldata bids,
        uint256[] calldata order,
        uint256 nBuys,
        uint256[] calldata trades,
        uint256 upTo
    ) external onlyOperator {
        (FeeClearingVerifier verifier, uint256 cfg, address data) = _feeClearingInput(interval, RULE_GREEDY, bids);
        IntervalState storage st = _intervals[interval];
        uint256 from = st.tradeCount;
        uint256 n = trades.length / 2;
        if (upTo <= from && n != 0) revert BadPage(interval, from, upTo, n);
        bytes32 th = from == 0 ? _hashWords(trades) : _checkHash(interval, trades, st.tradesHash);
        uint256 welfare = verifier.verifyGreedyPage(cfg, data, bids, order, nBuys, trades, (from << 128) | upTo);
        if (welfare < FeeClearing.DONE) {
            st.tradesHash = th;
            st.tradeCount = upTo.toUint32();
            emit ClearingPaged(interval, uint32(from), uint32(upTo));
            return;
        }
        _recordCleared(interval, RULE_GREEDY, trades, th, welfare ^ FeeClearing.DONE);
    }

    // --------------------------------------------------------------- delivery
    /// @notice Send your meter's reading of `interval` (the member's meter account only),
    ///         in the first `readingBlocks` blocks of delivery, before the batch; the batch
    ///         must then hold exactly this reading.
    function submitReading(uint32 interval, uint256 reading) external {
        IntervalState storage st = _inPhase(interval, Phase.Delivery);
        if (st.readingsRecorded || st.pagedReadings != 0) revert ReadingsAlreadyRecorded(interval);
        uint256 deadline = uint256(st.openedBlock) + readingBlocks;
        if (block.number >= deadline) revert SubmissionClosed(interval, deadline);
        uint32 id = uint32(reading >> 224);
        Member storage m = _members[id];
        if (m.meter != msg.sender) revert NotMemberMeter(0, id, msg.sender);
        if (reading & READING_LOW_BITS != 0) revert MalformedBid(0, id);
        int256 net = int64(uint64(reading >> 160));
        if (net > int256(uint256(m.limitWh)) || -net > int256(uint256(m.limitWh))) revert AboveLimit(0, id, m.limitWh);
        _storeDirect(interval, READING_ROUND, id, reading);
        emit ReadingSubmitted(interval, id, reading);
    }

    /// @notice Record the readings of `interval` (operator relays), once: one per active member,
    ///         ids ascending. Signed entries are the meters' signatures; an unsigned entry is the
    ///         meter's own direct reading or, once `readingBlocks` of delivery have passed, the
    ///         default reading netWh = -limitWh (import at the connection limit). Too many
    ///         readings for one block are recorded in pages: every page resubmits the whole
    ///         list (checked against the first page's hash) and checks the signatures of
    ///         [pagedReadings, upTo); the last page (upTo = readings.length) records them.
    /// @param readings Reading words, member ids strictly ascending.
    /// @param sigs Compact signatures by each member's meter account (zero: unsigned entry).
    /// @param upTo End (exclusive) of the readings this call checks.
    function recordReadings(uint32 interval, uint256[] calldata readings, bytes32[] calldata sigs, uint256 upTo)
        external
        onlyOperator
    {
        IntervalState storage st = _inPhase(interval, Phase.Delivery);
        if (st.readingsRecorded) revert ReadingsAlreadyRecorded(interval);
        uint256 n = readings.length;
        uint256 from = st.pagedReadings;
        if (upTo > n || (upTo <= from && n != 0)) revert BadPage(interval, from, upTo, n);
        if (sigs.length != 2 * n) revert LengthMismatch(2 * n, sigs.length);
        bytes32 h = from == 0 ? _hashWords(readings) : _checkHash(interval, readings, st.readingsHash);
        uint256 deadline = uint256(st.openedBlock) + readingBlocks;
        uint256 active = st.pagedActive + _checkReadings(interval, deadline, readings, sigs, from, upTo);
        st.readingsHash = h;
        if (upTo < n) {
            st.pagedReadings = upTo.toUint32();
            st.pagedActive = active.toUint32();
            emit ReadingsPaged(interval, uint32(from), uint32(upTo));
            return;
        }
        if (active != activeMemberCount) revert ReadingsIncomplete(activeMemberCount, active);
        st.readingsRecorded = true;
        if (from != 0) {
            st.pagedReadings = 0;
            st.pagedActive = 0;
        }
        emit ReadingsRecorded(interval, h, readings);
    }

    /// @dev Check reading words [from, upTo) and signatures, and the unsigned entries of the
    ///      whole list (EntryChecker.checkReadings); returns the number of active members read.
    function _checkReadings(
        uint32 interval,
        uint256 deadline,
        uint256[] calldata readings,
        bytes32[] calldata sigs,
        uint256 from,
        uint256 upTo
    ) private returns (uint256) {
        return EntryChecker.checkReadings(_slots(), domainSeparator(), interval, deadline, readings, sigs, from, upTo);
    }

    // ------------------------------------------------------------- settlement
    /// @notice Settle `interval` exactly like market/settlement.py (SettlementCalculator). The
    ///         settlement has 2n entries for n readings: n checks, then n bookings. A call
    ///         covers the entries [settledMembers, upTo): all 2n at once, or pages. A check
    ///         page computes its readings' changes and adds up what they do to GRID, OPERATOR
    ///         and the member debt; the page that ends the checks verifies the reserve the
    ///         whole settlement leaves, before anything is booked. A booking page computes its
    ///         readings' changes again and books them. From the first page until the last,
    ///         member deposits and withdrawals wait (balances stay as checked). The operator
    ///         starts a settlement; once a page is done anyone may send the next ones (the
    ///         inputs are checked against the recorded hashes, so the result is the same
    ///         whoever sends them); once a member is booked the interval can no longer
    ///         expire. The last entry books GRID and OPERATOR, releases the locks and emits
    ///         IntervalSettled.
    /// @dev The fourth argument, `parties`, holds for trade k the buyer's reading index << 128
    ///      | the seller's (a lookup hint the calculator checks: a wrong or impossible hint
    ///      reverts with MissingReading); it reaches the calculator in this call's own
    ///      calldata (_compute), so it has no name here.
    /// @param trades The curtailed trade words (checked against the delivery hash).
    /// @param readings The reading words (checked against the readings hash).
    /// @param upTo End (exclusive) of the entries this call covers (2 * readings.length: to the
    ///        end).
    function settle(
        uint32 interval,
        uint256[] calldata trades,
        uint256[] calldata readings,
        uint256[] calldata, /* parties */
        uint256 upTo
    ) external {
        IntervalState storage st = _intervals[interval];
        uint256 from = st.settledMembers;
        if (from == 0 && msg.sender != operator) revert NotOperator(msg.sender);
        if (st.phase != Phase.Delivery || !st.readingsRecorded) revert WrongPhase(interval, Phase.Delivery, st.phase);
        uint256 n = readings.length;
        uint256 entries = 2 * n;
        if (upTo > entries || (upTo <= from && n != 0)) revert BadPage(interval, from, upTo, entries);
        _checkHash(interval, trades, st.deliveryHash);
        _checkHash(interval, readings, st.readingsHash);
        settlementPaging = true;
        st.settledMembers = upTo.toUint32();
        // empty unless a check or a booking fills them (no readings: the settlement is empty)
        // slither-disable-next-line uninitialized-local
        int256[] memory deltas;
        int256 gridDelta;
        int256 fees;
        // slither-disable-next-line uninitialized-local
        uint32[] memory ids;
        if (from < n) {
            uint256 checked = upTo < n ? upTo : n;
            ids = _ids(readings, from, checked);
            st.pagedReadings = uint32(checked);
            (deltas, gridDelta, fees) = _compute(from, checked);
            _checkPage(ids, deltas, gridDelta, fees, checked == n);
        }
        if (from != 0 || upTo < entries) {
            // the bookings of this call (none on a page of checks only)
            uint256 bookFrom = from < n ? 0 : from - n;
            uint256 bookTo = upTo < n ? 0 : upTo - n;
            ids = _ids(readings, bookFrom, bookTo);
            (deltas,,) = _compute(bookFrom, bookTo);
        }
        settlingMicro += _bookDeltas(interval, ids, deltas);
        if (upTo < entries) {
            emit SettlementPaged(interval, uint32(from), uint32(upTo), ids, deltas);
            return;
        }
        st.phase = Phase.Settled;
        st.settledMembers = 0;
        hasPendingInterval = false;
        settledIntervals += 1;
        if (interval > lastSettledInterval || settledIntervals == 1) lastSettledInterval = interval;
        (gridDelta, fees) = _closeBooks();
        emit IntervalSettled(interval, gridDelta, fees, ids, deltas);
    }

    /// @dev The changes of readings [from, upTo): SettlementCalculator.compute over that span,
    ///      called with settle's own calldata. Its arguments (tariffs, trades, readings,
    ///      parties, span) have settle's head layout (interval, trades, readings, parties,
    ///      upTo), so the three lists travel as sent and only the two end words change.
    function _compute(uint256 from, uint256 upTo) private view returns (int256[] memory, int256, int256) {
        if (from == upTo) return (new int256[](0), 0, 0);
        uint256 tariffs =
            (uint256(retailPerKwhMicro) << 128) | (uint256(feedInPerKwhMicro) << 64) | uint256(toleranceBp);
        bytes memory input = abi.encodePacked(
            SettlementCalculator.compute.selector, tariffs, msg.data[36:132], (from << 128) | upTo, msg.data[164:]
        );
        (bool ok, bytes memory out) = address(calculator).staticcall(input);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(out, 0x20), mload(out))
            }
        }
        return abi.decode(out, (int256[], int256, int256));
    }

    /// @dev Book the change `deltas[k]` of member `ids[k]`; returns their sum.
    function _bookDeltas(uint32 interval, uint32[] memory ids, int256[] memory deltas) private returns (int256 booked) {
        for (uint256 k = 0; k < ids.length; ++k) {
            int256 m = deltas[k];
            if (m != 0) {
                int256 balance = _bookMember(ids[k], m);
                if (balance < 0) emit DebtRecorded(ids[k], interval, balance);
                booked += m;
            }
        }
    }

    /// @dev The member ids of reading words [from, upTo).
    function _ids(uint256[] calldata readings, uint256 from, uint256 upTo) private pure returns (uint32[] memory ids) {
        ids = new uint32[](upTo - from);
        for (uint256 k = from; k < upTo; ++k) {
            ids[k - from] = uint32(readings[k] >> 224);
        }
    }

}
