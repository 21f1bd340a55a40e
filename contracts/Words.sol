// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

// Constants of the packed record words (layouts in Market.sol's header) and of the EIP-712
// types, shared by the Market and the EntryChecker library.

/// @dev Mask of a 64-bit field.
uint256 constant U64_MASK = 0xffffffffffffffff;
/// @dev Bits of a bid word below its bus field (must be zero).
uint256 constant BID_LOW_BITS = (1 << 72) - 1;
/// @dev Bits of a reading word below its netWh field (must be zero).
uint256 constant READING_LOW_BITS = (1 << 160) - 1;
/// @dev Mask of s in a compact signature's yParity << 255 | s.
uint256 constant SIG_S_MASK = (1 << 255) - 1;
/// @dev The "round" under which meters' direct readings are stored.
uint256 constant READING_ROUND = 256;
/// @dev EIP-712 type of a bid.
bytes32 constant BID_TYPE = keccak256(
    "Bid(uint32 interval,uint8 round,uint32 member,uint8 side,uint64 eWh,uint64 pricePerKwhMicro,uint16 bus)"
);
/// @dev EIP-712 type of a meter reading.
bytes32 constant READING_TYPE = keccak256("Reading(uint32 interval,uint32 member,int64 netWh)");
