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

    /// @notice The same check in pages (contracts/SecurityVerifier.sol): entries [from, upTo)
    ///         of `span` = from << 128 | upTo; `carried` the trade terms of earlier pages.
    ///         Returns the cost with bit 255 set at the last entry (0 before), and this
    ///         page's trade terms.
    function verifyCurtailmentsPage(
        address data,
        uint256 cfg,
        uint256[] calldata trades,
        uint256[] calldata curtailments,
        uint256[] calldata margins,
        uint256[] calldata certificate,
        uint256 span,
        int256 carried
    ) external view returns (uint256 result, int256 terms);
}

/// @title MarketBase
/// @notice What the Market (contracts/Market.sol) and its desk (contracts/MarketDesk.sol)
///         share: the interval's types, constants, errors, events, deployment parameters and
///         storage, and the helpers both use. The Market forwards the calls it does not
///         implement to its desk with DELEGATECALL, so both must lay out storage identically:
///         every state variable is declared here (or in Escrow and Registry), none in either.
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
abstract contract MarketBase is Escrow {
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
    uint256 internal constant _NETWORK_CHECKED = 1 << 128;

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

    uint256 internal constant _EXCLUDED_ROUND = 257;

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
    /// @notice A fee rule's clearing: entries [fromTrade, upTo) of `interval` were verified (not
    ///         the last page; the entries are the trades, then the greedy rule's seller buses
    ///         left active or the optimal rule's final check).
    event ClearingPaged(uint32 indexed interval, uint32 fromTrade, uint32 upTo);
    /// @notice Entries [fromEntry, upTo) of a curtailed verdict were checked (its margin rows,
    ///         then its trades' terms of the lp bound; SecurityRecorded follows at the last page).
    event SecurityPaged(uint32 indexed interval, uint32 fromEntry, uint32 upTo);
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
    mapping(bytes32 => uint256) internal _direct;
    mapping(bytes32 => uint256) internal _directBits;
    mapping(uint256 => uint256) internal _directCount;
    /// @notice Number of settled intervals.
    uint32 public settledIntervals;
    /// @notice Highest settled interval (valid when settledIntervals > 0).
    uint32 public lastSettledInterval;
    // The fee rule's parameters are written by the desk (MarketDesk.configureClearing) in
    // this storage, through the Market's fallback: Slither, which reads each contract
    // alone, sees them read but never written in the Market.
    /// @notice Data contract whose code is 0x00 || fee table (zero until configureClearing).
    // slither-disable-next-line uninitialized-state
    address public feeTableData;
    /// @notice Buses covered by the fee table.
    // slither-disable-next-line uninitialized-state
    uint16 public feeBuses;
    /// @notice Seller's share of a pair's surplus, numerator.
    // slither-disable-next-line uninitialized-state
    uint64 public kappaNum;
    /// @notice Seller's share of a pair's surplus, denominator (0 until configured).
    // slither-disable-next-line uninitialized-state
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

    // ---------------------------------------------------------------- helpers
    /// @dev The state of `interval`, which must be in `phase`.
    function _inPhase(uint32 interval, Phase phase) internal view returns (IntervalState storage st) {
        st = _intervals[interval];
        if (st.phase != phase) revert WrongPhase(interval, phase, st.phase);
    }

    /// @dev The hash of `words`, which must be `recorded`.
    function _checkHash(uint32 interval, uint256[] calldata words, bytes32 recorded) internal pure returns (bytes32 h) {
        h = _hashWords(words);
        if (h != recorded) revert HashMismatch(interval, recorded, h);
    }

    /// @dev keccak256 of the words concatenated (= keccak256(abi.encodePacked(words))).
    function _hashWords(uint256[] calldata words) internal pure returns (bytes32 h) {
        assembly ("memory-safe") {
            let p := mload(0x40)
            let size := shl(5, words.length)
            calldatacopy(p, words.offset, size)
            h := keccak256(p, size)
        }
    }

    /// @dev The signer of an EIP-712 `structHash` under this contract's domain (0 if invalid).
    function _recover(bytes32 structHash, bytes32 r, bytes32 vs) internal view returns (address) {
        bytes32 digest = keccak256(abi.encodePacked(hex"1901", domainSeparator(), structHash));
        uint8 v = uint8(uint256(vs >> 255)) + 27;
        bytes32 s = vs & bytes32(SIG_S_MASK);
        return ecrecover(digest, v, r, s);
    }

    /// @dev Revert unless `structHash` is signed by the DSO (compact signature r, vs).
    function _checkDso(bytes32 structHash, bytes32[2] calldata sig) internal view {
        address signer = _recover(structHash, sig[0], sig[1]);
        if (signer != dso || signer == address(0)) revert BadDsoSignature(signer);
    }

    /// @dev Checks shared by the fee rules (rule, configuration, phase, bid hash); returns the
    ///      verifier, the packed configuration (nBuses << 128 | kappaNum << 64 | kappaDen) and
    ///      the fee table's data contract.
    function _feeClearingInput(uint32 interval, uint8 rule, uint256[] calldata bids)
        internal
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
        internal
        view
        returns (IntervalState storage st)
    {
        if (clearingRule != rule) revert WrongClearingRule(clearingRule, rule);
        st = _inPhase(interval, Phase.Clearing);
        _checkHash(interval, bids, st.bidsHash);
    }

    /// @dev Store a verified clearing (trades hash `th`, count, next phase) and emit it.
    function _recordCleared(uint32 interval, uint8 rule, uint256[] calldata trades, bytes32 th, uint256 welfare)
        internal
    {
        IntervalState storage st = _intervals[interval];
        st.tradesHash = th;
        st.tradeCount = (trades.length / 2).toUint32();
        st.phase = Phase.Security;
        emit IntervalCleared(interval, rule, 0, th, trades);
        emit ClearingWelfare(interval, welfare);
    }

}
