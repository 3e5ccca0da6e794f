// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {MessageHashUtils} from "@openzeppelin/contracts/utils/cryptography/MessageHashUtils.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {ChannelLanes} from "./ChannelLanes.sol";
import {LaneTerms} from "./libraries/LaneTerms.sol";
import {LaneRecord} from "./libraries/LaneRecord.sol";
import {LaneHashing} from "./libraries/LaneHashing.sol";

/// @title VoucherRedemption
/// @notice Checks a cumulative voucher against its lane and moves the channel's redeemed amount forward.
/// @dev One rule set serves the strict single-voucher path (reverts with the exact error) and the batch path
///      (skips the row and reports the error selector), so a race with a freeze or a close never sinks a batch.
abstract contract VoucherRedemption is ChannelLanes, EIP712 {
    using LaneTerms for uint256;
    using LaneRecord for uint256;

    /// @notice EIP-712 digest a signer signs for a voucher on this chain and contract.
    function voucherDigest(bytes32 channelId, uint256 epoch, uint256 cumulativeAmount) public view returns (bytes32) {
        return _hashTypedDataV4(LaneHashing.voucherStructHash(channelId, epoch, cumulativeAmount));
    }

    /// @dev Recovers a voucher's signer from its EIP-2098 compact signature and applies it. `domainSeparator` is
    ///      passed in so a batch computes it once. High-s and zero-address recoveries fail as InvalidSignature.
    function _redeemCompact(
        bytes32 domainSeparator,
        address payee,
        address token,
        Redemption calldata item,
        bool strict
    ) internal returns (uint256, bytes4) {
        bytes32 channelId = item.channelId;
        uint256 cumulative = item.cumulativeAmount;
        uint256 terms = item.terms;
        bytes32 digest = MessageHashUtils.toTypedDataHash(
            domainSeparator, LaneHashing.voucherStructHash(channelId, terms.epoch(), cumulative)
        );
        (address signer, ECDSA.RecoverError error,) = ECDSA.tryRecover(digest, item.r, item.vs);
        if (error != ECDSA.RecoverError.NoError) {
            if (strict) revert InvalidSignature();
            return (0, InvalidSignature.selector);
        }
        return _applyVoucher(payee, token, signer, channelId, cumulative, terms, strict);
    }

    /// @dev Applies a voucher signed by `signer` (already authenticated) on the lane named by `terms`.
    ///      Returns the amount moved to the payee; with `strict` every failure reverts, otherwise it is reported
    ///      as an error selector and nothing changes.
    function _applyVoucher(
        address payee,
        address token,
        address signer,
        bytes32 channelId,
        uint256 cumulative,
        uint256 terms,
        bool strict
    ) internal returns (uint256, bytes4) {
        bytes32 laneId = laneIdOf(channelId, payee, token, signer, terms);
        uint256 record = lanes[laneId];
        if (record == 0) return _applyRetiredVoucher(laneId, channelId, cumulative, terms, strict);
        // Fast path: the signer holds the channel now. One cold storage word, read and written once.
        (uint256 delta, uint256 periodSpent, uint256 periodIndex, bytes4 err) =
            _checkVoucher(terms, record, record.periodSpent(), record.periodIndex(), cumulative, strict);
        if (delta != 0) lanes[laneId] = LaneRecord.pack(cumulative, record.deposit(), periodSpent, periodIndex);
        return (delta, err);
    }

    /// @dev Slow path: a signer that held the channel until recently (rotation, revoke) redeems within its window.
    function _applyRetiredVoucher(bytes32 laneId, bytes32 channelId, uint256 cumulative, uint256 terms, bool strict)
        private
        returns (uint256, bytes4)
    {
        uint256 tombstone = retiredLanes[laneId];
        if (tombstone == 0) {
            if (_storedLane(channelId) == CLOSED) {
                if (strict) revert ChannelIsClosed(channelId);
                return (0, ChannelIsClosed.selector);
            }
            if (strict) revert UnknownLane(laneId);
            return (0, UnknownLane.selector);
        }
        uint256 until = tombstone & LaneTerms.MAX_TIME;
        if (block.timestamp >= until) {
            if (strict) revert LaneExpired(until, block.timestamp);
            return (0, LaneExpired.selector);
        }
        bytes32 currentLane = _storedLane(channelId);
        uint256 record = lanes[currentLane];
        if (record == 0) {
            if (strict) revert ChannelIsClosed(channelId);
            return (0, ChannelIsClosed.selector);
        }
        (uint256 delta, uint256 periodSpent, uint256 periodIndex, bytes4 err) = _checkVoucher(
            terms, record, (tombstone >> 40) & LaneTerms.MAX_AMOUNT, tombstone >> 120, cumulative, strict
        );
        if (delta == 0) return (0, err);
        lanes[currentLane] =
            LaneRecord.pack(cumulative, record.deposit(), record.periodSpent(), record.periodIndex());
        retiredLanes[laneId] = until | (periodSpent << 40) | (periodIndex << 120);
        return (delta, bytes4(0));
    }

    /// @dev The cap rules, shared by both paths: validity, only-grows, deposit, total cap, per-period cap.
    ///      Returns the amount to move and the period accounting after it (delta 0: nothing to do).
    function _checkVoucher(
        uint256 terms,
        uint256 record,
        uint256 periodSpent,
        uint256 periodIndex,
        uint256 cumulative,
        bool strict
    ) private view returns (uint256 delta, uint256, uint256, bytes4) {
        uint256 limit = terms.validUntil();
        if (block.timestamp >= limit) {
            if (strict) revert LaneExpired(limit, block.timestamp);
            return (0, 0, 0, LaneExpired.selector);
        }
        // An older or equal voucher moves nothing and is not an error: redeeming twice is harmless.
        uint256 claimed = record.claimed();
        if (cumulative <= claimed) return (0, 0, 0, bytes4(0));
        limit = record.deposit();
        if (cumulative > limit) {
            if (strict) revert VoucherExceedsDeposit(cumulative, limit);
            return (0, 0, 0, VoucherExceedsDeposit.selector);
        }
        limit = terms.ceiling();
        if (cumulative > limit) {
            if (strict) revert VoucherExceedsCap(cumulative, limit);
            return (0, 0, 0, VoucherExceedsCap.selector);
        }
        unchecked {
            delta = cumulative - claimed;
        }
        limit = terms.periodLength();
        if (limit == 0) return (delta, 0, 0, bytes4(0));
        uint256 index = (block.timestamp / limit) & type(uint16).max;
        periodSpent = (index == periodIndex ? periodSpent : 0) + delta;
        limit = terms.periodCap();
        if (periodSpent > limit) {
            if (strict) revert PeriodCapExceeded(periodSpent, limit);
            return (0, 0, 0, PeriodCapExceeded.selector);
        }
        return (delta, periodSpent, index, bytes4(0));
    }

    /// @dev Authenticates a voucher signed by a contract (ERC-1271) or an EOA with a full signature.
    function _isValidVoucherSignature(address signer, Redemption calldata item, bytes calldata signature)
        internal
        view
        returns (bool)
    {
        bytes32 digest = voucherDigest(item.channelId, item.terms.epoch(), item.cumulativeAmount);
        return SignatureChecker.isValidSignatureNow(signer, digest, signature);
    }
}
