// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title RedeemedRows
/// @notice The packed list a `VouchersRedeemed` event carries: for each voucher that moved money, the channel id
///         (32 bytes) followed by the channel's new redeemed amount (10 bytes, big-endian uint80) — 42 bytes a row,
///         against 64 for two ABI arrays, because log data costs 8 gas a byte on every batch row.
/// @dev Built in memory with one allocation per batch (`BatchRedemption` appends the rows); a row's amount is
///      written as a full word, so the buffer keeps 22 spare bytes past the last row. Amounts always fit: a
///      redeemed amount never exceeds a deposit, which is at most `LaneTerms.MAX_AMOUNT` (2^80 - 1).
library RedeemedRows {
    /// @notice Bytes per row: channel id (32) and redeemed amount (10).
    uint256 internal constant ROW_BYTES = 42;

    /// @notice An empty list with room for `capacity` rows, and two free words right before it, so an event with
    ///         the data `(uint256, bytes rows)` can be logged from where the rows are (see `logWith`).
    function allocate(uint256 capacity) internal pure returns (bytes memory rows) {
        bytes memory space = new bytes(0x40 + capacity * ROW_BYTES + 22); // zeroed
        assembly ("memory-safe") {
            rows := add(space, 0x40)
            mstore(rows, 0)
        }
    }

    /// @notice Logs an event whose data is `abi.encode(amount, rows)` and whose topics are (`signature`, `topic1`,
    ///         `topic2`), encoded in place: `rows` came from `allocate`, whose two spare words take `amount` and
    ///         the offset, and whose bytes past the last row are zero, as the encoding's padding must be.
    function logWith(bytes memory rows, bytes32 signature, bytes32 topic1, bytes32 topic2, uint256 amount)
        internal
    {
        assembly ("memory-safe") {
            let data := sub(rows, 0x40)
            mstore(data, amount)
            mstore(add(data, 0x20), 0x40)
            log3(data, add(0x60, and(add(mload(rows), 31), not(31))), signature, topic1, topic2)
        }
    }

    /// @notice A list of exactly one row.
    function single(bytes32 channelId, uint256 redeemed) internal pure returns (bytes memory) {
        return abi.encodePacked(channelId, uint80(redeemed));
    }
}
