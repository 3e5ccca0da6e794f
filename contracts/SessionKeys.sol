// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {VoucherRedemption} from "./VoucherRedemption.sol";
import {LaneTerms} from "./libraries/LaneTerms.sol";
import {LaneRecord} from "./libraries/LaneRecord.sol";
import {PaymentTypedData} from "./libraries/PaymentTypedData.sol";

/// @title SessionKeys
/// @notice Who may sign a channel's vouchers: the payer, or one session key with caps; and the guardian's brake.
/// @dev Every change of signer moves the channel to a new lane with the next epoch and retires the old lane for
///      `redeemWindow` seconds. A freeze moves the channel to the same signer with `validUntil` cut to
///      `now + redeemWindow`; only the payer lifts it. The guardian can move no money.
abstract contract SessionKeys is VoucherRedemption {
    using LaneTerms for uint256;
    using LaneRecord for uint256;

    /// @notice Names (or, with the zero address, removes) the caller's guardian for all its channels.
    /// @param guardian Account allowed to freeze the caller's channels; it can do nothing else.
    function setGuardian(address guardian) external {
        guardianOf[msg.sender] = guardian;
        emit GuardianSet(msg.sender, guardian);
    }

    /// @notice Payer lets `key` sign vouchers on the channel under `policy`; replaces any current signer.
    /// @dev The previous signer's vouchers stay redeemable for `redeemWindow` seconds. Lifts a freeze.
    function grantSessionKey(ChannelConfig calldata config, address key, SessionKeyPolicy calldata policy) external {
        if (msg.sender != config.payer) revert NotPayer(msg.sender, config.payer);
        _grant(config, channelIdOf(config), key, policy);
    }

    /// @notice Like `grantSessionKey`, authorised by the payer's EIP-712 signature and submitted by anyone.
    /// @dev The signature names the epoch the key will hold, so it can be used once and only in that order.
    ///      Smart-wallet payers sign through ERC-1271.
    /// @param deadline Last second at which the signed grant may be submitted.
    /// @param signature The payer's signature over `SessionKeyGrant`.
    function grantSessionKeyBySig(
        ChannelConfig calldata config,
        address key,
        SessionKeyPolicy calldata policy,
        uint256 deadline,
        bytes calldata signature
    ) external {
        if (block.timestamp > deadline) revert GrantExpired(deadline, block.timestamp);
        bytes32 channelId = channelIdOf(config);
        (,, uint256 terms,) = _current(config, channelId);
        bytes32 digest = _hashTypedDataV4(
            PaymentTypedData.hashGrant(
                channelId,
                key,
                policy.totalCap,
                policy.periodCap,
                policy.periodLength,
                policy.validUntil,
                policy.maxPerPayment,
                terms.epoch() + 1,
                deadline
            )
        );
        if (!SignatureChecker.isValidSignatureNow(config.payer, digest, signature)) {
            revert InvalidGrantSignature(config.payer);
        }
        _grant(config, channelId, key, policy);
    }

    /// @notice Payer atomically replaces the current session key with `newKey` (the old one gets its window).
    function rotateSessionKey(ChannelConfig calldata config, address newKey, SessionKeyPolicy calldata policy)
        external
    {
        if (msg.sender != config.payer) revert NotPayer(msg.sender, config.payer);
        bytes32 channelId = channelIdOf(config);
        (, address signer,,) = _current(config, channelId);
        if (signer == config.payer) revert NoSessionKey(channelId);
        _grant(config, channelId, newKey, policy);
    }

    /// @notice Payer takes signing back from the session key; its vouchers stay redeemable for `redeemWindow`.
    function revokeSessionKey(ChannelConfig calldata config) external {
        if (msg.sender != config.payer) revert NotPayer(msg.sender, config.payer);
        bytes32 channelId = channelIdOf(config);
        (bytes32 laneId, address signer, uint256 terms, uint256 record) = _current(config, channelId);
        if (signer == config.payer) revert NoSessionKey(channelId);
        _retire(channelId, laneId, signer, record);
        Control storage control = _control[channelId];
        (control.frozenValidUntil, control.maxPerPayment, control.keyBase) = (0, 0, 0);
        _moveLane(config, channelId, laneId, record.withoutPeriod(), config.payer, LaneTerms.forPayer(_nextEpoch(terms)));
    }

    /// @notice Guardian brakes the channel: whoever signs for it stops being honoured after `redeemWindow`
    ///         seconds, which is the payee's window to redeem what it accepted before the freeze.
    function freeze(ChannelConfig calldata config) external {
        address guardian = guardianOf[config.payer];
        if (msg.sender != guardian || guardian == address(0)) revert NotGuardian(msg.sender, guardian);
        bytes32 channelId = channelIdOf(config);
        (bytes32 laneId, address signer, uint256 terms, uint256 record) = _current(config, channelId);
        Control storage control = _control[channelId];
        if (control.frozenValidUntil != 0) revert AlreadyFrozen(channelId);
        uint256 validUntil = terms.validUntil();
        uint256 until = block.timestamp + redeemWindow;
        if (until > validUntil) until = validUntil;
        control.frozenValidUntil = uint40(validUntil);
        _moveLane(config, channelId, laneId, record, signer, terms.withValidUntil(until));
        emit ChannelFrozen(channelId, msg.sender, until);
    }

    /// @notice Payer lifts a freeze; the signer's authority returns with its original expiry.
    function unfreeze(ChannelConfig calldata config) external {
        if (msg.sender != config.payer) revert NotPayer(msg.sender, config.payer);
        bytes32 channelId = channelIdOf(config);
        (bytes32 laneId, address signer, uint256 terms, uint256 record) = _current(config, channelId);
        Control storage control = _control[channelId];
        uint256 validUntil = control.frozenValidUntil;
        if (validUntil == 0) revert NotFrozen(channelId);
        control.frozenValidUntil = 0;
        _moveLane(config, channelId, laneId, record, signer, terms.withValidUntil(validUntil));
        emit ChannelUnfrozen(channelId);
    }

    /// @dev Installs `key` as the channel's signer under `policy`, starting from the amount redeemed so far.
    function _grant(ChannelConfig calldata config, bytes32 channelId, address key, SessionKeyPolicy calldata policy)
        private
    {
        (bytes32 laneId, address signer, uint256 terms, uint256 record) = _current(config, channelId);
        Control storage control = _control[channelId];
        if (control.closesAt != 0) revert CloseAlreadyRequested(channelId, control.closesAt);
        if (key == address(0) || key == config.payer || key == config.payee) revert InvalidSessionKey(key);
        _validatePolicy(policy);
        uint256 base = record.claimed();
        uint256 ceiling = base + policy.totalCap;
        if (ceiling > LaneTerms.MAX_AMOUNT) ceiling = LaneTerms.MAX_AMOUNT;
        uint256 epoch = _nextEpoch(terms);
        uint256 newTerms =
            LaneTerms.pack(ceiling, policy.periodCap, policy.periodLength, policy.validUntil, epoch);
        _retire(channelId, laneId, signer, record);
        (control.frozenValidUntil, control.maxPerPayment, control.keyBase) =
            (0, uint96(policy.maxPerPayment), uint80(base));
        _moveLane(config, channelId, laneId, record.withoutPeriod(), key, newTerms);
        emit SessionKeyGranted(channelId, key, policy, base, epoch);
    }

    /// @dev Rejects policies the lane encoding cannot hold or that would authorise nothing.
    function _validatePolicy(SessionKeyPolicy calldata policy) private view {
        if (policy.totalCap == 0) revert InvalidPolicy("totalCap is zero");
        if (policy.totalCap > LaneTerms.MAX_AMOUNT) revert InvalidPolicy("totalCap above 2^80-1");
        if (policy.validUntil <= block.timestamp) revert InvalidPolicy("validUntil not in the future");
        if (policy.validUntil >= LaneTerms.MAX_TIME) revert InvalidPolicy("validUntil above 2^40-1");
        if (policy.maxPerPayment > type(uint96).max) revert InvalidPolicy("maxPerPayment above 2^96-1");
        if (policy.periodLength == 0) return;
        if (policy.periodLength > type(uint32).max) revert InvalidPolicy("periodLength above 2^32-1");
        if (policy.periodCap == 0) revert InvalidPolicy("periodCap is zero");
        if (policy.periodCap > LaneTerms.MAX_AMOUNT) revert InvalidPolicy("periodCap above 2^80-1");
        // Period indexes are stored modulo 2^16; a lane must not outlive 65,535 periods.
        if ((policy.validUntil - block.timestamp) / policy.periodLength >= type(uint16).max) {
            revert InvalidPolicy("validity spans 65535 periods or more");
        }
    }

    /// @dev The epoch after `terms`'s, bounded by the 24-bit field.
    function _nextEpoch(uint256 terms) private pure returns (uint256 epoch) {
        epoch = terms.epoch() + 1;
        if (epoch > LaneTerms.MAX_EPOCH) revert InvalidPolicy("channel ran out of epochs");
    }
}
