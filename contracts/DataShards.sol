// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title DataShards
/// @notice Reads committed data (a fee table, a linearised network) that is stored as the code
///         of data contracts: either whole in one contract, or split over shard contracts that a
///         small directory contract lists with their code hashes (docs/ledger.md, "Data beyond
///         one contract"). Every data contract's code is 0x00 || bytes, so it never runs.
/// @dev Directory bytes: MAGIC (32) | total u256 (32) | per shard: address word (32, top 96
///      bits zero) | code hash (32). A shard's code hash is EXTCODEHASH of 0x00 || chunk; the
///      directory is what the responsible party signs, so its hashes bind every shard's bytes.
///      The chunks, in directory order, concatenate to `total` bytes. Data whose first word is
///      not MAGIC is read as it is (a keccak256 output cannot start a fee table or a network
///      header by accident).
library DataShards {
    /// @notice First word of a shard directory.
    bytes32 internal constant MAGIC = keccak256("gridledger.DataShards.v1");
    /// @notice Largest chunk one shard holds (EIP-170 code size limit - 1).
    uint256 internal constant MAX_SHARD_BYTES = 24_575;

    /// @notice The directory (`bytesLength` bytes, MAGIC first) lists no shard, is not
    ///         64 + 64 k bytes long, names an address with non-zero high bits, or states a
    ///         total more than its shards can hold.
    error BadShardDirectory(uint256 bytesLength);
    /// @notice Shard `index`'s code hash is not the one the directory lists.
    error ShardCodeHash(uint256 index, bytes32 expected, bytes32 got);
    /// @notice The shards' chunks add up to `got` bytes, not the directory's total.
    error ShardsLength(uint256 expected, uint256 got);

    /// @notice The bytes committed at data contract `data`: its code after the first byte, or,
    ///         for a directory, its shards' chunks concatenated (each checked by code hash).
    function load(address data) internal view returns (bytes memory out) {
        out = _code(data);
        uint256 size = out.length;
        if (size < 64 || _word(out, 0) != MAGIC) return out;
        bytes memory dir = out;
        uint256 n = (size - 64) >> 6; // entries of 64 bytes after the two header words
        uint256 total = uint256(_word(dir, 32));
        if (n == 0 || size & 63 != 0 || total > n * MAX_SHARD_BYTES) revert BadShardDirectory(size);
        out = new bytes(total);
        uint256 at = 0;
        for (uint256 i = 0; i < n; ++i) {
            uint256 word = uint256(_word(dir, 64 + 64 * i));
            if (word >> 160 != 0) revert BadShardDirectory(size);
            address shard = address(uint160(word));
            bytes32 want = _word(dir, 96 + 64 * i);
            bytes32 got = shard.codehash;
            uint256 codeSize = shard.code.length;
            if (got != want || codeSize == 0) revert ShardCodeHash(i, want, got);
            uint256 len = codeSize - 1;
            if (at + len > total) revert ShardsLength(total, at + len);
            assembly ("memory-safe") {
                extcodecopy(shard, add(add(out, 0x20), at), 1, len)
            }
            at += len;
        }
        if (at != total) revert ShardsLength(total, at);
    }

    /// @dev The code of `data` after its first byte (empty for an account without code).
    function _code(address data) private view returns (bytes memory out) {
        uint256 codeSize = data.code.length;
        uint256 size = codeSize == 0 ? 0 : codeSize - 1;
        out = new bytes(size);
        assembly ("memory-safe") {
            extcodecopy(data, add(out, 0x20), 1, size)
        }
    }

    /// @dev The 32-byte word of `b` at byte `offset` (caller keeps offset + 32 <= length).
    function _word(bytes memory b, uint256 offset) private pure returns (bytes32 w) {
        assembly ("memory-safe") {
            w := mload(add(add(b, 0x20), offset))
        }
    }
}
