// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title PaymentTypedData
/// @notice Every EIP-712 type of the protocol, in one place (the voucher's struct hash is `LaneHashing`'s, as it
///         sits on the redemption hot path).
library PaymentTypedData {
    /// @notice A cumulative voucher: the signer authorises the channel's payee to have received
    ///         `cumulativeAmount` in total. `epoch` names the grant the signer holds, so that a key revoked and
    ///         granted again cannot revive its old vouchers.
    bytes32 internal constant VOUCHER_TYPEHASH =
        keccak256("Voucher(bytes32 channelId,uint256 epoch,uint256 cumulativeAmount)");

    /// @notice A payer's signed permission for a session key, submitted by anyone (no gas for the payer).
    bytes32 internal constant SESSION_KEY_GRANT_TYPEHASH = keccak256(
        "SessionKeyGrant(bytes32 channelId,address key,uint256 totalCap,uint256 periodCap,uint256 periodLength,"
        "uint256 validUntil,uint256 maxPerPayment,uint256 epoch,uint256 deadline)"
    );

    /// @notice Struct hash of a session-key grant.
    function hashGrant(
        bytes32 channelId,
        address key,
        uint256 totalCap,
        uint256 periodCap,
        uint256 periodLength,
        uint256 validUntil,
        uint256 maxPerPayment,
        uint256 epoch,
        uint256 deadline
    ) internal pure returns (bytes32) {
        return keccak256(
            abi.encode(
                SESSION_KEY_GRANT_TYPEHASH,
                channelId,
                key,
                totalCap,
                periodCap,
                periodLength,
                validUntil,
                maxPerPayment,
                epoch,
                deadline
            )
        );
    }
}
