// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IStreamChannels} from "./interfaces/IStreamChannels.sol";
import {LaneTerms} from "./libraries/LaneTerms.sol";
import {LaneRecord} from "./libraries/LaneRecord.sol";
import {LaneHashing} from "./libraries/LaneHashing.sol";

/// @title ChannelLanes
/// @notice Storage of channels and the rules for moving a channel's money word between lanes.
/// @dev A lane is (channel, payee, token, signer, terms); its id is the storage location of the channel's
///      money word while that signer holds the channel. Only the current lane's word is non-zero. A lane left
///      because the signer changed keeps a tombstone for `redeemWindow` seconds so vouchers the payee accepted
///      before the change stay redeemable (with that lane's own caps).
abstract contract ChannelLanes is IStreamChannels {
    using LaneTerms for uint256;
    using LaneRecord for uint256;

    /// @dev Cold, per-channel control data; written only by payer, guardian and close operations.
    struct Control {
        bytes32 lane; // current lane; 0 = the initial payer lane (computed), CLOSED once the channel ended
        uint256 terms; // current lane's terms (meaningful when `lane` is set)
        address signer; // current lane's signer (meaningful when `lane` is set)
        uint40 closesAt; // end of the challenge period; 0 = no close requested
        uint40 frozenValidUntil; // 0 = not frozen; else the lane's validUntil before the freeze
        uint96 maxPerPayment; // the session key's published per-payment cap (0 = none)
        uint80 keyBase; // redeemed amount when the session key was granted
    }

    /// @dev Marks a channel that ended; its id can never be opened again.
    bytes32 internal constant CLOSED = bytes32(uint256(1));

    /// @notice Seconds the payee has to redeem after a close request, freeze, revoke or rotation.
    uint256 public immutable redeemWindow;

    /// @notice Tombstones of lanes left by a signer change: redeemable-until and that lane's period accounting.
    mapping(bytes32 laneId => uint256 tombstone) public retiredLanes;
    /// @notice Guardian each payer named; it may freeze the payer's channels and nothing else.
    mapping(address payer => address guardian) public guardianOf;
    /// @dev Control data of each channel that ever left its initial lane or was asked to close.
    mapping(bytes32 channelId => Control) internal _control;

    /// @param redeemWindow_ Seconds the payee keeps to redeem after a close request, freeze, revoke or rotation.
    constructor(uint256 redeemWindow_) {
        if (redeemWindow_ == 0 || redeemWindow_ > 30 days) revert InvalidRedeemWindow(redeemWindow_);
        redeemWindow = redeemWindow_;
    }

    /// @notice Money word of a live lane (see `LaneRecord`); 0 for any other lane.
    function lanes(bytes32 laneId) external view returns (uint256) {
        return _laneRecord(laneId);
    }

    /// @notice Id of the channel a configuration describes.
    function channelIdOf(ChannelConfig calldata config) public pure returns (bytes32 channelId) {
        // keccak256(abi.encode(config)), hashed straight from calldata; dirty address bits revert as the ABI
        // decoder would.
        assembly ("memory-safe") {
            if shr(160, or(or(calldataload(config), calldataload(add(config, 0x20))), calldataload(add(config, 0x40))))
            {
                revert(0, 0)
            }
            let m := mload(0x40)
            calldatacopy(m, config, 0x80)
            channelId := keccak256(m, 0x80)
        }
    }

    /// @notice Storage location of a lane.
    function laneIdOf(bytes32 channelId, address payee, address token, address signer, uint256 terms)
        public
        pure
        returns (bytes32)
    {
        return LaneHashing.laneId(channelId, payee, token, signer, terms);
    }

    /// @dev The id of the channel `config` describes and of its first lane (the payer's own, epoch 0):
    ///      `laneIdOf(channelId, payee, token, payer, LaneTerms.forPayer(0))`, hashed straight from calldata.
    function _firstLaneOf(ChannelConfig calldata config) internal pure returns (bytes32 channelId, bytes32 laneId) {
        channelId = channelIdOf(config); // checks the three addresses
        laneId = _firstLaneId(config, channelId);
    }

    /// @dev `_firstLaneOf` for a caller that has `channelId = channelIdOf(config)` already.
    function _firstLaneId(ChannelConfig calldata config, bytes32 channelId) private pure returns (bytes32 laneId) {
        uint256 terms = LaneTerms.forPayer(0);
        assembly ("memory-safe") {
            let m := mload(0x40)
            mstore(m, channelId)
            calldatacopy(add(m, 0x20), add(config, 0x20), 0x40) // payee, token
            mstore(add(m, 0x60), calldataload(config)) // payer, the first lane's signer
            mstore(add(m, 0x80), terms)
            laneId := keccak256(m, 0xa0)
        }
    }

    /// @dev The channel's current lane, its signer, terms and money word; reverts if the channel is not live.
    function _current(ChannelConfig calldata config, bytes32 channelId)
        internal
        view
        returns (bytes32 laneId, address signer, uint256 terms, uint256 record)
    {
        Control storage control = _control[channelId];
        laneId = control.lane;
        if (laneId == CLOSED) revert ChannelIsClosed(channelId);
        if (laneId == bytes32(0)) {
            signer = config.payer;
            terms = LaneTerms.forPayer(0);
            laneId = _firstLaneId(config, channelId);
        } else {
            signer = control.signer;
            terms = control.terms;
        }
        record = _laneRecord(laneId);
        if (record == 0) revert ChannelNotFound(channelId);
    }

    /// @dev Moves the money word to the lane (signer, terms) and makes it current.
    function _moveLane(
        ChannelConfig calldata config,
        bytes32 channelId,
        bytes32 fromLane,
        uint256 record,
        address signer,
        uint256 terms
    ) internal returns (bytes32 toLane) {
        toLane = laneIdOf(channelId, config.payee, config.token, signer, terms);
        _setLaneRecord(fromLane, 0);
        _setLaneRecord(toLane, record);
        Control storage control = _control[channelId];
        control.lane = toLane;
        control.terms = terms;
        control.signer = signer;
        emit LaneActivated(channelId, toLane, signer, terms);
    }

    /// @dev Leaves a tombstone so the outgoing signer's vouchers stay redeemable for `redeemWindow` seconds.
    function _retire(bytes32 channelId, bytes32 laneId, address signer, uint256 record) internal {
        uint256 until = block.timestamp + redeemWindow;
        retiredLanes[laneId] = until | (record.periodSpent() << 40) | (record.periodIndex() << 120);
        emit SignerRetired(channelId, signer, laneId, until);
    }

    /// @dev The lane id recorded as current, or 0 for a channel still in its initial lane.
    function _storedLane(bytes32 channelId) internal view returns (bytes32) {
        return _control[channelId].lane;
    }

    /// @dev A lane's money word lives at the storage slot named by the lane id itself. The id is a keccak256 of a
    ///      160-byte preimage, so it cannot meet a fixed slot, a mapping entry (keccak256 of 64 bytes) or a
    ///      struct field near one without a keccak256 collision; hashing it once more into a mapping would cost
    ///      every redemption a hash and buy nothing.
    function _laneRecord(bytes32 laneId) internal view returns (uint256 record) {
        assembly ("memory-safe") {
            record := sload(laneId)
        }
    }

    /// @dev Writes a lane's money word (see `_laneRecord`); 0 deletes it.
    function _setLaneRecord(bytes32 laneId, uint256 record) internal {
        assembly ("memory-safe") {
            sstore(laneId, record)
        }
    }
}
