// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Registry} from "./Registry.sol";
import {SettlementToken} from "./SettlementToken.sol";
import {FeeClearing, FeeClearingVerifier} from "./FeeClearing.sol";

/// @title Market
/// @notice Interval market of a distribution feeder: signed bid batches per round, on-chain
///         clearing checked against the recorded bids, security verdict with curtailments,
///         signed meter readings, settlement from escrow with pull-based withdrawals.
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
contract Market is Registry {
    /// @notice Phases of one interval, in order.
    enum Phase {
        Bidding,
        Clearing,
        Security,
        Delivery,
        Settled
    }

    /// @notice Storage of one interval: a status word and three hashes.
    struct IntervalState {
        Phase phase;
        uint8 roundsRecorded;
        bool readingsRecorded;
        uint8 verdict;
        uint32 bidCount;
        uint32 tradeCount;
        bytes32 bidsHash;
        bytes32 tradesHash;
        bytes32 deliveryHash;
        bytes32 readingsHash;
    }

    /// @notice Clearing rule id of the uniform-price double auction (market/double_auction.py).
    uint8 public constant RULE_UNIFORM = 0;
    /// @notice Clearing rule id of the surplus-ranked greedy rule with fees (market/greedy.py).
    uint8 public constant RULE_GREEDY = 1;
    /// @notice Clearing rule id of the welfare-optimal rule with fees (market/optimal.py).
    uint8 public constant RULE_OPTIMAL = 2;
    /// @notice Largest fee table (bytes) one data contract can hold (EIP-170 code size - 1).
    uint256 public constant MAX_FEE_TABLE_BYTES = 24_575;
    /// @notice Verdict: the cleared schedule is secure as is.
    uint8 public constant VERDICT_SECURE = 0;
    /// @notice Verdict: secure after the recorded curtailments.
    uint8 public constant VERDICT_CURTAILED = 1;

    /// @notice EIP-712 type of a bid.
    bytes32 public constant BID_TYPEHASH = keccak256(
        "Bid(uint32 interval,uint8 round,uint32 member,uint8 side,uint64 eWh,uint64 pricePerKwhMicro,uint16 bus)"
    );
    /// @notice EIP-712 type of a meter reading.
    bytes32 public constant READING_TYPEHASH = keccak256("Reading(uint32 interval,uint32 member,int64 netWh)");

    uint256 private constant _U64 = 0xffffffffffffffff;
    uint256 private constant _BID_LOW = (1 << 72) - 1;
    uint256 private constant _READING_LOW = (1 << 160) - 1;
    uint256 private constant _TRADE0_LOW = (1 << 96) - 1;
    uint256 private constant _CURT_LOW = (1 << 120) - 1;
    uint256 private constant _S_MASK = (1 << 255) - 1;
    uint256 private constant _E_MISSING = 0x02114a7500000000000000000000000000000000000000000000000000000000; // MissingReading selector
    uint256 private constant _E_ASC = 0x0674878600000000000000000000000000000000000000000000000000000000; // NotAscending selector
    uint256 private constant _E_BAD = 0x90bf108100000000000000000000000000000000000000000000000000000000; // MalformedBid selector
    uint256 private constant _E_UNKNOWN = 0x083b386400000000000000000000000000000000000000000000000000000000; // UnknownMember selector
    uint256 private constant _E_SUSP = 0x1df5d6e100000000000000000000000000000000000000000000000000000000; // MemberSuspended selector
    uint256 private constant _E_BUS = 0x984a209c00000000000000000000000000000000000000000000000000000000; // BusMismatch selector
    uint256 private constant _E_SIG = 0x8bb8fec100000000000000000000000000000000000000000000000000000000; // BadSignature selector
    uint256 private constant _E_METER = 0x22afd3e900000000000000000000000000000000000000000000000000000000; // NotMemberMeter selector
    uint256 private constant _E_DUP = 0x4c411b4300000000000000000000000000000000000000000000000000000000; // DuplicateReading selector

    // ----------------------------------------------------------------- errors
    /// @notice The interval is not in the phase the call needs.
    error WrongPhase(uint32 interval, Phase expected, Phase actual);
    /// @notice Rounds must be recorded in order 0..rounds-1.
    error WrongRound(uint32 interval, uint8 expected, uint8 got);
    /// @notice A batch's member ids are not strictly ascending (also catches duplicates).
    error NotAscending(uint256 index, uint32 member);
    /// @notice A bid's bus differs from the member's registered bus.
    error BusMismatch(uint32 member, uint16 registered, uint16 got);
    /// @notice A bid has zero energy, a side other than 0/1 or non-zero unused bits.
    error MalformedBid(uint256 index, uint32 member);
    /// @notice A signature does not recover to the expected account.
    error BadSignature(uint256 index, uint32 member);
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
    /// @notice A traded member has no meter reading.
    error MissingReading(uint32 member);
    /// @notice A reading is not signed by the meter registered for its member (a meter can
    ///         only report for its own member); `signer` is the recovered address.
    error NotMemberMeter(uint256 index, uint32 member, address signer);
    /// @notice A member appears twice in one readings batch (one reading per member).
    error DuplicateReading(uint256 index, uint32 member);
    /// @notice The interval's readings were already recorded (once per interval).
    error ReadingsAlreadyRecorded(uint32 interval);
    /// @notice A member both buys and sells in one interval's delivered trades.
    error BothSides(uint32 member);
    /// @notice A withdrawal exceeds the account's balance.
    error InsufficientBalance(int256 balance, uint256 amount);
    /// @notice The caller is not the account of the member.
    error NotMemberAccount(uint32 member, address caller);
    /// @notice A token transfer returned false.
    error TokenTransferFailed();
    /// @notice A constructor argument is invalid.
    error BadConfig();
    /// @notice The clearing entry point called does not implement the configured rule.
    error WrongClearingRule(uint8 configured, uint8 called);
    /// @notice A fee rule's table and kappa were not configured (configureClearing) yet.
    error ClearingNotConfigured();
    /// @notice The fee table and kappa are set once.
    error ClearingAlreadyConfigured();
    /// @notice The fee table does not fit one data contract (MAX_FEE_TABLE_BYTES).
    error FeeTableTooLarge(uint256 bytesLength);

    // ----------------------------------------------------------------- events
    /// @notice A round's signed bid batch was recorded.
    event RoundRecorded(uint32 indexed interval, uint8 round, bytes32 bidsHash, uint256[] bids);
    /// @notice The interval was cleared; `trades` are trade word pairs, `price` 0 if none traded.
    event IntervalCleared(uint32 indexed interval, uint8 rule, uint64 price, bytes32 tradesHash, uint256[] trades);
    /// @notice A fee rule's clearing was verified; its welfare sum(s * eWh) over the trades in
    ///         micro-tokens/kWh x Wh (divide by 1000 for micro-tokens).
    event ClearingWelfare(uint32 indexed interval, uint256 welfareWhMicro);
    /// @notice The security verdict and curtailments were recorded.
    event SecurityRecorded(uint32 indexed interval, uint8 verdict, bytes32 deliveryHash, uint256[] curtailments);
    /// @notice The signed meter readings were recorded.
    event ReadingsRecorded(uint32 indexed interval, bytes32 readingsHash, uint256[] readings);
    /// @notice The interval was settled; account changes in micro-tokens.
    event IntervalSettled(
        uint32 indexed interval, int256 gridDeltaMicro, int256 operatorDeltaMicro, uint32[] members, int256[] deltasMicro
    );
    /// @notice A member's balance is negative after settlement: the debt is recorded, not lost.
    event DebtRecorded(uint32 indexed member, uint32 indexed interval, int256 balanceMicro);
    /// @notice The fee rule's parameters were set: the table is the code (after a 0x00 byte)
    ///         of `feeTableData` and is repeated here, so chain data alone recovers it.
    event ClearingConfigured(
        uint8 rule,
        uint16 nBuses,
        uint64 kappaNum,
        uint64 kappaDen,
        bytes32 feeTableHash,
        address feeTableData,
        bytes feeTable
    );
    /// @notice Tokens were deposited into an escrow account (member id, or GRID_ACCOUNT).
    event Deposited(uint32 indexed account, address indexed from, uint256 amountMicro);
    /// @notice Tokens were withdrawn from an escrow account.
    event Withdrawn(uint32 indexed account, address indexed to, uint256 amountMicro);

    /// @notice Pseudo account id of the GRID (supplier of last resort) in Deposited/Withdrawn.
    uint32 public constant GRID_ACCOUNT = type(uint32).max;
    /// @notice Pseudo account id of the OPERATOR (network fees) in Deposited/Withdrawn.
    uint32 public constant OPERATOR_ACCOUNT = type(uint32).max - 1;

    // ------------------------------------------------------------------ state
    /// @notice The settlement token.
    SettlementToken public immutable token;
    /// @notice Bidding rounds per interval.
    uint8 public immutable rounds;
    /// @notice Clearing rule id (RULE_UNIFORM, RULE_GREEDY or RULE_OPTIMAL), fixed at deployment.
    uint8 public immutable clearingRule;
    /// @notice Checker of fee-rule results (FeeClearing library), deployed by the constructor
    ///         for the fee rules (zero address for the uniform rule).
    FeeClearingVerifier public immutable feeVerifier;
    /// @notice Retail tariff (buy from the grid), micro-tokens per kWh.
    uint64 public immutable retailPerKwhMicro;
    /// @notice Feed-in tariff (sell to the grid), micro-tokens per kWh.
    uint64 public immutable feedInPerKwhMicro;
    /// @notice Tolerance band of settlement, basis points of each trade's energy (<= 10000).
    uint16 public immutable toleranceBp;
    bytes32 private immutable _domainSeparator;

    mapping(uint32 => IntervalState) internal _intervals;
    /// @notice Escrow balance of each member (negative = recorded debt).
    mapping(uint32 => int256) public balanceMicro;
    /// @notice Balance of the GRID account.
    int256 public gridBalanceMicro;
    /// @notice Balance of the OPERATOR (network fee) account.
    int256 public operatorBalanceMicro;
    /// @notice Sum of all member balances.
    int256 public memberBalanceSumMicro;
    /// @notice Tokens ever deposited.
    uint256 public totalDepositedMicro;
    /// @notice Tokens ever withdrawn.
    uint256 public totalWithdrawnMicro;
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

    /// @param operator_ Market operator.
    /// @param token_ Settlement token.
    /// @param rounds_ Bidding rounds per interval (1..255).
    /// @param retail_ Retail tariff, micro-tokens per kWh.
    /// @param feedIn_ Feed-in tariff, micro-tokens per kWh (<= retail).
    /// @param rule_ Clearing rule id.
    /// @param toleranceBp_ Settlement tolerance band, basis points of a trade's energy (<= 10000).
    constructor(
        address operator_,
        SettlementToken token_,
        uint8 rounds_,
        uint64 retail_,
        uint64 feedIn_,
        uint8 rule_,
        uint16 toleranceBp_
    ) Registry(operator_) {
        if (address(token_) == address(0) || rounds_ == 0 || feedIn_ > retail_ || toleranceBp_ > 10_000) {
            revert BadConfig();
        }
        if (rule_ > RULE_OPTIMAL) revert UnsupportedClearingRule(rule_);
        feeVerifier = rule_ == RULE_UNIFORM ? FeeClearingVerifier(address(0)) : new FeeClearingVerifier();
        token = token_;
        rounds = rounds_;
        retailPerKwhMicro = retail_;
        feedInPerKwhMicro = feedIn_;
        clearingRule = rule_;
        toleranceBp = toleranceBp_;
        _domainSeparator = keccak256(
            abi.encode(
                keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
                keccak256("gridledger"),
                keccak256("1"),
                block.chainid,
                address(this)
            )
        );
    }

    // ------------------------------------------------------------------ views
    /// @notice EIP-712 domain separator (name "gridledger", version "1").
    function domainSeparator() external view returns (bytes32) {
        return _domainSeparator;
    }

    /// @notice Stored state of `interval`.
    function intervalState(uint32 interval) external view returns (IntervalState memory) {
        return _intervals[interval];
    }

    /// @notice True when deposits == balances + withdrawals and the token balance matches.
    function conserved() external view returns (bool) {
        int256 held = int256(totalDepositedMicro) - int256(totalWithdrawnMicro);
        return held == memberBalanceSumMicro + gridBalanceMicro + operatorBalanceMicro
            && uint256(held) == token.balanceOf(address(this));
    }

    // ---------------------------------------------------------------- bidding
    /// @notice Record the signed bids of round `round` of `interval` (aggregator = operator).
    /// @param bids Bid words, member ids strictly ascending (one bid per member).
    /// @param sigs Compact EIP-2098 signatures: sigs[2k] = r, sigs[2k+1] = yParity<<255 | s.
    function recordRound(uint32 interval, uint8 round, uint256[] calldata bids, bytes32[] calldata sigs)
        external
        onlyOperator
    {
        IntervalState storage st = _intervals[interval];
        if (st.phase != Phase.Bidding) revert WrongPhase(interval, Phase.Bidding, st.phase);
        if (round != st.roundsRecorded) revert WrongRound(interval, st.roundsRecorded, round);
        uint256 n = bids.length;
        if (sigs.length != 2 * n) revert LengthMismatch(2 * n, sigs.length);
        _checkBids(interval, round, bids, sigs);
        bytes32 h = _hashWords(bids);
        st.bidsHash = h;
        st.bidCount = uint32(n);
        unchecked {
            st.roundsRecorded = round + 1;
        }
        if (round + 1 == rounds) st.phase = Phase.Clearing;
        _emitWords(RoundRecorded.selector, interval, round, h, bids);
    }

    /// @dev Check every bid word of a batch and its signature in one linear pass (assembly
    ///      for speed on slow EVMs; the checks are those listed for recordRound): ids strictly
    ///      ascending, well-formed word, registered and active member, matching bus, EIP-712
    ///      signature by the member's account.
    function _checkBids(uint32 interval, uint8 round, uint256[] calldata bids, bytes32[] calldata sigs)
        private
        view
    {
        // Scratch beyond the free memory pointer: p = struct words (typehash, interval, round,
        // member, side, eWh, price, bus), p+0x100 = 0x1901 || domain || structHash,
        // p+0x180 = ecrecover input. Constant words are written once.
        _prepareDigest(BID_TYPEHASH, interval, round, 0x100);
        assembly ("memory-safe") {
            let p := mload(0x40)
            let prev := 0
            for { let k := 0 } lt(k, bids.length) { k := add(k, 1) } {
                let w := calldataload(add(bids.offset, shl(5, k)))
                let id := shr(224, w)
                if and(gt(k, 0), iszero(gt(id, prev))) {
                    mstore(0, _E_ASC)
                    mstore(4, k)
                    mstore(0x24, id)
                    revert(0, 0x44)
                }
                prev := id
                if or(or(and(w, _BID_LOW), gt(and(shr(216, w), 0xff), 1)), iszero(and(shr(152, w), _U64))) {
                    mstore(0, _E_BAD)
                    mstore(4, k)
                    mstore(0x24, id)
                    revert(0, 0x44)
                }
                mstore(0, id)
                mstore(0x20, _members.slot)
                let m := sload(keccak256(0, 0x40))
                if iszero(and(m, 0xffffffffffffffffffffffffffffffffffffffff)) {
                    mstore(0, _E_UNKNOWN)
                    mstore(4, id)
                    revert(0, 0x24)
                }
                if iszero(and(shr(184, m), 0xff)) {
                    mstore(0, _E_SUSP)
                    mstore(4, id)
                    revert(0, 0x24)
                }
                if iszero(eq(and(shr(72, w), 0xffff), and(shr(160, m), 0xffff))) {
                    mstore(0, _E_BUS)
                    mstore(4, id)
                    mstore(0x24, and(shr(160, m), 0xffff))
                    mstore(0x44, and(shr(72, w), 0xffff))
                    revert(0, 0x64)
                }
                mstore(add(p, 0x60), id)
                mstore(add(p, 0x80), and(shr(216, w), 0xff))
                mstore(add(p, 0xa0), and(shr(152, w), _U64))
                mstore(add(p, 0xc0), and(shr(88, w), _U64))
                mstore(add(p, 0xe0), and(shr(72, w), 0xffff))
                mstore(add(p, 0x122), keccak256(p, 0x100))
                mstore(add(p, 0x180), keccak256(add(p, 0x100), 0x42))
                w := calldataload(add(add(sigs.offset, shl(6, k)), 0x20))
                mstore(add(p, 0x1a0), add(27, shr(255, w)))
                mstore(add(p, 0x1c0), calldataload(add(sigs.offset, shl(6, k))))
                mstore(add(p, 0x1e0), and(w, _S_MASK))
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

    /// @dev keccak256 of the words concatenated (= keccak256(abi.encodePacked(words))).
    function _hashWords(uint256[] calldata words) private pure returns (bytes32 h) {
        assembly ("memory-safe") {
            let p := mload(0x40)
            let size := shl(5, words.length)
            calldatacopy(p, words.offset, size)
            h := keccak256(p, size)
        }
    }

    /// @dev Emit an event (topic0, indexed uint topic1) whose data is abi.encode(a, b, words),
    ///      copying the words from calldata in one step.
    function _emitWords(bytes32 topic0, uint256 topic1, uint256 a, bytes32 b, uint256[] calldata words) private {
        assembly ("memory-safe") {
            let p := mload(0x40)
            mstore(p, a)
            mstore(add(p, 0x20), b)
            mstore(add(p, 0x40), 0x60)
            mstore(add(p, 0x60), words.length)
            let size := shl(5, words.length)
            calldatacopy(add(p, 0x80), words.offset, size)
            log2(p, add(0x80, size), topic0, topic1)
        }
    }

    /// @dev Write the constant parts of an EIP-712 digest computation into scratch memory at
    ///      the free memory pointer p: typehash at p, interval at p+0x20, `second` at p+0x40,
    ///      and 0x1901 || domain separator at p+`prefixAt`.
    function _prepareDigest(bytes32 typehash, uint256 interval, uint256 second, uint256 prefixAt) private view {
        bytes32 domain = _domainSeparator;
        assembly ("memory-safe") {
            let p := mload(0x40)
            mstore(p, typehash)
            mstore(add(p, 0x20), interval)
            mstore(add(p, 0x40), second)
            mstore(add(p, prefixAt), shl(240, 0x1901))
            mstore(add(add(p, prefixAt), 0x02), domain)
        }
    }

    // --------------------------------------------------------------- clearing
    /// @notice Clear `interval` from its last recorded round (operator only).
    /// @dev The operator resubmits the round's bid words (checked against the stored hash) and
    ///      the clearing order: `order[0:nBuys]` indexes the buy bids by price descending, then
    ///      member ascending; `order[nBuys:]` the sell bids by price ascending, then member
    ///      ascending. The contract checks the order in O(n) and matches with two cursors.
    ///      Clearing may close bidding early (fewer than `rounds` rounds recorded).
    function clear(uint32 interval, uint256[] calldata bids, uint256[] calldata order, uint256 nBuys)
        external
        onlyOperator
    {
        if (clearingRule != RULE_UNIFORM) revert WrongClearingRule(clearingRule, RULE_UNIFORM);
        IntervalState storage st = _intervals[interval];
        Phase phase = st.phase;
        if (phase != Phase.Clearing && phase != Phase.Bidding) revert WrongPhase(interval, Phase.Clearing, phase);
        // No round recorded: the book is empty (keccak256 of no words).
        bytes32 recorded = st.roundsRecorded == 0 ? keccak256("") : st.bidsHash;
        bytes32 h = _hashWords(bids);
        if (h != recorded) revert HashMismatch(interval, recorded, h);
        (uint256[] memory trades, uint64 price) = _clearUniform(_sortedBook(bids, order, nBuys), nBuys);
        bytes32 th = keccak256(abi.encodePacked(trades));
        st.tradesHash = th;
        st.tradeCount = uint32(trades.length / 2);
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
    function configureClearing(uint16 nBuses_, uint64 kappaNum_, uint64 kappaDen_, bytes calldata table)
        external
        onlyOperator
    {
        if (clearingRule == RULE_UNIFORM) revert UnsupportedClearingRule(RULE_UNIFORM);
        if (kappaDen != 0) revert ClearingAlreadyConfigured();
        if (nBuses_ == 0 || kappaDen_ == 0 || kappaNum_ > kappaDen_) {
            revert FeeClearing.BadFeeConfig(nBuses_, kappaNum_, kappaDen_);
        }
        uint256 size = table.length;
        if (size != 4 * uint256(nBuses_) * nBuses_) revert FeeClearing.FeeTableLength(4 * uint256(nBuses_) * nBuses_, size);
        if (size > MAX_FEE_TABLE_BYTES) revert FeeTableTooLarge(size);
        address data = _deployData(table);
        bytes32 h = keccak256(table);
        feeTableData = data;
        feeBuses = nBuses_;
        kappaNum = kappaNum_;
        kappaDen = kappaDen_;
        feeTableHash = h;
        emit ClearingConfigured(clearingRule, nBuses_, kappaNum_, kappaDen_, h, data, table);
    }

    /// @notice The configured fee table (empty before configureClearing), read from its data contract.
    function feeTable() external view returns (bytes memory table) {
        address data = feeTableData;
        if (data == address(0)) return table;
        uint256 size = data.code.length - 1;
        table = new bytes(size);
        assembly ("memory-safe") {
            extcodecopy(data, add(table, 0x20), 1, size)
        }
    }

    /// @notice Clear `interval` with the greedy rule (operator only): the operator submits the
    ///         result of market/greedy.py and the contract re-executes it to the unit.
    /// @param bids The last round's bid words (checked against the stored hash).
    /// @param order Queue order: order[0:nBuys] indexes the buy bids by (bus asc, price desc,
    ///        member asc), order[nBuys:] the sell bids by (bus asc, price asc, member asc).
    /// @param trades Trade word pairs in clearing order (see FeeClearing.verifyGreedy).
    function clearGreedy(
        uint32 interval,
        uint256[] calldata bids,
        uint256[] calldata order,
        uint256 nBuys,
        uint256[] calldata trades
    ) external onlyOperator {
        (FeeClearingVerifier verifier, uint256 cfg, address data) = _feeClearingInput(interval, RULE_GREEDY, bids);
        uint256 welfare = verifier.verifyGreedy(cfg, data, bids, order, nBuys, trades);
        _recordCleared(interval, RULE_GREEDY, trades, welfare);
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
        _recordCleared(interval, RULE_OPTIMAL, trades, welfare);
    }

    /// @dev Checks shared by the fee rules (rule, configuration, phase, bid hash); returns the
    ///      verifier, the packed configuration (nBuses << 128 | kappaNum << 64 | kappaDen) and
    ///      the fee table's data contract.
    function _feeClearingInput(uint32 interval, uint8 rule, uint256[] calldata bids)
        private
        view
        returns (FeeClearingVerifier verifier, uint256 cfg, address data)
    {
        if (clearingRule != rule) revert WrongClearingRule(clearingRule, rule);
        data = feeTableData;
        if (data == address(0)) revert ClearingNotConfigured();
        IntervalState storage st = _intervals[interval];
        Phase phase = st.phase;
        if (phase != Phase.Clearing && phase != Phase.Bidding) revert WrongPhase(interval, Phase.Clearing, phase);
        bytes32 recorded = st.roundsRecorded == 0 ? keccak256("") : st.bidsHash;
        bytes32 h = _hashWords(bids);
        if (h != recorded) revert HashMismatch(interval, recorded, h);
        verifier = feeVerifier;
        cfg = (uint256(feeBuses) << 128) | (uint256(kappaNum) << 64) | kappaDen;
    }

    /// @dev Store a verified clearing (trades hash, count, next phase) and emit it.
    function _recordCleared(uint32 interval, uint8 rule, uint256[] calldata trades, uint256 welfare) private {
        IntervalState storage st = _intervals[interval];
        bytes32 th = _hashWords(trades);
        st.tradesHash = th;
        st.tradeCount = uint32(trades.length / 2);
        st.phase = Phase.Security;
        emit IntervalCleared(interval, rule, 0, th, trades);
        emit ClearingWelfare(interval, welfare);
    }

    /// @dev Deploy a data contract whose code is 0x00 || `table` (init code: copy and return).
    function _deployData(bytes calldata table) private returns (address data) {
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

    /// @dev Check that `order` is a permutation of the bid indexes in clearing priority and
    ///      return the bid words in that order.
    function _sortedBook(uint256[] calldata bids, uint256[] calldata order, uint256 nBuys)
        private
        pure
        returns (uint256[] memory book)
    {
        uint256 n = bids.length;
        if (order.length != n || nBuys > n) revert BadOrder(n);
        book = new uint256[](n);
        uint256[] memory seen = new uint256[]((n >> 8) + 1);
        uint256 prevPrice = 0;
        uint256 prevMember = 0;
        for (uint256 k = 0; k < n; ++k) {
            uint256 idx = order[k];
            if (idx >= n) revert BadOrder(k);
            uint256 bit = 1 << (idx & 0xff);
            uint256 slot = seen[idx >> 8];
            if (slot & bit != 0) revert BadOrder(k);
            seen[idx >> 8] = slot | bit;
            uint256 w = bids[idx];
            book[k] = w;
            uint256 price = (w >> 88) & _U64;
            uint256 id = w >> 224;
            bool isBuy = k < nBuys;
            if (((w >> 216) & 0xff == 0) != isBuy) revert BadOrder(k);
            if (k != 0 && k != nBuys) {
                bool ok = isBuy
                    ? (price < prevPrice || (price == prevPrice && id > prevMember))
                    : (price > prevPrice || (price == prevPrice && id > prevMember));
                if (!ok) revert BadOrder(k);
            }
            prevPrice = price;
            prevMember = id;
        }
    }

    /// @dev Uniform-price rule of market/double_auction.py on a checked book
    ///      (book[0:nBuys] buys, book[nBuys:] sells, each in priority order).
    function _clearUniform(uint256[] memory book, uint256 nBuys)
        private
        pure
        returns (uint256[] memory trades, uint64 price)
    {
        uint256 n = book.length;
        trades = new uint256[](n == 0 ? 0 : 2 * (n - 1));
        uint256 count = 0;
        uint256 i = 0;
        uint256 j = nBuys;
        uint256 remBuy = i < nBuys ? (book[i] >> 152) & _U64 : 0;
        uint256 remSell = j < n ? (book[j] >> 152) & _U64 : 0;
        uint256 lastPrices = 0; // lastBid << 64 | lastAsk
        while (i < nBuys && j < n) {
            uint256 buyW = book[i];
            uint256 sellW = book[j];
            if (((buyW >> 88) & _U64) < ((sellW >> 88) & _U64)) break;
            uint256 e = remBuy < remSell ? remBuy : remSell;
            trades[2 * count] = ((buyW >> 224) << 224) | ((sellW >> 224) << 192) | (e << 128)
                | (((buyW >> 72) & 0xffff) << 112) | (((sellW >> 72) & 0xffff) << 96);
            ++count;
            lastPrices = (((buyW >> 88) & _U64) << 64) | ((sellW >> 88) & _U64);
            remBuy -= e;
            remSell -= e;
            if (remBuy == 0 && ++i < nBuys) remBuy = (book[i] >> 152) & _U64;
            if (remSell == 0 && ++j < n) remSell = (book[j] >> 152) & _U64;
        }
        if (count > 0) price = uint64(((lastPrices >> 64) + (lastPrices & _U64)) / 2);
        uint256 w1 = (uint256(price) << 192) | (uint256(price) << 128);
        for (uint256 k = 0; k < count; ++k) {
            trades[2 * k + 1] = w1;
        }
        assembly ("memory-safe") {
            mstore(trades, mul(count, 2))
        }
    }

    // --------------------------------------------------------------- security
    /// @notice Record the security verdict of `interval` and its curtailments (operator only).
    /// @param trades The cleared trade words (checked against the stored hash).
    /// @param curtailments Curtailment words; each cuts a trade's energy (never raises it) and
    ///        names the violated element (kind 0 bus voltage, 1 line, 2 transformer; index).
    function recordSecurity(
        uint32 interval,
        uint8 verdict,
        uint256[] calldata trades,
        uint256[] calldata curtailments
    ) external onlyOperator {
        IntervalState storage st = _intervals[interval];
        if (st.phase != Phase.Security) revert WrongPhase(interval, Phase.Security, st.phase);
        bytes32 h = _hashWords(trades);
        if (h != st.tradesHash) revert HashMismatch(interval, st.tradesHash, h);
        uint256 nc = curtailments.length;
        if (verdict > VERDICT_CURTAILED || (verdict == VERDICT_SECURE) != (nc == 0)) revert BadVerdict(verdict, nc);
        bytes32 dh = h;
        if (nc > 0) {
            uint256[] memory cut = trades;
            uint256 nTrades = trades.length / 2;
            for (uint256 k = 0; k < nc; ++k) {
                uint256 c = curtailments[k];
                uint256 t = c >> 224;
                uint256 cutWh = (c >> 160) & _U64;
                if (t >= nTrades || c & _CURT_LOW != 0 || (c >> 152) & 0xff > 2) revert BadCurtailment(k);
                uint256 w0 = cut[2 * t];
                uint256 e = (w0 >> 128) & _U64;
                if (cutWh > e) revert BadCurtailment(k);
                cut[2 * t] = (w0 & ~(_U64 << 128)) | ((e - cutWh) << 128);
            }
            dh = keccak256(abi.encodePacked(cut));
        }
        st.verdict = verdict;
        st.deliveryHash = dh;
        st.phase = Phase.Delivery;
        emit SecurityRecorded(interval, verdict, dh, curtailments);
    }

    // --------------------------------------------------------------- delivery
    /// @notice Record the signed meter readings of `interval` (aggregator = operator), once.
    /// @param readings Reading words, member ids strictly ascending (one reading per member).
    /// @param sigs Compact signatures by each member's meter account.
    function recordReadings(uint32 interval, uint256[] calldata readings, bytes32[] calldata sigs)
        external
        onlyOperator
    {
        IntervalState storage st = _intervals[interval];
        if (st.phase != Phase.Delivery) revert WrongPhase(interval, Phase.Delivery, st.phase);
        if (st.readingsRecorded) revert ReadingsAlreadyRecorded(interval);
        uint256 n = readings.length;
        if (sigs.length != 2 * n) revert LengthMismatch(2 * n, sigs.length);
        _checkReadings(interval, readings, sigs);
        bytes32 h = _hashWords(readings);
        st.readingsHash = h;
        st.readingsRecorded = true;
        emit ReadingsRecorded(interval, h, readings);
    }

    /// @dev Check reading words (ids strictly ascending: a repeated id reverts DuplicateReading,
    ///      a smaller one NotAscending; well formed; registered member) and the EIP-712
    ///      signature of each by the member's own meter account (else NotMemberMeter), in one pass.
    function _checkReadings(uint32 interval, uint256[] calldata readings, bytes32[] calldata sigs) private view {
        // Scratch: p = (typehash, interval, member, netWh), p+0x80 = 0x1901 || domain ||
        // structHash, p+0x100 = ecrecover input.
        _prepareDigest(READING_TYPEHASH, interval, 0, 0x80);
        assembly ("memory-safe") {
            let p := mload(0x40)
            let prev := 0
            for { let k := 0 } lt(k, readings.length) { k := add(k, 1) } {
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
                if and(w, _READING_LOW) {
                    mstore(0, _E_BAD)
                    mstore(4, k)
                    mstore(0x24, id)
                    revert(0, 0x44)
                }
                mstore(0, id)
                mstore(0x20, _members.slot)
                let meter := and(sload(add(keccak256(0, 0x40), 1)), 0xffffffffffffffffffffffffffffffffffffffff)
                if iszero(meter) {
                    mstore(0, _E_UNKNOWN)
                    mstore(4, id)
                    revert(0, 0x24)
                }
                mstore(add(p, 0x40), id)
                mstore(add(p, 0x60), signextend(7, and(shr(160, w), _U64)))
                mstore(add(p, 0xa2), keccak256(p, 0x80))
                mstore(add(p, 0x100), keccak256(add(p, 0x80), 0x42))
                w := calldataload(add(add(sigs.offset, shl(6, k)), 0x20))
                mstore(add(p, 0x120), add(27, shr(255, w)))
                mstore(add(p, 0x140), calldataload(add(sigs.offset, shl(6, k))))
                mstore(add(p, 0x160), and(w, _S_MASK))
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

    // ------------------------------------------------------------- settlement
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

    /// @notice Settle `interval` (operator only) exactly like market/settlement.py.
    /// @param trades The curtailed trade words (checked against the delivery hash).
    /// @param readings The reading words (checked against the readings hash).
    /// @param parties For trade k: buyer's reading index << 128 | seller's reading index
    ///        (a lookup hint, checked: a wrong or impossible hint reverts with MissingReading).
    /// @dev Rules (docs/settlement.md): P2P money on delivered energy at the trade prices
    ///      (fee = paid - received to OPERATOR); each trader's deviation d = metered - scheduled
    ///      is split over its trades by cumulative floors; seller short: the buyer is supplied
    ///      by the GRID (in band at its price, beyond at retail) and the seller pays the buyer a
    ///      penalty so the buyer pays its contract; seller surplus to the GRID at feed-in;
    ///      buyer over at retail; buyer under take-or-pay, untaken energy resold at feed-in;
    ///      in-band slices at the trade price; non-traders and residuals at the tariffs.
    ///      Each amount is floored once and booked twice, so money is conserved exactly.
    function settle(
        uint32 interval,
        uint256[] calldata trades,
        uint256[] calldata readings,
        uint256[] calldata parties
    ) external onlyOperator {
        IntervalState storage st = _intervals[interval];
        if (st.phase != Phase.Delivery || !st.readingsRecorded) revert WrongPhase(interval, Phase.Delivery, st.phase);
        bytes32 h = _hashWords(trades);
        if (h != st.deliveryHash) revert HashMismatch(interval, st.deliveryHash, h);
        h = _hashWords(readings);
        if (h != st.readingsHash) revert HashMismatch(interval, st.readingsHash, h);
        st.phase = Phase.Settled;
        Book[] memory books = _schedules(trades, readings, parties);
        int256 grid = _memberDeviations(readings, books);
        (int256 tradeGrid, int256 fees) = _settleTrades(trades, parties, books);
        grid += tradeGrid;
        (uint32[] memory ids, int256[] memory deltas) = _book(interval, readings, books);
        operatorBalanceMicro += fees;
        gridBalanceMicro += grid;
        settledIntervals += 1;
        if (interval > lastSettledInterval || settledIntervals == 1) lastSettledInterval = interval;
        emit IntervalSettled(interval, grid, fees, ids, deltas);
    }

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
    function _memberDeviations(uint256[] calldata readings, Book[] memory books) private view returns (int256 grid) {
        uint256 retail = retailPerKwhMicro;
        uint256 feedIn = feedInPerKwhMicro;
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
                        residual = deviation + int256(x);
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
                    residual = deviation - int256(x);
                }
            }
            if (residual > 0) {
                int256 amount = int256((uint256(residual) * feedIn) / 1000);
                bk.money += amount;
                grid -= amount;
            } else if (residual < 0) {
                int256 amount = int256((uint256(-residual) * retail) / 1000);
                bk.money -= amount;
                grid += amount;
            }
        }
    }

    /// @dev Pass 2 over the trades in order; returns the GRID's and OPERATOR's changes.
    function _settleTrades(uint256[] calldata trades, uint256[] calldata parties, Book[] memory books)
        private
        view
        returns (int256 grid, int256 fees)
    {
        for (uint256 k = 0; k < parties.length; ++k) {
            uint256 hint = parties[k];
            (int256 g, int256 f) = _settleTrade(books[hint >> 128], books[uint128(hint)], trades[2 * k], trades[2 * k + 1]);
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
    function _settleTrade(Book memory buyer, Book memory seller, uint256 w0, uint256 w1)
        private
        view
        returns (int256 grid, int256 fee)
    {
        uint256 e = (w0 >> 128) & _U64;
        uint256 sSlice = _slice(seller, e);
        uint256 bSlice = _slice(buyer, e);
        uint256 delivered = seller.mode == _MODE_SHORT ? e - sSlice : e;
        uint256 paid = (delivered * (w1 >> 192)) / 1000;
        uint256 received = (delivered * ((w1 >> 128) & _U64)) / 1000;
        buyer.money -= int256(paid);
        seller.money += int256(received);
        fee = int256(paid) - int256(received);
        if (sSlice > 0) grid = _sellerSlice(buyer, seller, e, w1, sSlice, paid);
        if (bSlice > 0) grid += _buyerSlice(buyer, w1 >> 192, (e * toleranceBp) / 10_000, bSlice);
    }

    /// @dev A seller's short or surplus slice on one trade of `e` Wh; returns the GRID's change.
    function _sellerSlice(Book memory buyer, Book memory seller, uint256 e, uint256 w1, uint256 slice, uint256 paid)
        private
        view
        returns (int256 grid)
    {
        uint256 band = (e * toleranceBp) / 10_000;
        uint256 inBand = slice < band ? slice : band;
        uint256 outBand = slice - inBand;
        if (seller.mode == _MODE_SHORT) {
            uint256 pb = w1 >> 192;
            uint256 covered = ((e - slice + inBand) * pb) / 1000;
            uint256 atRetail = (outBand * retailPerKwhMicro) / 1000;
            uint256 contract_ = (e * pb) / 1000;
            uint256 penalty = atRetail + covered > contract_ ? atRetail + covered - contract_ : 0;
            grid = int256(covered - paid + atRetail);
            buyer.money += int256(penalty) - grid;
            seller.money -= int256(penalty);
        } else {
            grid = -int256((inBand * ((w1 >> 128) & _U64)) / 1000 + (outBand * feedInPerKwhMicro) / 1000);
            seller.money -= grid;
        }
    }

    /// @dev A buyer's over- or under-consumption slice on one trade; returns the GRID's change.
    function _buyerSlice(Book memory buyer, uint256 pb, uint256 band, uint256 slice)
        private
        view
        returns (int256 grid)
    {
        uint256 inBand = slice < band ? slice : band;
        uint256 outBand = slice - inBand;
        if (buyer.mode == _MODE_OVER) {
            grid = int256((inBand * pb) / 1000 + (outBand * retailPerKwhMicro) / 1000);
        } else {
            grid = -int256((inBand * pb) / 1000 + (outBand * feedInPerKwhMicro) / 1000);
        }
        buyer.money -= grid;
    }

    /// @dev Book every member's change into its escrow balance (debt recorded when negative).
    function _book(uint32 interval, uint256[] calldata readings, Book[] memory books)
        private
        returns (uint32[] memory ids, int256[] memory deltas)
    {
        uint256 n = readings.length;
        ids = new uint32[](n);
        deltas = new int256[](n);
        int256 memberSum = 0;
        for (uint256 k = 0; k < n; ++k) {
            uint32 id = uint32(readings[k] >> 224);
            int256 m = books[k].money;
            ids[k] = id;
            deltas[k] = m;
            if (m != 0) {
                int256 balance = balanceMicro[id] + m;
                balanceMicro[id] = balance;
                if (balance < 0) emit DebtRecorded(id, interval, balance);
            }
            memberSum += m;
        }
        memberBalanceSumMicro += memberSum;
    }

    // ----------------------------------------------------------------- escrow
    /// @notice Deposit `amountMicro` tokens (pulled from the caller) into member `id`'s escrow.
    function deposit(uint32 id, uint256 amountMicro) external {
        if (_members[id].account == address(0)) revert UnknownMember(id);
        _credit(id, amountMicro);
        _pull(amountMicro);
    }

    /// @notice Deposit into many members' escrow with one token transfer.
    function depositMany(uint32[] calldata ids, uint256[] calldata amountsMicro) external {
        uint256 n = ids.length;
        if (amountsMicro.length != n) revert LengthMismatch(n, amountsMicro.length);
        uint256 total = 0;
        for (uint256 k = 0; k < n; ++k) {
            if (_members[ids[k]].account == address(0)) revert UnknownMember(ids[k]);
            _credit(ids[k], amountsMicro[k]);
            total += amountsMicro[k];
        }
        _pull(total);
    }

    /// @notice Fund the GRID account (supplier of last resort) with `amountMicro` tokens.
    function depositGrid(uint256 amountMicro) external {
        gridBalanceMicro += int256(amountMicro);
        totalDepositedMicro += amountMicro;
        emit Deposited(GRID_ACCOUNT, msg.sender, amountMicro);
        _pull(amountMicro);
    }

    /// @notice Withdraw `amountMicro` from member `id`'s escrow to its account (pull payment).
    function withdraw(uint32 id, uint256 amountMicro) external {
        if (_members[id].account != msg.sender) revert NotMemberAccount(id, msg.sender);
        int256 balance = balanceMicro[id];
        if (balance < 0 || uint256(balance) < amountMicro) revert InsufficientBalance(balance, amountMicro);
        balanceMicro[id] = balance - int256(amountMicro);
        memberBalanceSumMicro -= int256(amountMicro);
        _pay(id, msg.sender, amountMicro);
    }

    /// @notice Withdraw from the GRID (`fromGrid` true) or OPERATOR account to `to` (operator only).
    function withdrawOperator(bool fromGrid, address to, uint256 amountMicro) external onlyOperator {
        if (to == address(0)) revert ZeroAddress();
        int256 balance = fromGrid ? gridBalanceMicro : operatorBalanceMicro;
        if (balance < 0 || uint256(balance) < amountMicro) revert InsufficientBalance(balance, amountMicro);
        if (fromGrid) gridBalanceMicro = balance - int256(amountMicro);
        else operatorBalanceMicro = balance - int256(amountMicro);
        _pay(fromGrid ? GRID_ACCOUNT : OPERATOR_ACCOUNT, to, amountMicro);
    }

    function _credit(uint32 id, uint256 amountMicro) private {
        balanceMicro[id] += int256(amountMicro);
        memberBalanceSumMicro += int256(amountMicro);
        totalDepositedMicro += amountMicro;
        emit Deposited(id, msg.sender, amountMicro);
    }

    function _pull(uint256 amountMicro) private {
        if (!token.transferFrom(msg.sender, address(this), amountMicro)) revert TokenTransferFailed();
    }

    function _pay(uint32 account, address to, uint256 amountMicro) private {
        totalWithdrawnMicro += amountMicro;
        emit Withdrawn(account, to, amountMicro);
        if (!token.transfer(to, amountMicro)) revert TokenTransferFailed();
    }
}
