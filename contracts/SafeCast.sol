// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title SafeCast
/// @notice Checked conversions between integer widths and signs. Every conversion that could
///         lose bits or flip a sign goes through one of these and reverts with `CastOverflow`
///         instead of wrapping silently.
library SafeCast {
    /// @notice `value` does not fit the target type (`bits` wide, `signed` or not).
    error CastOverflow(uint256 bits, bool signed);

    /// @notice uint256 -> int256.
    function toInt256(uint256 value) internal pure returns (int256) {
        if (value > uint256(type(int256).max)) revert CastOverflow(256, true);
        return int256(value);
    }

    /// @notice int256 (>= 0) -> uint256.
    function toUint256(int256 value) internal pure returns (uint256) {
        if (value < 0) revert CastOverflow(256, false);
        return uint256(value);
    }

    /// @notice int256 -> int128.
    function toInt128(int256 value) internal pure returns (int128) {
        if (value < type(int128).min || value > type(int128).max) revert CastOverflow(128, true);
        return int128(value);
    }

    /// @notice uint256 -> uint96.
    function toUint96(uint256 value) internal pure returns (uint96) {
        if (value > type(uint96).max) revert CastOverflow(96, false);
        return uint96(value);
    }

    /// @notice uint256 -> uint32.
    function toUint32(uint256 value) internal pure returns (uint32) {
        if (value > type(uint32).max) revert CastOverflow(32, false);
        return uint32(value);
    }

    /// @notice uint256 -> uint64.
    function toUint64(uint256 value) internal pure returns (uint64) {
        if (value > type(uint64).max) revert CastOverflow(64, false);
        return uint64(value);
    }
}
