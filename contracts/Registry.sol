// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title Registry
/// @notice The market operator (DSO) and the market members: id, bus, role, bidding account
///         and meter account. Only the operator registers, suspends and reinstates members.
abstract contract Registry {
    /// @notice Member record. `account` signs bids and withdraws; `meter` signs meter readings.
    struct Member {
        address account;
        uint16 bus;
        uint8 role;
        bool active;
        address meter;
    }

    /// @notice The caller is not the market operator.
    error NotOperator(address caller);
    /// @notice An address argument is zero.
    error ZeroAddress();
    /// @notice Parallel arrays have different lengths.
    error LengthMismatch(uint256 expected, uint256 got);
    /// @notice A member id is already registered.
    error MemberAlreadyRegistered(uint32 member);
    /// @notice A member id is not registered.
    error UnknownMember(uint32 member);
    /// @notice A member is suspended.
    error MemberSuspended(uint32 member);

    /// @notice A member was registered.
    event MemberRegistered(uint32 indexed member, address account, address meter, uint16 bus, uint8 role);
    /// @notice A member was suspended (its bids are rejected) or reinstated.
    event MemberStatusChanged(uint32 indexed member, bool active);

    /// @notice The market operator: registers members, aggregates signed batches, clears,
    ///         records security verdicts, holds the GRID and OPERATOR accounts.
    address public immutable operator;
    /// @notice Number of registered members.
    uint32 public memberCount;
    mapping(uint32 => Member) internal _members;

    /// @param operator_ The market operator.
    constructor(address operator_) {
        if (operator_ == address(0)) revert ZeroAddress();
        operator = operator_;
    }

    modifier onlyOperator() {
        if (msg.sender != operator) revert NotOperator(msg.sender);
        _;
    }

    /// @notice Register members in one transaction (operator only).
    /// @param ids Member ids (unique, never reused).
    /// @param accounts Bidding/withdrawal accounts.
    /// @param meters Meter accounts (sign readings).
    /// @param buses Bus index of each member (0 = substation).
    /// @param roles Role code of each member (0 consumer, 1 prosumer, 2 generator).
    function registerMembers(
        uint32[] calldata ids,
        address[] calldata accounts,
        address[] calldata meters,
        uint16[] calldata buses,
        uint8[] calldata roles
    ) external onlyOperator {
        uint256 n = ids.length;
        if (accounts.length != n) revert LengthMismatch(n, accounts.length);
        if (meters.length != n) revert LengthMismatch(n, meters.length);
        if (buses.length != n) revert LengthMismatch(n, buses.length);
        if (roles.length != n) revert LengthMismatch(n, roles.length);
        for (uint256 k = 0; k < n; ++k) {
            uint32 id = ids[k];
            if (_members[id].account != address(0)) revert MemberAlreadyRegistered(id);
            if (accounts[k] == address(0) || meters[k] == address(0)) revert ZeroAddress();
            _members[id] = Member(accounts[k], buses[k], roles[k], true, meters[k]);
            emit MemberRegistered(id, accounts[k], meters[k], buses[k], roles[k]);
        }
        memberCount += uint32(n);
    }

    /// @notice Suspend (`active` false) or reinstate a member (operator only).
    function setMemberActive(uint32 id, bool active) external onlyOperator {
        Member storage m = _members[id];
        if (m.account == address(0)) revert UnknownMember(id);
        m.active = active;
        emit MemberStatusChanged(id, active);
    }

    /// @notice The record of member `id` (reverts for unknown ids).
    function member(uint32 id) external view returns (Member memory) {
        Member memory m = _members[id];
        if (m.account == address(0)) revert UnknownMember(id);
        return m;
    }
}
