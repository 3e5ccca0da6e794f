// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {ChannelLanes} from "./ChannelLanes.sol";
import {LaneTerms} from "./libraries/LaneTerms.sol";
import {LaneRecord} from "./libraries/LaneRecord.sol";
import {PaymentTypedData} from "./libraries/PaymentTypedData.sol";

/// @title VoucherRedemption
/// @notice Checks a cumulative voucher against its lane and moves the channel's redeemed amount forward.
/// @dev One rule set serves the strict single-voucher path (reverts with the exact error) and the batch path
///      (skips the row and reports the error selector), so a race with a freeze or a close never sinks a batch.
abstract contract VoucherRedemption is ChannelLanes, EIP712 {
    using LaneTerms for uint256;
    using LaneRecord for uint256;

    /// @dev Outcome of checking one voucher against caps; `err` is 0 when it may be applied.
    struct Step {
        uint256 delta;
        uint256 periodSpent;
        uint256 periodIndex;
    }

    /// @notice EIP-712 digest a signer signs for a voucher on this chain and contract.
    function voucherDigest(bytes32 channelId, uint256 epoch, uint256 cumulativeAmount) public view returns (bytes32) {
        return _hashTypedDataV4(PaymentTypedData.hashVoucher(channelId, epoch, cumulativeAmount));
    }

    /// @dev Recovers the signer of an EIP-2098 compact signature; high-s and zero-address results fail.
    function _recoverVoucherSigner(Redemption calldata item) internal view returns (address signer, bool ok) {
        bytes32 digest = voucherDigest(item.channelId, item.terms.epoch(), item.cumulativeAmount);
        (address recovered, ECDSA.RecoverError error,) = ECDSA.tryRecover(digest, item.r, item.vs);
        return (recovered, error == ECDSA.RecoverError.NoError);
    }

    /// @dev Applies a voucher signed by `signer` (already authenticated) on the lane named by `item.terms`.
    ///      Returns the amount moved to the payee; with `strict` every failure reverts, otherwise it is reported
    ///      as an error selector and nothing changes.
    function _applyVoucher(address payee, address token, address signer, Redemption calldata item, bool strict)
        internal
        returns (uint256 delta, bytes4 err)
    {
        bytes32 laneId = laneIdOf(item.channelId, payee, token, signer, item.terms);
        uint256 record = lanes[laneId];
        if (record != 0) {
            // Fast path: the signer holds the channel now. One cold storage word, read and written once.
            Step memory step;
            (step, err) = _checkVoucher(item.terms, record, record.periodSpent(), record.periodIndex(), item.cumulativeAmount, strict);
            if (err != bytes4(0) || step.delta == 0) return (0, err);
            lanes[laneId] = LaneRecord.pack(item.cumulativeAmount, record.deposit(), step.periodSpent, step.periodIndex);
            emit VoucherRedeemed(item.channelId, item.cumulativeAmount, step.delta);
            return (step.delta, bytes4(0));
        }
        return _applyRetiredVoucher(laneId, item, strict);
    }

    /// @dev Slow path: a signer that held the channel until recently (rotation, revoke) redeems within its window.
    function _applyRetiredVoucher(bytes32 laneId, Redemption calldata item, bool strict)
        private
        returns (uint256, bytes4)
    {
        uint256 tombstone = retiredLanes[laneId];
        if (tombstone == 0) {
            if (strict) revert UnknownLane(laneId);
            return (0, UnknownLane.selector);
        }
        uint256 until = tombstone & LaneTerms.MAX_TIME;
        if (block.timestamp >= until) {
            if (strict) revert LaneExpired(until, block.timestamp);
            return (0, LaneExpired.selector);
        }
        bytes32 currentLane = _storedLane(item.channelId);
        uint256 record = lanes[currentLane];
        if (record == 0) {
            if (strict) revert ChannelIsClosed(item.channelId);
            return (0, ChannelIsClosed.selector);
        }
        (Step memory step, bytes4 err) = _checkVoucher(
            item.terms, record, (tombstone >> 40) & LaneTerms.MAX_AMOUNT, tombstone >> 120, item.cumulativeAmount, strict
        );
        if (err != bytes4(0) || step.delta == 0) return (0, err);
        lanes[currentLane] = LaneRecord.pack(
            item.cumulativeAmount, record.deposit(), record.periodSpent(), record.periodIndex()
        );
        retiredLanes[laneId] = until | (step.periodSpent << 40) | (step.periodIndex << 120);
        emit VoucherRedeemed(item.channelId, item.cumulativeAmount, step.delta);
        return (step.delta, bytes4(0));
    }

    /// @dev The cap rules, shared by both paths: validity, only-grows, deposit, total cap, per-period cap.
    function _checkVoucher(
        uint256 terms,
        uint256 record,
        uint256 periodSpent,
        uint256 periodIndex,
        uint256 cumulative,
        bool strict
    ) private view returns (Step memory step, bytes4 err) {
        uint256 limit = terms.validUntil();
        if (block.timestamp >= limit) {
            if (strict) revert LaneExpired(limit, block.timestamp);
            return (step, LaneExpired.selector);
        }
        // An older or equal voucher moves nothing and is not an error: redeeming twice is harmless.
        if (cumulative <= record.claimed()) return (step, bytes4(0));
        limit = record.deposit();
        if (cumulative > limit) {
            if (strict) revert VoucherExceedsDeposit(cumulative, limit);
            return (step, VoucherExceedsDeposit.selector);
        }
        limit = terms.ceiling();
        if (cumulative > limit) {
            if (strict) revert VoucherExceedsCap(cumulative, limit);
            return (step, VoucherExceedsCap.selector);
        }
        step.delta = cumulative - record.claimed();
        limit = terms.periodLength();
        if (limit != 0) {
            uint256 index = (block.timestamp / limit) & type(uint16).max;
            periodSpent = (index == periodIndex ? periodSpent : 0) + step.delta;
            limit = terms.periodCap();
            if (periodSpent > limit) {
                if (strict) revert PeriodCapExceeded(periodSpent, limit);
                return (Step(0, 0, 0), PeriodCapExceeded.selector);
            }
            (step.periodSpent, step.periodIndex) = (periodSpent, index);
        }
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
