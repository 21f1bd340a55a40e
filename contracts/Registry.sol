// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {SafeCast} from "./SafeCast.sol";

/// @title Registry
/// @notice The parties of one market and its members.
///         - operator: the market operator; registers members, relays signed batches, clears,
///           settles, and withdraws the OPERATOR (network fee) account.
///         - dso: the distribution system operator; its key alone signs the network commitment
///           and every security verdict (the operator relays them, the contract checks them).
///         - grid: the GRID account (supplier of last resort); only it withdraws GRID credit.
///         - members: id, bus, role, connection limit, bidding account and meter account.
abstract contract Registry {
    /// @notice Member record. `account` signs bids and withdraws; `meter` signs meter readings;
    ///         `limitWh` is the connection limit per interval (largest bid energy and reading).
    struct Member {
        address account;
        uint16 bus;
        uint8 role;
        bool active;
        uint64 limitWh;
        address meter;
    }

    /// @notice Pseudo account id of the GRID (supplier of last resort) in Deposited/Withdrawn.
    uint32 public constant GRID_ACCOUNT = type(uint32).max;
    /// @notice Pseudo account id of the OPERATOR (network fees) in Deposited/Withdrawn.
    uint32 public constant OPERATOR_ACCOUNT = type(uint32).max - 1;

    /// @notice The caller is not the market operator.
    error NotOperator(address caller);
    /// @notice The caller is not the GRID account.
    error NotGrid(address caller);
    /// @notice An address argument is zero.
    error ZeroAddress();
    /// @notice Parallel arrays have different lengths.
    error LengthMismatch(uint256 expected, uint256 got);
    /// @notice A member id is already registered.
    error MemberAlreadyRegistered(uint32 member);
    /// @notice A member id is reserved for a pseudo account (GRID_ACCOUNT, OPERATOR_ACCOUNT).
    error ReservedMemberId(uint32 member);
    /// @notice A member's connection limit is zero.
    error ZeroLimit(uint32 member);
    /// @notice A member id is not registered.
    error UnknownMember(uint32 member);
    /// @notice A member is suspended.
    error MemberSuspended(uint32 member);

    /// @notice A member was registered.
    event MemberRegistered(
        uint32 indexed member, address account, address meter, uint16 bus, uint8 role, uint64 limitWh
    );
    /// @notice A member was suspended (its bids are rejected) or reinstated.
    event MemberStatusChanged(uint32 indexed member, bool active);

    /// @notice The market operator.
    address public immutable operator;
    /// @notice The DSO: signs the network commitment and the security verdicts.
    address public immutable dso;
    /// @notice The GRID account: the only one that withdraws GRID credit.
    address public immutable grid;
    /// @notice Number of registered members.
    uint32 public memberCount;
    /// @notice Number of active (not suspended) members.
    uint32 public activeMemberCount;
    mapping(uint32 => Member) internal _members;

    /// @param operator_ The market operator.
    /// @param dso_ The DSO's signing account.
    /// @param grid_ The GRID account.
    constructor(address operator_, address dso_, address grid_) {
        if (operator_ == address(0) || dso_ == address(0) || grid_ == address(0)) revert ZeroAddress();
        operator = operator_;
        dso = dso_;
        grid = grid_;
    }

    modifier onlyOperator() {
        if (msg.sender != operator) revert NotOperator(msg.sender);
        _;
    }

    /// @notice Register members in one transaction (operator only).
    /// @param ids Member ids (unique, never reused, below OPERATOR_ACCOUNT).
    /// @param accounts Bidding/withdrawal accounts.
    /// @param meters Meter accounts (sign readings).
    /// @param buses Bus index of each member (0 = substation).
    /// @param roles Role code of each member (0 consumer, 1 producer, 2 prosumer).
    /// @param limitsWh Connection limit of each member per interval, Wh (> 0).
    function registerMembers(
        uint32[] calldata ids,
        address[] calldata accounts,
        address[] calldata meters,
        uint16[] calldata buses,
        uint8[] calldata roles,
        uint64[] calldata limitsWh
    ) external onlyOperator {
        uint256 n = ids.length;
        if (accounts.length != n) revert LengthMismatch(n, accounts.length);
        if (meters.length != n) revert LengthMismatch(n, meters.length);
        if (buses.length != n) revert LengthMismatch(n, buses.length);
        if (roles.length != n) revert LengthMismatch(n, roles.length);
        if (limitsWh.length != n) revert LengthMismatch(n, limitsWh.length);
        for (uint256 k = 0; k < n; ++k) {
            uint32 id = ids[k];
            if (id >= OPERATOR_ACCOUNT) revert ReservedMemberId(id);
            if (_members[id].account != address(0)) revert MemberAlreadyRegistered(id);
            if (accounts[k] == address(0) || meters[k] == address(0)) revert ZeroAddress();
            if (limitsWh[k] == 0) revert ZeroLimit(id);
            _members[id] = Member(accounts[k], buses[k], roles[k], true, limitsWh[k], meters[k]);
            emit MemberRegistered(id, accounts[k], meters[k], buses[k], roles[k], limitsWh[k]);
        }
        memberCount += SafeCast.toUint32(n);
        activeMemberCount += SafeCast.toUint32(n);
    }

    /// @notice Suspend (`active` false) or reinstate a member (operator only).
    function setMemberActive(uint32 id, bool active) external onlyOperator {
        Member storage m = _members[id];
        if (m.account == address(0)) revert UnknownMember(id);
        if (m.active != active) {
            m.active = active;
            if (active) ++activeMemberCount;
            else --activeMemberCount;
        }
        emit MemberStatusChanged(id, active);
    }

    /// @notice The record of member `id` (reverts for unknown ids).
    function member(uint32 id) external view returns (Member memory) {
        Member memory m = _members[id];
        if (m.account == address(0)) revert UnknownMember(id);
        return m;
    }
}
