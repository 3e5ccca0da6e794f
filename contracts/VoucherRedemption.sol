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
///      (`BatchRedemption`: skips the row and reports the error selector), so a race with a freeze or a close
///      never sinks a batch.
abstract contract VoucherRedemption is ChannelLanes, EIP712 {
    using LaneTerms for uint256;
    using LaneRecord for uint256;

    /// @notice EIP-712 digest a signer signs for a voucher on this chain and contract.
    function voucherDigest(bytes32 channelId, uint256 epoch, uint256 cumulativeAmount) public view returns (bytes32) {
        return _hashTypedDataV4(LaneHashing.voucherStructHash(channelId, epoch, cumulativeAmount));
    }

    /// @dev Recovers a voucher's signer from its EIP-2098 compact signature and applies it. `domainSeparator` is
    ///      passed in so a batch computes it once. High-s and zero-address recoveries fail as InvalidSignature.
    ///      Returns the amount moved to the payee, or (0, the rule's error selector, the error's argument).
    function _redeemCompact(bytes32 domainSeparator, address payee, address token, Redemption calldata item)
        internal
        returns (uint256, bytes4, uint256)
    {
        bytes32 channelId = item.channelId;
        uint256 cumulative = item.cumulativeAmount;
        uint256 terms = item.terms;
        bytes32 digest = MessageHashUtils.toTypedDataHash(
            domainSeparator, LaneHashing.voucherStructHash(channelId, terms.epoch(), cumulative)
        );
        // OpenZeppelin returns the zero address for every failure (bad, high-s or zero-recovering signature).
        (address signer,,) = ECDSA.tryRecover(digest, item.r, item.vs);
        if (signer == address(0)) return (0, InvalidSignature.selector, 0);
        return _applyVoucher(payee, token, signer, channelId, cumulative, terms);
    }

    /// @dev `_redeemCompact` for a single voucher: every failure reverts with its exact error.
    function _redeemCompactStrict(bytes32 domainSeparator, address payee, address token, Redemption calldata item)
        internal
        returns (uint256 paid)
    {
        (uint256 delta, bytes4 err, uint256 arg) = _redeemCompact(domainSeparator, payee, token, item);
        if (err != bytes4(0)) _revertRedemption(err, arg, item.channelId, item.cumulativeAmount, item.terms);
        return delta;
    }

    /// @dev Applies a voucher signed by `signer` (already authenticated) on the lane named by `terms`.
    ///      Returns the amount moved to the payee; a failure changes nothing and is reported as
    ///      (0, error selector, error argument) — see `_revertRedemption`.
    function _applyVoucher(
        address payee,
        address token,
        address signer,
        bytes32 channelId,
        uint256 cumulative,
        uint256 terms
    ) internal returns (uint256, bytes4, uint256) {
        bytes32 laneId = laneIdOf(channelId, payee, token, signer, terms);
        uint256 record = _laneRecord(laneId);
        if (record == 0) return _applyRetiredVoucher(laneId, channelId, cumulative, terms);
        // Fast path: the signer holds the channel now. One cold storage word, read and written once.
        (uint256 delta, uint256 periodSpent, uint256 periodIndex, bytes4 err, uint256 arg) =
            _checkVoucher(terms, record, record.periodSpent(), record.periodIndex(), cumulative);
        if (delta != 0) _setLaneRecord(laneId, LaneRecord.pack(cumulative, record.deposit(), periodSpent, periodIndex));
        return (delta, err, arg);
    }

    /// @dev Slow path: a signer that held the channel until recently (rotation, revoke) redeems within its window.
    function _applyRetiredVoucher(bytes32 laneId, bytes32 channelId, uint256 cumulative, uint256 terms)
        private
        returns (uint256, bytes4, uint256)
    {
        uint256 tombstone = retiredLanes[laneId];
        if (tombstone == 0) {
            if (_storedLane(channelId) == CLOSED) return (0, ChannelIsClosed.selector, 0);
            return (0, UnknownLane.selector, uint256(laneId));
        }
        uint256 until = tombstone & LaneTerms.MAX_TIME;
        if (block.timestamp >= until) return (0, LaneExpired.selector, until);
        bytes32 currentLane = _storedLane(channelId);
        uint256 record = _laneRecord(currentLane);
        if (record == 0) return (0, ChannelIsClosed.selector, 0);
        (uint256 delta, uint256 periodSpent, uint256 periodIndex, bytes4 err, uint256 arg) =
            _checkVoucher(terms, record, (tombstone >> 40) & LaneTerms.MAX_AMOUNT, tombstone >> 120, cumulative);
        if (delta == 0) return (0, err, arg);
        _setLaneRecord(
            currentLane, LaneRecord.pack(cumulative, record.deposit(), record.periodSpent(), record.periodIndex())
        );
        retiredLanes[laneId] = until | (periodSpent << 40) | (periodIndex << 120);
        return (delta, bytes4(0), 0);
    }

    /// @dev The cap rules, shared by every path: validity, only-grows, deposit, total cap, per-period cap.
    ///      Returns the amount to move and the period accounting after it; delta 0 means nothing to do, with
    ///      `err` naming the broken rule (0 for an older or equal voucher, which is harmless) and `arg` the limit
    ///      it hit (for the revert of the single-voucher path).
    function _checkVoucher(
        uint256 terms,
        uint256 record,
        uint256 periodSpent,
        uint256 periodIndex,
        uint256 cumulative
    ) private view returns (uint256 delta, uint256, uint256, bytes4, uint256) {
        // Unchecked: every amount here is below 2^80 once `cumulative <= deposit` holds, so no sum of two can
        // overflow; the period length is non-zero where it divides.
        unchecked {
            uint256 limit = terms.validUntil();
            if (block.timestamp >= limit) return (0, 0, 0, LaneExpired.selector, limit);
            // An older or equal voucher moves nothing and is not an error: redeeming twice is harmless.
            uint256 claimed = record.claimed();
            if (cumulative <= claimed) return (0, 0, 0, bytes4(0), 0);
            limit = record.deposit();
            if (cumulative > limit) return (0, 0, 0, VoucherExceedsDeposit.selector, limit);
            limit = terms.ceiling();
            if (cumulative > limit) return (0, 0, 0, VoucherExceedsCap.selector, limit);
            delta = cumulative - claimed;
            limit = terms.periodLength();
            if (limit == 0) return (delta, 0, 0, bytes4(0), 0);
            uint256 index = (block.timestamp / limit) & type(uint16).max;
            periodSpent = (index == periodIndex ? periodSpent : 0) + delta;
            if (periodSpent > terms.periodCap()) return (0, 0, 0, PeriodCapExceeded.selector, periodSpent);
            return (delta, periodSpent, index, bytes4(0), 0);
        }
    }

    /// @dev Reverts with the exact error a failed redemption reported (`err`, `arg` from `_applyVoucher`).
    function _revertRedemption(bytes4 err, uint256 arg, bytes32 channelId, uint256 cumulative, uint256 terms)
        internal
        view
    {
        if (err == InvalidSignature.selector) revert InvalidSignature();
        if (err == ChannelIsClosed.selector) revert ChannelIsClosed(channelId);
        if (err == UnknownLane.selector) revert UnknownLane(bytes32(arg));
        if (err == LaneExpired.selector) revert LaneExpired(arg, block.timestamp);
        if (err == VoucherExceedsDeposit.selector) revert VoucherExceedsDeposit(cumulative, arg);
        if (err == VoucherExceedsCap.selector) revert VoucherExceedsCap(cumulative, arg);
        revert PeriodCapExceeded(arg, terms.periodCap());
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
