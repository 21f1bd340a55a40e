// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Escrow} from "./Escrow.sol";
import {Registry} from "./Registry.sol";
import {SafeCast} from "./SafeCast.sol";
import {SettlementToken} from "./SettlementToken.sol";
import {FeeClearing, FeeClearingVerifier} from "./FeeClearing.sol";
import {SettlementCalculator} from "./SettlementCalculator.sol";
import {UniformClearing} from "./UniformClearing.sol";
import {EntryChecker} from "./EntryChecker.sol";
import {BID_LOW_BITS, BID_TYPE, READING_LOW_BITS, READING_ROUND, READING_TYPE, SIG_S_MASK, U64_MASK} from "./Words.sol";

/// @notice What the Market needs of the curtailment checker (contracts/SecurityVerifier.sol).
interface ICurtailmentVerifier {
    /// @notice Revert unless every curtailment is justified by the committed network data.
    function verifyCurtailments(
        address data,
        uint256 cfg,
        uint256[] calldata trades,
        uint256[] calldata curtailments,
        uint256[] calldata margins,
        uint256[] calldata certificate
    ) external view returns (uint256 lostSurplusWhMicro);
}

/// @title Market
/// @notice Interval market of a distribution feeder: bidding rounds with deadlines (signed
///         batches relayed by the operator, or bids sent straight by members), on-chain
///         clearing checked against the recorded bids, a DSO-signed security verdict whose
///         curtailments are checked against the committed linearised network, meter readings
///         (one per active member, a stated default for silent meters), settlement from escrow
///         with locks, and pull-based withdrawals (docs/ledger.md, docs/trust.md).
/// @dev Records are packed into 256-bit words (layouts below, bit 255 is the top bit); the
///      contract stores only keccak256 hashes of each record list, the lists themselves travel
///      in calldata and events. Every later step resubmits the list and the contract checks
///      its hash, so the whole market can be re-derived from chain data alone.
///
///      bid word:         member u32 <<224 | side u8 <<216 | eWh u64 <<152 | price u64 <<88 | bus u16 <<72
///      trade words (2):  w0 = buyer u32 <<224 | seller u32 <<192 | eWh u64 <<128 | buyerBus u16 <<112
///                             | sellerBus u16 <<96
///                        w1 = buyerPrice u64 <<192 | sellerPrice u64 <<128
///      reading word:     member u32 <<224 | netWh int64 (two's complement) <<160
///      curtailment word: tradeIndex u32 <<224 | cutWh u64 <<160 | elementKind u8 <<152
///                        | elementIndex u32 <<120
///      All unused low bits must be zero. Prices are micro-tokens per kWh, energy Wh,
///      money micro-tokens; money = eWh * price / 1000, floored.
///      Signatures are compact (EIP-2098): sigs[2k] = r, sigs[2k+1] = yParity<<255 | s; an
///      all-zero pair marks an unsigned entry (a direct submission or a default reading).
contract Market is Escrow {
    using SafeCast for uint256;

    /// @notice Phases of one interval, in order (Expired: voided after its settle deadline).
    enum Phase {
        None,
        Bidding,
        Clearing,
        Security,
        Delivery,
        Settled,
        Expired
    }

    /// @notice Storage of one interval: a status word, four hashes and a paging word.
    ///         `openedBlock` is the block where the current round opened (Bidding) or delivery
    ///         started (Delivery); `deadlineBlock` the last block before the interval may be
    ///         expired. While a round or the readings are recorded in pages: `pagedBids` /
    ///         `pagedReadings` entries are checked, `bidsHash` / `readingsHash` hold the
    ///         hash of the whole list, `excludedBids` binding bids were left out so far,
    ///         `pagedActive` readings were of active members, `pagedBinding` the round's flag.
    struct IntervalState {
        Phase phase;
        uint8 roundsRecorded;
        bool readingsRecorded;
        uint8 verdict;
        uint32 bidCount;
        uint32 tradeCount;
        uint64 openedBlock;
        uint64 deadlineBlock;
        uint32 settledMembers;
        bytes32 bidsHash;
        bytes32 tradesHash;
        bytes32 deliveryHash;
        bytes32 readingsHash;
        uint32 pagedBids;
        uint32 excludedBids;
        uint32 pagedReadings;
        uint32 pagedActive;
        bool pagedBinding;
    }

    /// @notice Deployment parameters.
    struct Config {
        address operator;
        address dso;
        address grid;
        SettlementToken token;
        FeeClearingVerifier feeVerifier;
        UniformClearing uniformClearing;
        SettlementCalculator calculator;
        ICurtailmentVerifier curtailmentVerifier;
        uint8 rounds;
        uint8 rule;
        uint16 toleranceBp;
        uint64 retailPerKwhMicro;
        uint64 feedInPerKwhMicro;
        uint32 roundBlocks;
        uint32 readingBlocks;
        uint32 settleBlocks;
    }

    /// @notice Clearing rule id of the uniform-price double auction (market/double_auction.py).
    uint8 public constant RULE_UNIFORM = 0;
    /// @notice Clearing rule id of the surplus-ranked greedy rule with fees (market/greedy.py).
    uint8 public constant RULE_GREEDY = 1;
    /// @notice Clearing rule id of the welfare-optimal rule with fees (market/optimal.py).
    uint8 public constant RULE_OPTIMAL = 2;
    /// @notice Largest table (bytes) one data contract can hold (EIP-170 code size - 1).
    uint256 public constant MAX_FEE_TABLE_BYTES = 24_575;
    /// @notice Verdict: the cleared schedule is secure as is.
    uint8 public constant VERDICT_SECURE = 0;
    /// @notice Verdict: secure after the recorded curtailments.
    uint8 public constant VERDICT_CURTAILED = 1;
    /// @notice Verdict: violations remain that no curtailment of trades can resolve (e.g.
    ///         under-voltage from load alone); the recorded curtailments (maybe none) are the
    ///         justified ones.
    uint8 public constant VERDICT_UNRESOLVED = 2;
    /// @notice Network configuration of a feeder too large to commit, even in shards: the DSO
    ///         signs its verdicts, but curtailments are not checked on chain (docs/trust.md).
    uint256 public constant NETWORK_SIGNED_ONLY = type(uint256).max;
    /// @dev SecurityVerifier.NETWORK_CHECKED: the committed data was checked in configureNetwork.
    uint256 private constant _NETWORK_CHECKED = 1 << 128;

    /// @notice EIP-712 type of a bid.
    bytes32 public constant BID_TYPEHASH = BID_TYPE;
    /// @notice EIP-712 type of a meter reading.
    bytes32 public constant READING_TYPEHASH = READING_TYPE;
    /// @notice EIP-712 type of the DSO's security verdict.
    bytes32 public constant VERDICT_TYPEHASH = keccak256(
        "Verdict(uint32 interval,bytes32 tradesHash,uint8 verdict,bytes32 curtailmentsHash,bytes32 marginsHash,bytes32 certificateHash)"
    );
    /// @notice EIP-712 type of the DSO's network commitment.
    bytes32 public constant NETWORK_TYPEHASH = keccak256("Network(uint256 cfg,bytes32 tableHash)");

    uint256 private constant _EXCLUDED_ROUND = 257;

    // ----------------------------------------------------------------- errors
    // (the per-entry errors of rounds and readings are the EntryChecker library's:
    // NotAscending, BadSignature, DuplicateReading, DirectEntryMismatch, DirectEntryIgnored,
    // DirectEntryMissing, ReadingWindowOpen, besides those the Market shares with it)
    /// @notice The interval is not in the phase the call needs.
    error WrongPhase(uint32 interval, Phase expected, Phase actual);
    /// @notice Rounds are recorded in order 0..rounds-1; a direct bid names the open round.
    error WrongRound(uint32 interval, uint8 expected, uint8 got);
    /// @notice A bid's bus differs from the member's registered bus.
    error BusMismatch(uint32 member, uint16 registered, uint16 got);
    /// @notice A bid has zero energy, a side other than 0/1 or non-zero unused bits.
    error MalformedBid(uint256 index, uint32 member);
    /// @notice A bid's price is above the cap (the retail tariff).
    error PriceAboveCap(uint256 index, uint32 member, uint64 capPerKwhMicro);
    /// @notice A bid's energy or a reading's magnitude is above the member's connection limit.
    error AboveLimit(uint256 index, uint32 member, uint64 limitWh);
    /// @notice A resubmitted list does not hash to the recorded hash.
    error HashMismatch(uint32 interval, bytes32 recorded, bytes32 submitted);
    /// @notice The supplied clearing order is not a valid sorted permutation.
    error BadOrder(uint256 position);
    /// @notice The configured clearing rule is not implemented by this contract.
    error UnsupportedClearingRule(uint8 rule);
    /// @notice A verdict code is unknown or inconsistent with the curtailments.
    error BadVerdict(uint8 verdict, uint256 curtailments);
    /// @notice A curtailment names no trade, an unknown element kind or cuts more than traded.
    error BadCurtailment(uint256 index);
    /// @notice A verdict or network commitment is not signed by the DSO (`signer` recovered).
    error BadDsoSignature(address signer);
    /// @notice Curtailments need the committed network (configureNetwork) first.
    error NetworkNotConfigured();
    /// @notice The network is committed once.
    error NetworkAlreadyConfigured();
    /// @notice A reading is not signed (or sent) by the meter registered for its member.
    error NotMemberMeter(uint256 index, uint32 member, address signer);
    /// @notice The interval's readings were already recorded (once per interval).
    error ReadingsAlreadyRecorded(uint32 interval);
    /// @notice A readings batch does not hold one reading per active member.
    error ReadingsIncomplete(uint256 activeMembers, uint256 activeReadings);
    /// @notice A constructor argument is invalid.
    error BadConfig();
    /// @notice The clearing entry point called does not implement the configured rule.
    error WrongClearingRule(uint8 configured, uint8 called);
    /// @notice A fee rule's table and kappa were not configured (configureClearing) yet.
    error ClearingNotConfigured();
    /// @notice The fee table and kappa are set once.
    error ClearingAlreadyConfigured();
    /// @notice A table does not fit one data contract (MAX_FEE_TABLE_BYTES).
    error FeeTableTooLarge(uint256 bytesLength);
    /// @notice The round is open until `deadlineBlock` and not every active member has bid.
    error RoundStillOpen(uint32 interval, uint256 deadlineBlock);
    /// @notice A direct bid or reading at or after its window's deadline (`deadlineBlock`):
    ///         the operator may record the batch from that block on, so it must not change.
    error SubmissionClosed(uint32 interval, uint256 deadlineBlock);
    /// @notice A binding round while another interval awaits settlement.
    error IntervalPending(uint32 pending);
    /// @notice The interval cannot be expired (not pending, or before `deadlineBlock`).
    error NotExpirable(uint32 interval, uint256 deadlineBlock);
    /// @notice A page of a list (bids, readings, settlement) must cover [done, upTo) with
    ///         done < upTo <= length (an empty list: upTo = 0), and a later page of a round
    ///         must repeat the first page's binding flag.
    error BadPage(uint32 interval, uint256 done, uint256 upTo, uint256 length);
    /// @notice A paged settlement has booked members: it must be finished, not expired.
    error SettlementUnderway(uint32 interval, uint32 settledMembers);

    // ----------------------------------------------------------------- events
    /// @notice An interval was opened for bidding.
    event IntervalOpened(uint32 indexed interval, uint256 blockNumber);
    /// @notice A member sent its own bid for the open round (replaces an earlier one).
    event BidSubmitted(uint32 indexed interval, uint8 round, uint32 indexed member, uint256 bid);
    /// @notice A round's bids were recorded; `binding` rounds are cleared and lock escrow.
    event RoundRecorded(uint32 indexed interval, uint8 round, bool binding, bytes32 bidsHash, uint256[] bids);
    /// @notice The interval was cleared; `trades` are trade word pairs, `price` 0 if none traded.
    event IntervalCleared(uint32 indexed interval, uint8 rule, uint64 price, bytes32 tradesHash, uint256[] trades);
    /// @notice A fee rule's clearing was verified; its welfare sum(s * eWh) over the trades in
    ///         micro-tokens/kWh x Wh (divide by 1000 for micro-tokens).
    event ClearingWelfare(uint32 indexed interval, uint256 welfareWhMicro);
    /// @notice The DSO-signed security verdict and curtailments were recorded (with the DSO's
    ///         signature, so anyone can check it from chain data alone).
    event SecurityRecorded(
        uint32 indexed interval, uint8 verdict, bytes32 deliveryHash, uint256[] curtailments, bytes32[2] dsoSig
    );
    /// @notice The DSO's evidence of a curtailed verdict: pre-curtailment margins, certificate,
    ///         and the surplus the curtailments cost as the verifier measured it.
    event CurtailmentEvidence(
        uint32 indexed interval, uint256[] margins, uint256[] certificate, uint256 lostSurplusWhMicro
    );
    /// @notice A binding bid was left out of the clearing: its member's free escrow could not
    ///         cover the bid's lock (`freeMicro` < `neededMicro`).
    event BidExcluded(uint32 indexed interval, uint32 indexed member, int256 freeMicro, uint256 neededMicro);
    /// @notice A meter sent its own reading.
    event ReadingSubmitted(uint32 indexed interval, uint32 indexed member, uint256 reading);
    /// @notice A silent meter's member was given the default reading (import at its limit).
    event ReadingDefaulted(uint32 indexed interval, uint32 indexed member);
    /// @notice The readings (one per active member) were recorded.
    event ReadingsRecorded(uint32 indexed interval, bytes32 readingsHash, uint256[] readings);
    /// @notice The interval was settled; account changes in micro-tokens.
    event IntervalSettled(
        uint32 indexed interval, int256 gridDeltaMicro, int256 operatorDeltaMicro, uint32[] members, int256[] deltasMicro
    );
    /// @notice The interval passed its settle deadline unsettled: void, its locks released.
    event IntervalExpired(uint32 indexed interval);
    /// @notice A settlement page covered the entries [fromEntry, upTo) of `interval` (n checks,
    ///         then n bookings for n readings) and booked `deltasMicro` to `members` (none on a
    ///         check page; DebtRecorded as booked). The last page's IntervalSettled carries the
    ///         last members booked: the pages' lists and its own are the whole settlement.
    event SettlementPaged(
        uint32 indexed interval, uint32 fromEntry, uint32 upTo, uint32[] members, int256[] deltasMicro
    );
    /// @notice Bids [fromIndex, upTo) of a round's list were checked (and, binding, locked);
    ///         RoundRecorded follows with the whole list at its last page.
    event RoundPaged(uint32 indexed interval, uint8 round, uint32 fromIndex, uint32 upTo);
    /// @notice Greedy clearing: trades [fromTrade, upTo) of `interval` were verified (not the last page).
    event ClearingPaged(uint32 indexed interval, uint32 fromTrade, uint32 upTo);
    /// @notice Readings [fromIndex, upTo) were checked; ReadingsRecorded follows at the last page.
    event ReadingsPaged(uint32 indexed interval, uint32 fromIndex, uint32 upTo);
    /// @notice A member's balance is negative after settlement: the debt is recorded, not lost.
    event DebtRecorded(uint32 indexed member, uint32 indexed interval, int256 balanceMicro);
    /// @notice The fee rule's parameters were set: the table is the code (after a 0x00 byte)
    ///         of `feeTableData` and is repeated here, so chain data alone recovers it.
    event ClearingConfigured(
        uint8 rule, uint16 nBuses, uint64 kappaNum, uint64 kappaDen, bytes32 feeTableHash, address feeTableData, bytes feeTable
    );
    /// @notice The DSO-signed linearised network was committed (code of `data`, repeated here).
    event NetworkConfigured(uint256 cfg, bytes32 tableHash, address data, bytes table);

    // ------------------------------------------------------------------ state
    /// @notice Bidding rounds per interval.
    uint8 public immutable rounds;
    /// @notice Clearing rule id (RULE_UNIFORM, RULE_GREEDY or RULE_OPTIMAL), fixed at deployment.
    uint8 public immutable clearingRule;
    /// @notice Checker of fee-rule results (zero address for the uniform rule).
    FeeClearingVerifier public immutable feeVerifier;
    /// @notice The settlement rules.
    SettlementCalculator public immutable calculator;
    /// @notice The uniform-price rule (zero address for the fee rules).
    UniformClearing public immutable uniformClearing;
    /// @notice Checker of curtailments against the committed network.
    ICurtailmentVerifier public immutable curtailmentVerifier;
    /// @notice Retail tariff (buy from the grid), micro-tokens per kWh; also the bid price cap.
    uint64 public immutable retailPerKwhMicro;
    /// @notice Feed-in tariff (sell to the grid), micro-tokens per kWh.
    uint64 public immutable feedInPerKwhMicro;
    /// @notice Tolerance band of settlement, basis points of each trade's energy (<= 10000).
    uint16 public immutable toleranceBp;
    /// @notice Blocks each round stays open for direct bids before the operator may close it.
    uint32 public immutable roundBlocks;
    /// @notice Blocks of delivery during which meters may report before defaults apply.
    uint32 public immutable readingBlocks;
    /// @notice Blocks after the binding round after which an unsettled interval may be expired.
    uint32 public immutable settleBlocks;

    mapping(uint32 => IntervalState) internal _intervals;
    mapping(bytes32 => uint256) private _direct;
    mapping(bytes32 => uint256) private _directBits;
    mapping(uint256 => uint256) private _directCount;
    /// @notice Number of settled intervals.
    uint32 public settledIntervals;
    /// @notice Highest settled interval (valid when settledIntervals > 0).
    uint32 public lastSettledInterval;
    /// @notice Data contract whose code is 0x00 || fee table (zero until configureClearing).
    address public feeTableData;
    /// @notice Buses covered by the fee table.
    uint16 public feeBuses;
    /// @notice Seller's share of a pair's surplus, numerator.
    uint64 public kappaNum;
    /// @notice Seller's share of a pair's surplus, denominator (0 until configured).
    uint64 public kappaDen;
    /// @notice keccak256 of the packed fee table.
    bytes32 public feeTableHash;
    /// @notice Data contract of the committed network (zero until configureNetwork).
    address public networkData;
    /// @notice Configuration word of the committed network (SecurityVerifier layout).
    uint256 public networkCfg;
    /// @notice keccak256 of the committed network table.
    bytes32 public networkHash;

    /// @param cfg Deployment parameters (see Config).
    constructor(Config memory cfg) Registry(cfg.operator, cfg.dso, cfg.grid) Escrow(cfg.token) {
        if (
            cfg.rounds == 0 || cfg.feedInPerKwhMicro > cfg.retailPerKwhMicro || cfg.toleranceBp > 10_000
                || address(cfg.calculator) == address(0) || address(cfg.curtailmentVerifier) == address(0)
                || cfg.roundBlocks == 0 || cfg.settleBlocks == 0
        ) {
            revert BadConfig();
        }
        if (cfg.rule > RULE_OPTIMAL) revert UnsupportedClearingRule(cfg.rule);
        if ((cfg.rule == RULE_UNIFORM) != (address(cfg.feeVerifier) == address(0))) revert BadConfig();
        if ((cfg.rule == RULE_UNIFORM) != (address(cfg.uniformClearing) != address(0))) revert BadConfig();
        feeVerifier = cfg.feeVerifier;
        uniformClearing = cfg.uniformClearing;
        calculator = cfg.calculator;
        curtailmentVerifier = cfg.curtailmentVerifier;
        rounds = cfg.rounds;
        clearingRule = cfg.rule;
        retailPerKwhMicro = cfg.retailPerKwhMicro;
        feedInPerKwhMicro = cfg.feedInPerKwhMicro;
        toleranceBp = cfg.toleranceBp;
        roundBlocks = cfg.roundBlocks;
        readingBlocks = cfg.readingBlocks;
        settleBlocks = cfg.settleBlocks;
    }

    // ------------------------------------------------------------------ views
    /// @notice EIP-712 domain separator (name "gridledger", version "1", this chain and contract).
    function domainSeparator() public view returns (bytes32) {
        return keccak256(
            abi.encode(
                keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
                keccak256("gridledger"),
                keccak256("1"),
                block.chainid,
                address(this)
            )
        );
    }

    /// @notice Stored state of `interval`.
    function intervalState(uint32 interval) external view returns (IntervalState memory) {
        return _intervals[interval];
    }

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

    /// @dev The state of `interval`, which must be in `phase`.
    function _inPhase(uint32 interval, Phase phase) private view returns (IntervalState storage st) {
        st = _intervals[interval];
        if (st.phase != phase) revert WrongPhase(interval, phase, st.phase);
    }

    /// @dev The hash of `words`, which must be `recorded`.
    function _checkHash(uint32 interval, uint256[] calldata words, bytes32 recorded) private pure returns (bytes32 h) {
        h = _hashWords(words);
        if (h != recorded) revert HashMismatch(interval, recorded, h);
    }

    /// @dev keccak256 of the words concatenated (= keccak256(abi.encodePacked(words))).
    function _hashWords(uint256[] calldata words) private pure returns (bytes32 h) {
        assembly ("memory-safe") {
            let p := mload(0x40)
            let size := shl(5, words.length)
            calldatacopy(p, words.offset, size)
            h := keccak256(p, size)
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

    /// @dev The signer of an EIP-712 `structHash` under this contract's domain (0 if invalid).
    function _recover(bytes32 structHash, bytes32 r, bytes32 vs) private view returns (address) {
        bytes32 digest = keccak256(abi.encodePacked(hex"1901", domainSeparator(), structHash));
        uint8 v = uint8(uint256(vs >> 255)) + 27;
        bytes32 s = vs & bytes32(SIG_S_MASK);
        return ecrecover(digest, v, r, s);
    }

    /// @dev Revert unless `structHash` is signed by the DSO (compact signature r, vs).
    function _checkDso(bytes32 structHash, bytes32[2] calldata sig) private view {
        address signer = _recover(structHash, sig[0], sig[1]);
        if (signer != dso || signer == address(0)) revert BadDsoSignature(signer);
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

    /// @notice Clear `interval` with the welfare-optimal rule (operator only): the operator
    ///         submits the result of market/optimal.py with its integer LP duals as certificate.
    /// @param bids The last round's bid words (checked against the stored hash).
    /// @param trades Trade word pairs.
    /// @param parties For trade k: buyer bid index << 128 | seller bid index (checked hint).
    /// @param duals One dual per bid (u for a buy bid, v for a sell bid), micro-tokens per kWh.
    function clearOptimal(
        uint32 interval,
        uint256[] calldata bids,
        uint256[] calldata trades,
        uint256[] calldata parties,
        uint256[] calldata duals
    ) external onlyOperator {
        (FeeClearingVerifier verifier, uint256 cfg, address data) = _feeClearingInput(interval, RULE_OPTIMAL, bids);
        uint256 welfare = verifier.verifyOptimal(cfg, data, bids, trades, parties, duals);
        _recordCleared(interval, RULE_OPTIMAL, trades, _hashWords(trades), welfare);
    }

    /// @dev Checks shared by the fee rules (rule, configuration, phase, bid hash); returns the
    ///      verifier, the packed configuration (nBuses << 128 | kappaNum << 64 | kappaDen) and
    ///      the fee table's data contract.
    function _feeClearingInput(uint32 interval, uint8 rule, uint256[] calldata bids)
        private
        view
        returns (FeeClearingVerifier verifier, uint256 cfg, address data)
    {
        _clearingBids(interval, rule, bids);
        data = feeTableData;
        if (data == address(0)) revert ClearingNotConfigured();
        verifier = feeVerifier;
        cfg = (uint256(feeBuses) << 128) | (uint256(kappaNum) << 64) | kappaDen;
    }

    /// @dev Checks shared by every clearing: the deployed rule is `rule`, the interval is in
    ///      Clearing and `bids` are its binding bids (stored hash). Returns its state.
    function _clearingBids(uint32 interval, uint8 rule, uint256[] calldata bids)
        private
        view
        returns (IntervalState storage st)
    {
        if (clearingRule != rule) revert WrongClearingRule(clearingRule, rule);
        st = _inPhase(interval, Phase.Clearing);
        _checkHash(interval, bids, st.bidsHash);
    }

    /// @dev Store a verified clearing (trades hash `th`, count, next phase) and emit it.
    function _recordCleared(uint32 interval, uint8 rule, uint256[] calldata trades, bytes32 th, uint256 welfare)
        private
    {
        IntervalState storage st = _intervals[interval];
        st.tradesHash = th;
        st.tradeCount = (trades.length / 2).toUint32();
        st.phase = Phase.Security;
        emit IntervalCleared(interval, rule, 0, th, trades);
        emit ClearingWelfare(interval, welfare);
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
    function configureNetwork(uint256 cfg, bytes calldata table, bytes32[2] calldata dsoSig) external onlyOperator {
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

    /// @notice Record the DSO-signed security verdict of `interval` (operator relays).
    /// @param trades The cleared trade words (checked against the stored hash).
    /// @param ev The curtailments, their evidence and the DSO's signature (see Evidence).
    function recordSecurity(uint32 interval, uint8 verdict, uint256[] calldata trades, Evidence calldata ev)
        external
        onlyOperator
    {
        IntervalState storage st = _inPhase(interval, Phase.Security);
        bytes32 h = _checkHash(interval, trades, st.tradesHash);
        uint256 nc = ev.curtailments.length;
        if (verdict > VERDICT_UNRESOLVED || (verdict == VERDICT_SECURE && nc != 0) || (verdict == VERDICT_CURTAILED && nc == 0)) {
            revert BadVerdict(verdict, nc);
        }
        _checkDso(_verdictHash(interval, h, verdict, ev), ev.dsoSig);
        bytes32 dh = h;
        if (nc > 0) {
            dh = EntryChecker.curtailedHash(trades, ev.curtailments);
            if (networkData == address(0)) revert NetworkNotConfigured();
            uint256 lost = 0;
            if (networkCfg != NETWORK_SIGNED_ONLY) {
                lost = curtailmentVerifier.verifyCurtailments(
                    networkData, networkCfg | _NETWORK_CHECKED, trades, ev.curtailments, ev.margins, ev.certificate
                );
            }
            emit CurtailmentEvidence(interval, ev.margins, ev.certificate, lost);
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

    /// @notice Void `interval` once its settle deadline has passed unsettled (anyone): no money
    ///         moves for it and its locks are released.
    function expireInterval(uint32 interval) external {
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
