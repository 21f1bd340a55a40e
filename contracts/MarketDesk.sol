// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {MarketBase, ICurtailmentVerifier} from "./MarketBase.sol";
import {SafeCast} from "./SafeCast.sol";
import {FeeClearing, FeeClearingVerifier} from "./FeeClearing.sol";
import {EntryChecker} from "./EntryChecker.sol";

/// @title MarketDesk
/// @notice The Market's less frequent steps: configuring the fee rule and the committed
///         network, the welfare-optimal clearing (in pages when it does not fit one block),
///         the DSO's security verdict and the expiry of an unsettled interval.
/// @dev Deployed by the Market's constructor with the Market's own parameters (so its
///      immutables are the Market's) and reached only through the Market's fallback, by
///      DELEGATECALL: its code runs on the Market's storage and its events are the Market's.
///      Its own functions revert NotDelegated when called at the desk's own address. The
///      functions it inherits from Escrow and Registry act, there, on the desk's own empty
///      storage, whose only operator is the Market's: nobody else can register a member of
///      it, so nobody's money can be moved by them.
contract MarketDesk is MarketBase {
    using SafeCast for uint256;

    /// @notice A desk function was called at the desk's own address, not through its Market.
    error NotDelegated();

    address private immutable _self;
    /// @dev SecurityVerifier.DONE: bit 255 of a verdict page's result, set at its last entry.
    uint256 private constant _VERDICT_DONE = 1 << 255;

    /// @param cfg The Market's deployment parameters.
    constructor(Config memory cfg) MarketBase(cfg) {
        _self = address(this);
    }

    /// @dev Only through the Market's fallback (DELEGATECALL), never at the desk's own address.
    modifier onlyDelegated() {
        if (address(this) == _self) revert NotDelegated();
        _;
    }

    // ---------------------------------------------------------- fee clearing
    /// @notice Set the fee rule's parameters once (operator only): `nBuses_` buses, kappa =
    ///         `kappaNum_ / kappaDen_` (seller's share of a pair's surplus) and the fee table,
    ///         `nBuses_ * nBuses_` big-endian uint32 micro-tokens per kWh, entry (p, q) at byte
    ///         4 * (p * nBuses_ + q) = fee from a seller at bus p to a buyer at bus q.
    /// @dev The table is stored once as the code of a data contract (0x00 || table, so it can
    ///      never run) and read by the verifier with EXTCODECOPY, instead of travelling in the
    ///      calldata of every clearing. The event repeats it so audits need only chain data.
    ///      A table over MAX_FEE_TABLE_BYTES is given as a directory of shard contracts
    ///      (contracts/DataShards.sol); the verifier checks that it holds 4 * nBuses_**2 bytes.
    function configureClearing(uint16 nBuses_, uint64 kappaNum_, uint64 kappaDen_, bytes calldata table)
        external
        onlyDelegated
        onlyOperator
    {
        if (clearingRule == RULE_UNIFORM) revert UnsupportedClearingRule(RULE_UNIFORM);
        if (kappaDen != 0) revert ClearingAlreadyConfigured();
        if (nBuses_ == 0 || kappaDen_ == 0 || kappaNum_ > kappaDen_) {
            revert FeeClearing.BadFeeConfig(nBuses_, kappaNum_, kappaDen_);
        }
        address data = _deployData(table);
        uint256 size = 4 * uint256(nBuses_) * nBuses_;
        uint256 got = feeVerifier.dataBytes(data);
        if (got != size) revert FeeClearing.FeeTableLength(size, got);
        bytes32 h = keccak256(table);
        feeTableData = data;
        feeBuses = nBuses_;
        kappaNum = kappaNum_;
        kappaDen = kappaDen_;
        feeTableHash = h;
        emit ClearingConfigured(clearingRule, nBuses_, kappaNum_, kappaDen_, h, data, table);
    }

    /// @notice Clear `interval` with the welfare-optimal rule (operator only): the operator
    ///         submits the result of market/optimal.py with its integer LP duals as certificate,
    ///         and the contract checks it (FeeClearing.verifyOptimalPage), in pages when it does
    ///         not fit one transaction. The entries are the T trades, then the n bids, then one
    ///         final check (dual feasibility per bus pair, pairing order, welfare). Each call
    ///         checks the entries [done, upTo), `done` = `tradeCount` while the interval is in
    ///         Clearing (0 at first); every page resubmits the whole lists, the trades and the
    ///         certificate (parties and duals) checked against the first page's hashes, and the
    ///         page that checks the last entry records the clearing. One call with upTo = T + n
    ///         + 1 is the whole check.
    /// @param bids The last round's bid words (checked against the stored hash).
    /// @param trades Trade word pairs.
    /// @param parties For trade k: buyer bid index << 128 | seller bid index (checked hint).
    /// @param duals One dual per bid (u for a buy bid, v for a sell bid), micro-tokens per kWh,
    ///        then one tie-break dual per bid, then the claimed bounds per bus (4 words per bus;
    ///        FeeClearing.verifyOptimal).
    /// @param upTo End (exclusive) of the entries this call checks.
    function clearOptimal(
        uint32 interval,
        uint256[] calldata bids,
        uint256[] calldata trades,
        uint256[] calldata parties,
        uint256[] calldata duals,
        uint256 upTo
    ) external onlyDelegated onlyOperator {
        (FeeClearingVerifier verifier, uint256 cfg, address data) = _feeClearingInput(interval, RULE_OPTIMAL, bids);
        IntervalState storage st = _intervals[interval];
        uint256 from = st.tradeCount;
        uint256 end = parties.length + bids.length + 1;
        if (upTo <= from || upTo > end) revert BadPage(interval, from, upTo, end);
        // the certificate's hash waits in deliveryHash, which is unused until the verdict
        bytes32 ch = keccak256(abi.encodePacked(_hashWords(parties), _hashWords(duals)));
        bytes32 th;
        if (from == 0) {
            th = _hashWords(trades);
        } else {
            th = _checkHash(interval, trades, st.tradesHash);
            if (ch != st.deliveryHash) revert HashMismatch(interval, st.deliveryHash, ch);
        }
        uint256 welfare = verifier.verifyOptimalPage(cfg, data, bids, trades, parties, duals, (from << 128) | upTo);
        if (welfare < FeeClearing.DONE) {
            st.tradesHash = th;
            st.deliveryHash = ch;
            st.tradeCount = upTo.toUint32();
            emit ClearingPaged(interval, uint32(from), uint32(upTo));
            return;
        }
        if (from != 0) st.deliveryHash = bytes32(0);
        _recordCleared(interval, RULE_OPTIMAL, trades, th, welfare ^ FeeClearing.DONE);
    }

    /// @dev Deploy a data contract whose code is 0x00 || `table` (init code: copy and return).
    function _deployData(bytes calldata table) private returns (address data) {
        if (table.length > MAX_FEE_TABLE_BYTES) revert FeeTableTooLarge(table.length);
        uint256 size = table.length + 1;
        assembly ("memory-safe") {
            let p := mload(0x40)
            // PUSH2 size, DUP1, PUSH1 12, PUSH1 0, CODECOPY, PUSH1 0, RETURN (12 bytes), 0x00 || table
            mstore(p, or(shl(248, 0x61), shl(232, size)))
            mstore(add(p, 3), shl(176, 0x80600c6000396000f300))
            calldatacopy(add(p, 13), table.offset, table.length)
            data := create(0, p, add(12, size))
        }
        if (data == address(0)) revert FeeTableTooLarge(table.length);
    }

    // --------------------------------------------------------------- security
    /// @notice Commit the DSO's linearised network once (operator relays, DSO signs
    ///         Network(cfg, keccak256(table))): the sensitivities and limits the curtailment
    ///         checks use (layout: contracts/SecurityVerifier.sol), stored as a data contract;
    ///         `cfg` is the congestion rule the verifier checks (0 greedy, 1 lp), or
    ///         NETWORK_SIGNED_ONLY with an empty table for a feeder too large to commit. The
    ///         data is checked once here (the verifier on an empty verdict: its size, a tree's
    ///         shape, the rule), so malformed data is refused before any verdict needs it.
    function configureNetwork(uint256 cfg, bytes calldata table, bytes32[2] calldata dsoSig)
        external
        onlyDelegated
        onlyOperator
    {
        if (networkData != address(0)) revert NetworkAlreadyConfigured();
        bytes32 h = keccak256(table);
        _checkDso(keccak256(abi.encode(NETWORK_TYPEHASH, cfg, h)), dsoSig);
        address data = _deployData(table);
        if (cfg != NETWORK_SIGNED_ONLY) {
            uint256[] memory none = new uint256[](0);
            // An empty verdict costs nothing: any other answer is not the deployed verifier's.
            uint256 cost = curtailmentVerifier.verifyCurtailments(data, cfg & ~_NETWORK_CHECKED, none, none, none, none);
            if (cost != 0) revert BadConfig();
        }
        networkData = data;
        networkCfg = cfg;
        networkHash = h;
        emit NetworkConfigured(cfg, h, data, table);
    }

    /// @notice The DSO's security evidence of one interval.
    /// @param curtailments Curtailment words; each cuts a trade's energy (never raises it) and
    ///        names the violated element; each is checked against the committed network.
    /// @param margins The DSO's pre-curtailment margins of the curtailed elements.
    /// @param certificate Extra evidence of the congestion rule (e.g. LP duals), may be empty.
    /// @param dsoSig The DSO's compact signature (r, yParity << 255 | s) over Verdict(interval,
    ///        tradesHash, verdict, keccak256(curtailments), keccak256(margins), keccak256(certificate)).
    struct Evidence {
        uint256[] curtailments;
        uint256[] margins;
        uint256[] certificate;
        bytes32[2] dsoSig;
    }

    /// @notice Record the DSO-signed security verdict of `interval` (operator relays), in
    ///         pages when its check does not fit one transaction. A curtailed verdict's entries
    ///         are its m margin rows, then the T trades (their terms of the lp certificate's
    ///         bound), then one final entry (SecurityVerifier.verifyCurtailmentsPage); any other
    ///         verdict, or one on a signed-only or uncommitted network, has one entry. Each call checks the
    ///         entries [done, upTo), `done` = `pagedBids` while the interval is in Security (0
    ///         at first); every page resubmits the verdict, signed, its struct hash fixed by the
    ///         first page (kept in `deliveryHash`, unused until the verdict is recorded), and the
    ///         sum of the trade terms checked so far is kept in `readingsHash` (unused until the
    ///         readings); the page of the final entry records the verdict.
    /// @param trades The cleared trade words (checked against the stored hash).
    /// @param ev The curtailments, their evidence and the DSO's signature (see Evidence).
    /// @param upTo End (exclusive) of the entries this call checks.
    function recordSecurity(uint32 interval, uint8 verdict, uint256[] calldata trades, Evidence calldata ev, uint256 upTo)
        external
        onlyDelegated
        onlyOperator
    {
        IntervalState storage st = _inPhase(interval, Phase.Security);
        bytes32 h = _checkHash(interval, trades, st.tradesHash);
        uint256 nc = ev.curtailments.length;
        if (verdict > VERDICT_UNRESOLVED || (verdict == VERDICT_SECURE && nc != 0) || (verdict == VERDICT_CURTAILED && nc == 0)) {
            revert BadVerdict(verdict, nc);
        }
        bytes32 vh = _verdictHash(interval, h, verdict, ev);
        _checkDso(vh, ev.dsoSig);
        uint256 from = st.pagedBids;
        if (from != 0 && vh != st.deliveryHash) revert HashMismatch(interval, st.deliveryHash, vh);
        bool checked = nc > 0 && networkData != address(0) && networkCfg != NETWORK_SIGNED_ONLY;
        uint256 end = checked ? ev.margins.length + trades.length / 2 + 1 : 1;
        if (upTo <= from || upTo > end) revert BadPage(interval, from, upTo, end);
        bytes32 dh = h;
        if (nc > 0) {
            dh = EntryChecker.curtailedHash(trades, ev.curtailments);
            if (networkData == address(0)) revert NetworkNotConfigured();
            uint256 lost = 0;
            if (checked) {
                int256 carried = int256(uint256(st.readingsHash));
                (uint256 result, int256 terms) = curtailmentVerifier.verifyCurtailmentsPage(
                    networkData,
                    networkCfg | _NETWORK_CHECKED,
                    trades,
                    ev.curtailments,
                    ev.margins,
                    ev.certificate,
                    (from << 128) | upTo,
                    carried
                );
                if (result < _VERDICT_DONE) {
                    st.pagedBids = upTo.toUint32();
                    st.deliveryHash = vh;
                    st.readingsHash = bytes32(uint256(carried + terms));
                    emit SecurityPaged(interval, uint32(from), uint32(upTo));
                    return;
                }
                lost = result ^ _VERDICT_DONE;
            }
            emit CurtailmentEvidence(interval, ev.margins, ev.certificate, lost);
        }
        if (from != 0) {
            st.pagedBids = 0;
            st.readingsHash = bytes32(0);
        }
        st.verdict = verdict;
        st.deliveryHash = dh;
        st.phase = Phase.Delivery;
        st.openedBlock = uint64(block.number);
        emit SecurityRecorded(interval, verdict, dh, ev.curtailments, ev.dsoSig);
    }

    /// @dev EIP-712 struct hash of a Verdict.
    function _verdictHash(uint32 interval, bytes32 tradesHash, uint8 verdict, Evidence calldata ev)
        private
        pure
        returns (bytes32)
    {
        bytes32 curtailmentsHash = _hashWords(ev.curtailments);
        bytes32 marginsHash = _hashWords(ev.margins);
        bytes32 certificateHash = _hashWords(ev.certificate);
        return keccak256(
            abi.encode(VERDICT_TYPEHASH, interval, tradesHash, verdict, curtailmentsHash, marginsHash, certificateHash)
        );
    }

    /// @notice Void `interval` once its settle deadline has passed unsettled (anyone): no money
    ///         moves for it and its locks are released.
    function expireInterval(uint32 interval) external onlyDelegated {
        IntervalState storage st = _intervals[interval];
        if (!hasPendingInterval || pendingInterval != interval || block.number <= st.deadlineBlock) {
            revert NotExpirable(interval, st.deadlineBlock);
        }
        // a settlement that has booked nothing (checks only, its reserve short) is void too
        if (st.settledMembers > st.pagedReadings) revert SettlementUnderway(interval, st.settledMembers);
        _endPaging();
        st.phase = Phase.Expired;
        hasPendingInterval = false;
        emit IntervalExpired(interval);
    }
}

