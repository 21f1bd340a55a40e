// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {FeeClearing} from "./FeeClearing.sol";

/// @title FeeClearingHarness
/// @notice Test and benchmark front end of the FeeClearing library: stores the fee table's
///         hash and kappa once (operator), then checks submitted clearing results against them.
/// @dev The fee table travels in calldata (nBuses * nBuses big-endian uint32, micro-tokens per
///      kWh, entry (p, q) = fee from a seller at bus p to a buyer at bus q) and must hash to the
///      recorded keccak256. Bids are taken as given (Market checks them against its bid hash).
contract FeeClearingHarness {
    /// @notice The caller is not the operator.
    error NotFeeOperator(address caller);

    /// @notice The fee table hash and bus count were recorded.
    event FeeTableSet(uint16 nBuses, bytes32 feeTableHash);
    /// @notice kappa = kappaNum / kappaDen was recorded.
    event KappaSet(uint64 kappaNum, uint64 kappaDen);

    /// @notice The operator (deployer): sets the fee table hash and kappa.
    address public immutable operator;
    /// @notice Buses covered by the fee table (0 = not set).
    uint16 public nBuses;
    /// @notice Seller's share of the surplus, numerator.
    uint64 public kappaNum;
    /// @notice Seller's share of the surplus, denominator.
    uint64 public kappaDen;
    /// @notice keccak256 of the packed fee table.
    bytes32 public feeTableHash;

    constructor() {
        operator = msg.sender;
        kappaNum = 1;
        kappaDen = 2;
    }

    modifier onlyOperator() {
        if (msg.sender != operator) revert NotFeeOperator(msg.sender);
        _;
    }

    /// @notice Record the fee table: `nBuses_` buses, keccak256 `hash` of the packed table.
    function setFeeTable(uint16 nBuses_, bytes32 hash) external onlyOperator {
        if (nBuses_ == 0) revert FeeClearing.BadFeeConfig(0, kappaNum, kappaDen);
        nBuses = nBuses_;
        feeTableHash = hash;
        emit FeeTableSet(nBuses_, hash);
    }

    /// @notice Record kappa = num / den (den > 0, num <= den).
    function setKappa(uint64 num, uint64 den) external onlyOperator {
        if (den == 0 || num > den) revert FeeClearing.BadFeeConfig(nBuses, num, den);
        kappaNum = num;
        kappaDen = den;
        emit KappaSet(num, den);
    }

    /// @notice Check `trades` against the greedy rule; see FeeClearing.verifyGreedy.
    /// @return welfareWhMicro Sum of s * eWh over the trades.
    function verifyGreedy(
        bytes calldata feeTable,
        uint256[] calldata bids,
        uint256[] calldata order,
        uint256 nBuys,
        uint256[] calldata trades
    ) external view returns (uint256 welfareWhMicro) {
        (FeeClearing.Config memory cfg, bytes memory fees) = _load(feeTable);
        return FeeClearing.verifyGreedy(cfg, fees, bids, order, nBuys, trades);
    }

    /// @notice One page of verifyGreedy (`span` = from << 128 | upTo); see
    ///         FeeClearing.verifyGreedyPage.
    /// @return welfareWhMicro Sum of s * eWh over trades [0, upTo).
    function verifyGreedyPage(
        bytes calldata feeTable,
        uint256[] calldata bids,
        uint256[] calldata order,
        uint256 nBuys,
        uint256[] calldata trades,
        uint256 span
    ) external view returns (uint256 welfareWhMicro) {
        (FeeClearing.Config memory cfg, bytes memory fees) = _load(feeTable);
        return FeeClearing.verifyGreedyPage(cfg, fees, bids, order, nBuys, trades, span);
    }

    /// @notice Check `trades` for welfare optimality with duals; see FeeClearing.verifyOptimal.
    /// @return welfareWhMicro Sum of s * eWh over the trades.
    function verifyOptimal(
        bytes calldata feeTable,
        uint256[] calldata bids,
        uint256[] calldata trades,
        uint256[] calldata parties,
        uint256[] calldata duals
    ) external view returns (uint256 welfareWhMicro) {
        (FeeClearing.Config memory cfg, bytes memory fees) = _load(feeTable);
        return FeeClearing.verifyOptimal(cfg, fees, bids, trades, parties, duals);
    }

    /// @notice One page of verifyOptimal (`span` = from << 128 | upTo, the entries: the
    ///         trades, then the final check); see FeeClearing.verifyOptimalPage.
    /// @return welfareWhMicro With FeeClearing.DONE at the final check: the whole welfare.
    function verifyOptimalPage(
        bytes calldata feeTable,
        uint256[] calldata bids,
        uint256[] calldata trades,
        uint256[] calldata parties,
        uint256[] calldata duals,
        uint256 span
    ) external view returns (uint256 welfareWhMicro) {
        (FeeClearing.Config memory cfg, bytes memory fees) = _load(feeTable);
        return FeeClearing.verifyOptimalPage(cfg, fees, bids, trades, parties, duals, span);
    }

    /// @notice Fee from `sellerBus` to `buyerBus` read from a checked fee table.
    function feeOf(bytes calldata feeTable, uint256 sellerBus, uint256 buyerBus) external view returns (uint256) {
        (FeeClearing.Config memory cfg, bytes memory fees) = _load(feeTable);
        if (sellerBus >= cfg.nBuses || buyerBus >= cfg.nBuses) revert FeeClearing.BusOutOfRange(0, sellerBus);
        return FeeClearing.fee(fees, cfg.nBuses, sellerBus, buyerBus);
    }

    function _load(bytes calldata feeTable)
        private
        view
        returns (FeeClearing.Config memory cfg, bytes memory fees)
    {
        cfg = FeeClearing.Config(nBuses, kappaNum, kappaDen);
        fees = feeTable;
        FeeClearing.checkFeeTable(cfg, fees, feeTableHash);
    }
}
