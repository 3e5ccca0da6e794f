// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title LaneRecord
/// @notice The one storage word that holds a channel's money state, at its current lane's location.
/// @dev Layout, low bits first:
///      [0..80)    claimed      total redeemed to the payee so far (base units)
///      [80..160)  deposit      total credited by deposits (base units)
///      [160..240) periodSpent  redeemed within the period `periodIndex` through the current lane
///      [240..256) periodIndex  `block.timestamp / periodLength`, modulo 2^16 (lanes live under 65,535 periods)
///      A live record always has `deposit > 0`, so a zero word means "no lane here".
library LaneRecord {
    uint256 private constant MASK80 = type(uint80).max;

    /// @notice Packs the fields into a record; every field must already fit its width.
    function pack(uint256 claimed, uint256 deposit, uint256 periodSpent, uint256 periodIndex)
        internal
        pure
        returns (uint256)
    {
        return claimed | (deposit << 80) | (periodSpent << 160) | (periodIndex << 240);
    }

    /// @notice Total redeemed so far.
    function claimed(uint256 record) internal pure returns (uint256) {
        return record & MASK80;
    }

    /// @notice Total deposited so far.
    function deposit(uint256 record) internal pure returns (uint256) {
        return (record >> 80) & MASK80;
    }

    /// @notice Redeemed within the recorded period.
    function periodSpent(uint256 record) internal pure returns (uint256) {
        return (record >> 160) & MASK80;
    }

    /// @notice The recorded period's index (mod 2^16).
    function periodIndex(uint256 record) internal pure returns (uint256) {
        return record >> 240;
    }

    /// @notice The same record with another deposit.
    function withDeposit(uint256 record, uint256 newDeposit) internal pure returns (uint256) {
        return (record & ~(MASK80 << 80)) | (newDeposit << 80);
    }

    /// @notice The same record with the period accounting reset.
    function withoutPeriod(uint256 record) internal pure returns (uint256) {
        return record & ((1 << 160) - 1);
    }
}
