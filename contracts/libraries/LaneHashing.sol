// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {PaymentTypedData} from "./PaymentTypedData.sol";

/// @title LaneHashing
/// @notice The two hashes of the redemption hot path, computed in scratch memory past the free-memory pointer
///         so a batch of hundreds of vouchers does not grow memory. Equal, bit for bit, to
///         `keccak256(abi.encode(VOUCHER_TYPEHASH, channelId, epoch, cumulativeAmount))` and
///         `keccak256(abi.encode(channelId, payee, token, signer, terms))`; tests/test_lane_hashing.py and
///         tests/test_sdk_typed_data.py check both against independent implementations.
library LaneHashing {
    /// @notice Struct hash of `Voucher(channelId, epoch, cumulativeAmount)`.
    function voucherStructHash(bytes32 channelId, uint256 epoch, uint256 cumulativeAmount)
        internal
        pure
        returns (bytes32 result)
    {
        bytes32 typehash = PaymentTypedData.VOUCHER_TYPEHASH;
        assembly ("memory-safe") {
            let m := mload(0x40)
            mstore(m, typehash)
            mstore(add(m, 0x20), channelId)
            mstore(add(m, 0x40), epoch)
            mstore(add(m, 0x60), cumulativeAmount)
            result := keccak256(m, 0x80)
        }
    }

    /// @notice Storage location of a lane: `keccak256(abi.encode(channelId, payee, token, signer, terms))`.
    function laneId(bytes32 channelId, address payee, address token, address signer, uint256 terms)
        internal
        pure
        returns (bytes32 result)
    {
        assembly ("memory-safe") {
            let m := mload(0x40)
            mstore(m, channelId)
            mstore(add(m, 0x20), and(payee, 0xffffffffffffffffffffffffffffffffffffffff))
            mstore(add(m, 0x40), and(token, 0xffffffffffffffffffffffffffffffffffffffff))
            mstore(add(m, 0x60), and(signer, 0xffffffffffffffffffffffffffffffffffffffff))
            mstore(add(m, 0x80), terms)
            result := keccak256(m, 0xa0)
        }
    }
}
