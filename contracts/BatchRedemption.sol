// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {VoucherRedemption} from "./VoucherRedemption.sol";
import {PaymentTypedData} from "./libraries/PaymentTypedData.sol";
import {RedeemedRows} from "./libraries/RedeemedRows.sol";

/// @title BatchRedemption
/// @notice The loop of `redeemBatch`: hundreds of vouchers a transaction, each checked against its own lane.
/// @dev Two passes. The first recovers every row's signer (OpenZeppelin's ECDSA; recovery depends only on the row
///      and the domain, so doing it first changes no outcome). The second applies the rows in order on a fast
///      path for the common case — the lane's current signer, within the expiry, deposit, total and period caps —
///      written in assembly because it runs hundreds of times a transaction. The first row it cannot settle (a
///      bad signature, a retired or unknown lane, a broken rule, an already redeemed voucher) changes nothing
///      there and goes to `_applyVoucher`, the reference rules shared with `redeem`, which applies it or reports
///      why not; the fast path then resumes after it. `tests/test_batch_fast_path.py` checks that a batch of one
///      ends exactly like `redeem`, and a batch of many like `redeem` of each row in turn.
///
///      The hashes' inputs that are the same for every row (the voucher type hash, the EIP-712 prefix and domain
///      separator, the payee and the token) are written once into a buffer of `BUFFER_BYTES`; a row writes only
///      its own words:
///        [0x00, 0x80)   voucher struct: VOUCHER_TYPEHASH, channelId, epoch, cumulativeAmount
///        [0x80, 0xc2)   EIP-712 digest input: 0x1901, domain separator, voucher struct hash
///        [0xe0, 0x180)  lane id input: channelId, payee, token, signer, terms
abstract contract BatchRedemption is VoucherRedemption {
    /// @notice Bytes per `redeemBatch` row: channelId 32, cumulativeAmount 10, terms 32, r 32, vs 32.
    uint256 internal constant BATCH_ROW_BYTES = 138;
    uint256 private constant BUFFER_BYTES = 0x180;
    uint256 private constant MASK80 = 0xffffffffffffffffffff;
    /// @dev `LaneRecord`'s deposit field in place, bits [80, 160).
    uint256 private constant DEPOSIT = 0x00ffffffffffffffffffff00000000000000000000;
    /// @dev `LaneRecord`'s periodSpent field in place, bits [160, 240); `LaneTerms`' periodCap lands there when
    ///      shifted left by 80.
    uint256 private constant PERIOD_SPENT = 0xffffffffffffffffffff0000000000000000000000000000000000000000;

    /// @dev Redeems every one of the `count` packed rows that passes its lane's rules, in order, and returns the
    ///      total moved to `payee`. Rows that moved money are listed in `redeemed` (a `RedeemedRows` list with room
    ///      for every row); rows that failed are reported with `RedemptionSkipped`. `rows` was bounds-checked by
    ///      the ABI decoder (offset + length <= calldatasize) and holds exactly `count` rows.
    function _redeemRows(
        bytes32 domainSeparator,
        address payee,
        address token,
        bytes calldata rows,
        uint256 count,
        bytes memory redeemed
    ) internal returns (uint256 paid) {
        uint256 buffer = _hashBuffer(domainSeparator, payee, token);
        uint256 signers;
        uint256 at;
        uint256 end;
        uint256 cursor; // where the next row of `redeemed` goes
        assembly ("memory-safe") {
            signers := mload(0x40)
            mstore(0x40, add(signers, shl(5, count)))
            at := rows.offset
            end := add(at, rows.length)
            cursor := add(add(redeemed, 0x20), mload(redeemed))
        }
        _recoverSigners(buffer, at, end, signers);
        (at, signers, cursor, paid) = _fastRows(buffer, at, end, signers, cursor);
        while (at != end) {
            address signer;
            assembly ("memory-safe") {
                signer := mload(signers)
            }
            uint256 delta = _redeemSlowRow(payee, token, signer, at);
            if (delta != 0) {
                assembly ("memory-safe") {
                    // a `RedeemedRows` row: the batch row's first 42 bytes are the channel id and the amount already
                    calldatacopy(cursor, at, 42)
                    cursor := add(cursor, 42)
                }
                paid += delta;
            }
            uint256 more;
            (at, signers, cursor, more) = _fastRows(buffer, at + BATCH_ROW_BYTES, end, signers + 0x20, cursor);
            paid += more;
        }
        assembly ("memory-safe") {
            mstore(redeemed, sub(cursor, add(redeemed, 0x20)))
        }
    }

    /// @dev The fast path, row after row from `at`, until `end` or a row it cannot settle, which is left at the
    ///      returned `at` (with its signer at `signers`) for `_redeemSlowRow`. Returns what it paid.
    function _fastRows(uint256 buffer, uint256 at, uint256 end, uint256 signers, uint256 cursor)
        private
        returns (uint256, uint256, uint256, uint256 paid)
    {
        assembly ("memory-safe") {
            for {} iszero(eq(at, end)) {} {
                let terms := calldataload(add(at, 42))
                let channelId := calldataload(at)
                // the lane's word, at slot keccak256(abi.encode(channelId, payee, token, signer, terms)); no lane
                // has the zero signer, so an invalid signature finds no word
                mstore(add(buffer, 0xe0), channelId)
                mstore(add(buffer, 0x140), mload(signers))
                mstore(add(buffer, 0x160), terms)
                let slot := keccak256(add(buffer, 0xe0), 0xa0)
                let record := sload(slot)
                // not the current lane (retired or unknown), or past validUntil
                if or(iszero(record), iszero(lt(timestamp(), and(shr(192, terms), 0xffffffffff)))) { break }
                let cumulative := shr(176, calldataload(add(at, 0x20)))
                let claimed := and(record, MASK80)
                // an older or equal voucher (harmless, left to the reference path), above the deposit, above the
                // lane's ceiling
                if or(
                    iszero(gt(cumulative, claimed)),
                    or(gt(cumulative, and(shr(80, record), MASK80)), gt(cumulative, and(terms, MASK80)))
                ) { break }
                let delta := sub(cumulative, claimed)
                // The record's bits [160, 256): spent within the period and the period's index. Without a period
                // (length 0) both stay 0: div by 0 is 0 in the EVM, and `periodic` zeroes the rest.
                let length := and(shr(160, terms), 0xffffffff)
                let periodic := iszero(iszero(length))
                let index := and(div(timestamp(), length), 0xffff)
                // spent in place (< 2^81 before the check, so it stays below bit 241)
                let period := add(mul(eq(index, shr(240, record)), and(record, PERIOD_SPENT)), shl(160, delta))
                if gt(mul(period, periodic), and(shl(80, terms), PERIOD_SPENT)) { break } // above the period cap
                // LaneRecord.pack(cumulative, deposit, spent, index); amounts are below 2^80 (10 bytes)
                sstore(slot, or(or(cumulative, and(record, DEPOSIT)), mul(or(period, shl(240, index)), periodic)))
                // a `RedeemedRows` row: channel id, then the new redeemed amount in 10 bytes
                mstore(cursor, channelId)
                mstore(add(cursor, 0x20), shl(176, cumulative))
                cursor := add(cursor, 42)
                paid := add(paid, delta)
                signers := add(signers, 0x20)
                at := add(at, BATCH_ROW_BYTES)
            }
        }
        return (at, signers, cursor, paid);
    }

    /// @dev Allocates the hash buffer (layout above) and writes the words every row shares.
    function _hashBuffer(bytes32 domainSeparator, address payee, address token) private pure returns (uint256 buffer) {
        bytes32 typehash = PaymentTypedData.VOUCHER_TYPEHASH;
        assembly ("memory-safe") {
            buffer := mload(0x40)
            mstore(0x40, add(buffer, BUFFER_BYTES))
            mstore(buffer, typehash)
            mstore(add(buffer, 0x80), shl(240, 0x1901))
            mstore(add(buffer, 0x82), domainSeparator)
            mstore(add(buffer, 0x100), and(payee, 0xffffffffffffffffffffffffffffffffffffffff))
            mstore(add(buffer, 0x120), and(token, 0xffffffffffffffffffffffffffffffffffffffff))
        }
    }

    /// @dev Recovers the signer of every row in [at, end) (0 for an invalid signature) into consecutive words
    ///      from `out`. Recovery depends on nothing but the row and the domain, so doing it first changes no
    ///      outcome.
    function _recoverSigners(uint256 buffer, uint256 at, uint256 end, uint256 out) private pure {
        for (; at != end;) {
            bytes32 digest;
            uint8 v;
            bytes32 r;
            bytes32 s;
            assembly ("memory-safe") {
                // voucher struct hash, then the EIP-712 digest (MessageHashUtils.toTypedDataHash)
                mstore(add(buffer, 0x20), calldataload(at))
                mstore(add(buffer, 0x40), shr(232, calldataload(add(at, 42)))) // LaneTerms.epoch
                mstore(add(buffer, 0x60), shr(176, calldataload(add(at, 0x20))))
                mstore(add(buffer, 0xa2), keccak256(buffer, 0x80))
                digest := keccak256(add(buffer, 0x80), 0x42)
                r := calldataload(add(at, 74))
                // EIP-2098: `vs` carries v - 27 in its top bit and s below it (ECDSA.tryRecover(hash, r, vs))
                s := calldataload(add(at, 106))
                v := add(shr(255, s), 27)
                s := and(s, 0x7fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff)
            }
            // OpenZeppelin returns the zero address for every failure (bad, high-s or zero-recovering signature).
            (address signer,,) = ECDSA.tryRecover(digest, v, r, s);
            assembly ("memory-safe") {
                mstore(out, signer)
                out := add(out, 0x20)
                at := add(at, BATCH_ROW_BYTES)
            }
        }
    }

    /// @dev A row the fast path did not settle, through the reference rules: applies it, or reports why not with
    ///      `RedemptionSkipped`. `signer` is the row's recovered signer (0: the signature is invalid).
    function _redeemSlowRow(address payee, address token, address signer, uint256 at) private returns (uint256 delta) {
        bytes32 channelId;
        uint256 cumulative;
        uint256 terms;
        assembly ("memory-safe") {
            channelId := calldataload(at)
            cumulative := shr(176, calldataload(add(at, 0x20)))
            terms := calldataload(add(at, 42))
        }
        bytes4 err = InvalidSignature.selector;
        if (signer != address(0)) (delta, err,) = _applyVoucher(payee, token, signer, channelId, cumulative, terms);
        if (err != bytes4(0)) emit RedemptionSkipped(channelId, err);
    }
}
