// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title LaneTerms
/// @notice Packs what a lane's signer may authorise into one word, so that a redemption carries it in calldata and
///         the contract checks it for free: the terms are hashed into the lane's storage location.
/// @dev Layout, low bits first:
///      [0..80)    ceiling       most the channel's redeemed amount may reach through this lane (base units)
///      [80..160)  periodCap     most the redeemed amount may grow within one period (base units)
///      [160..192) periodLength  seconds per period; 0 = no period cap
///      [192..232) validUntil    first second at which the lane authorises nothing
///      [232..256) epoch         sequence number of the signer's grant on this channel (part of every voucher)
library LaneTerms {
    /// @notice Largest amount a channel can account for (2^80 - 1 base units).
    uint256 internal constant MAX_AMOUNT = type(uint80).max;
    /// @notice Largest timestamp a lane can carry; used as "never expires".
    uint256 internal constant MAX_TIME = type(uint40).max;
    /// @notice Largest epoch; a channel can change signer this many times.
    uint256 internal constant MAX_EPOCH = type(uint24).max;

    /// @notice Packs the fields into terms; every field must already fit its width.
    function pack(uint256 ceiling, uint256 periodCap, uint256 periodLength, uint256 validUntil, uint256 epoch)
        internal
        pure
        returns (uint256)
    {
        return ceiling | (periodCap << 80) | (periodLength << 160) | (validUntil << 192) | (epoch << 232);
    }

    /// @notice Terms of the payer's own lane: no cap but the deposit, no expiry.
    function forPayer(uint256 epoch) internal pure returns (uint256) {
        return pack(MAX_AMOUNT, 0, 0, MAX_TIME, epoch);
    }

    /// @notice Most the redeemed amount may reach through this lane.
    function ceiling(uint256 terms) internal pure returns (uint256) {
        return terms & MAX_AMOUNT;
    }

    /// @notice Most the redeemed amount may grow within one period.
    function periodCap(uint256 terms) internal pure returns (uint256) {
        return (terms >> 80) & MAX_AMOUNT;
    }

    /// @notice Seconds per period; 0 = no period cap.
    function periodLength(uint256 terms) internal pure returns (uint256) {
        return (terms >> 160) & type(uint32).max;
    }

    /// @notice First second at which the lane authorises nothing.
    function validUntil(uint256 terms) internal pure returns (uint256) {
        return (terms >> 192) & MAX_TIME;
    }

    /// @notice The grant's sequence number, signed into every voucher.
    function epoch(uint256 terms) internal pure returns (uint256) {
        return terms >> 232;
    }

    /// @notice The same terms with another `validUntil`.
    function withValidUntil(uint256 terms, uint256 newValidUntil) internal pure returns (uint256) {
        return (terms & ~(MAX_TIME << 192)) | (newValidUntil << 192);
    }
}
