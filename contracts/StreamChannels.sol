// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {ChannelLanes} from "./ChannelLanes.sol";
import {SessionKeys} from "./SessionKeys.sol";
import {BatchRedemption} from "./BatchRedemption.sol";
import {LaneTerms} from "./libraries/LaneTerms.sol";
import {LaneRecord} from "./libraries/LaneRecord.sol";
import {RedeemedRows} from "./libraries/RedeemedRows.sol";

/// @title StreamChannels
/// @notice ProtocolBanks payment channels: deposit once, pay per request or per minute with signed cumulative
///         vouchers, let a capped session key sign for you, and let a guardian brake when spending spikes.
/// @dev Lifecycle: open -> (top up, grant/rotate/revoke keys, freeze/unfreeze, redeem)* -> either
///      closeCooperative by the payee (immediate) or requestClose by the payer, `redeemWindow` seconds for the
///      payee to redeem, then withdraw by the payer. Channel ids are never reused. See docs/protocol.md.
contract StreamChannels is SessionKeys, BatchRedemption, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;
    using LaneTerms for uint256;
    using LaneRecord for uint256;

    /// @param redeemWindow_ Seconds the payee keeps to redeem after a close request, freeze, revoke or rotation.
    constructor(uint256 redeemWindow_) ChannelLanes(redeemWindow_) EIP712("ProtocolBanks StreamChannels", "1") {}

    // ---------------------------------------------------------------- opening and funding

    /// @notice Opens a channel from the caller to `payee`, depositing `amount` of `token` (approve first).
    /// @dev Credits what actually arrived, so fee-on-transfer tokens are accounted correctly.
    /// @param payee Who will be paid; not the caller, not zero.
    /// @param token ERC-20 token to deposit.
    /// @param salt Any value; distinguishes several channels between the same parties. Never reusable.
    /// @param amount Base units to pull from the caller.
    /// @return channelId `keccak256(abi.encode(ChannelConfig(msg.sender, payee, token, salt)))`.
    function open(address payee, address token, bytes32 salt, uint256 amount)
        external
        nonReentrant
        returns (bytes32 channelId)
    {
        return _open(payee, token, salt, amount);
    }

    /// @notice Like `open`, but first applies an EIP-2612 permit so no separate approval is needed.
    /// @dev A failing permit is ignored when the allowance already suffices (someone front-ran the permit).
    function openWithPermit(
        address payee,
        address token,
        bytes32 salt,
        uint256 amount,
        uint256 deadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external nonReentrant returns (bytes32 channelId) {
        try IERC20Permit(token).permit(msg.sender, address(this), amount, deadline, v, r, s) {} catch {}
        return _open(payee, token, salt, amount);
    }

    /// @notice Adds `amount` of the channel's token, pulled from the caller, to the channel's deposit.
    /// @dev Anyone may top up; the money belongs to the channel and is refunded to its payer. A channel still in
    ///      its first lane (no session key granted yet) is found without reading its control record.
    function topUp(ChannelConfig calldata config, uint256 amount) external nonReentrant {
        (bytes32 channelId, bytes32 laneId) = _firstLaneOf(config);
        uint256 record = _laneRecord(laneId);
        // Only a channel's current lane holds a non-zero word, so a non-zero word here is the current lane.
        if (record == 0) (laneId,,, record) = _current(config, channelId);
        _topUp(config, channelId, laneId, record, amount);
    }

    /// @notice `topUp` for a caller that knows the channel's current lane: skips looking it up (one to three
    ///         cold storage reads). A stale hint costs one more read and still tops up the current lane.
    /// @param signer The current lane's signer; 0 for the payer's own lane (no session key granted yet).
    /// @param terms The current lane's terms (`channelState(config).terms`); ignored when `signer` is 0.
    function topUpLane(ChannelConfig calldata config, address signer, uint256 terms, uint256 amount)
        external
        nonReentrant
    {
        bytes32 channelId = channelIdOf(config);
        if (signer == address(0)) (signer, terms) = (config.payer, LaneTerms.forPayer(0));
        bytes32 laneId = laneIdOf(channelId, config.payee, config.token, signer, terms);
        uint256 record = _laneRecord(laneId);
        // Only a channel's current lane holds a non-zero word, so a non-zero word here proves the hint.
        if (record == 0) (laneId,,, record) = _current(config, channelId);
        _topUp(config, channelId, laneId, record, amount);
    }

    // ---------------------------------------------------------------- redeeming

    /// @notice Redeems one voucher for `payee`, moving the amount above what was already redeemed.
    /// @dev Anyone may submit (money only ever goes to the lane's payee). Reverts with the exact reason.
    ///      An older or equal voucher moves nothing and does not revert.
    /// @return paid Base units transferred to `payee`.
    function redeem(address payee, address token, Redemption calldata item)
        external
        nonReentrant
        returns (uint256 paid)
    {
        paid = _redeemCompactStrict(_domainSeparatorV4(), payee, token, item);
        if (paid != 0) _payOut(token, payee, item, paid);
    }

    /// @notice Redeems a voucher signed by a smart-contract signer (ERC-1271) or with a full 65-byte signature.
    /// @param signer The lane's signer (the payer's wallet, or a key) whose signature `signature` is.
    function redeemWithSignature(
        address payee,
        address token,
        address signer,
        Redemption calldata item,
        bytes calldata signature
    ) external nonReentrant returns (uint256 paid) {
        if (!_isValidVoucherSignature(signer, item, signature)) revert InvalidSignature();
        bytes4 err;
        uint256 arg;
        (paid, err, arg) = _applyVoucher(payee, token, signer, item.channelId, item.cumulativeAmount, item.terms);
        if (err != bytes4(0)) _revertRedemption(err, arg, item.channelId, item.cumulativeAmount, item.terms);
        if (paid != 0) _payOut(token, payee, item, paid);
    }

    /// @notice Redeems many channels' vouchers to one payee in one transaction, with one token transfer.
    /// @dev A row that fails is skipped and reported with `RedemptionSkipped`; the others go through, in order.
    /// @param rows The vouchers, packed 138 bytes a row: channelId (32 bytes), cumulativeAmount (10 bytes,
    ///        big-endian), terms (32), r (32), vs (32) — the `Redemption` fields without ABI padding, since
    ///        calldata is most of a batch's cost (the SDK's `pack_redemption_rows` builds it).
    /// @return paid Base units transferred to `payee` in total.
    function redeemBatch(address payee, address token, bytes calldata rows)
        external
        nonReentrant
        returns (uint256 paid)
    {
        if (rows.length % BATCH_ROW_BYTES != 0) revert MalformedBatch(rows.length);
        uint256 count = rows.length / BATCH_ROW_BYTES;
        bytes memory redeemed = RedeemedRows.allocate(count);
        paid = _redeemRows(_domainSeparatorV4(), payee, token, rows, count, redeemed);
        // emit VouchersRedeemed(payee, token, paid, redeemed), without copying hundreds of rows to encode them
        RedeemedRows.logWith(
            redeemed, VouchersRedeemed.selector, bytes32(uint256(uint160(payee))), bytes32(uint256(uint160(token))), paid
        );
        if (paid != 0) IERC20(token).safeTransfer(payee, paid);
    }

    // ---------------------------------------------------------------- closing

    /// @notice Payee closes at once: optionally redeems a last voucher, then refunds the rest to the payer.
    /// @param finalVoucher The newest voucher, or one with `cumulativeAmount` 0 to redeem nothing.
    function closeCooperative(ChannelConfig calldata config, Redemption calldata finalVoucher) external nonReentrant {
        if (msg.sender != config.payee) revert NotPayee(msg.sender, config.payee);
        bytes32 channelId = channelIdOf(config);
        (bytes32 laneId,,, uint256 record) = _current(config, channelId);
        uint256 paid = 0;
        if (finalVoucher.cumulativeAmount > record.claimed()) {
            if (finalVoucher.channelId != channelId) revert ChannelNotFound(finalVoucher.channelId);
            paid = _redeemCompactStrict(_domainSeparatorV4(), config.payee, config.token, finalVoucher);
            (laneId,,, record) = _current(config, channelId);
        }
        _close(config, channelId, laneId, record, paid);
    }

    /// @notice Payer starts a unilateral close; the payee has `redeemWindow` seconds to redeem its newest voucher.
    function requestClose(ChannelConfig calldata config) external {
        bytes32 channelId = channelIdOf(config);
        if (msg.sender != config.payer) revert NotPayer(msg.sender, config.payer);
        _current(config, channelId);
        Control storage control = _control[channelId];
        if (control.closesAt != 0) revert CloseAlreadyRequested(channelId, control.closesAt);
        uint256 closesAt = block.timestamp + redeemWindow;
        control.closesAt = uint40(closesAt);
        emit CloseRequested(channelId, closesAt);
    }

    /// @notice After the challenge period, the payer takes back everything not redeemed and the channel ends.
    function withdraw(ChannelConfig calldata config) external nonReentrant {
        bytes32 channelId = channelIdOf(config);
        if (msg.sender != config.payer) revert NotPayer(msg.sender, config.payer);
        (bytes32 laneId,,, uint256 record) = _current(config, channelId);
        uint256 closesAt = _control[channelId].closesAt;
        if (closesAt == 0) revert CloseNotRequested(channelId);
        if (block.timestamp < closesAt) revert ChallengePeriodActive(closesAt, block.timestamp);
        _close(config, channelId, laneId, record, 0);
    }

    // ---------------------------------------------------------------- views

    /// @notice Everything about a channel's current state (reverts if it never existed or was closed).
    function channelState(ChannelConfig calldata config) external view returns (ChannelView memory view_) {
        bytes32 channelId = channelIdOf(config);
        (bytes32 laneId, address signer, uint256 terms, uint256 record) = _current(config, channelId);
        Control storage control = _control[channelId];
        uint256 limit = record.deposit() < terms.ceiling() ? record.deposit() : terms.ceiling();
        uint256 periodLength = terms.periodLength();
        uint256 periodSpent = periodLength != 0
            && record.periodIndex() == ((block.timestamp / periodLength) & type(uint16).max) ? record.periodSpent() : 0;
        view_ = ChannelView({
            open: true,
            closing: control.closesAt != 0,
            frozen: control.frozenValidUntil != 0,
            laneId: laneId,
            signer: signer,
            terms: terms,
            deposit: record.deposit(),
            claimed: record.claimed(),
            remaining: limit > record.claimed() ? limit - record.claimed() : 0,
            periodSpent: periodSpent,
            keyBase: control.keyBase,
            maxPerPayment: control.maxPerPayment,
            closesAt: control.closesAt
        });
    }

    /// @notice Unpacks lane terms into (ceiling, periodCap, periodLength, validUntil, epoch).
    function decodeTerms(uint256 terms) external pure returns (uint256, uint256, uint256, uint256, uint256) {
        return (terms.ceiling(), terms.periodCap(), terms.periodLength(), terms.validUntil(), terms.epoch());
    }

    // ---------------------------------------------------------------- internals

    function _open(address payee, address token, bytes32 salt, uint256 amount) private returns (bytes32 channelId) {
        if (payee == address(0) || payee == msg.sender) revert InvalidPayee(payee);
        if (token.code.length == 0) revert InvalidToken(token);
        channelId = keccak256(abi.encode(msg.sender, payee, token, salt));
        bytes32 laneId = laneIdOf(channelId, payee, token, msg.sender, LaneTerms.forPayer(0));
        if (_laneRecord(laneId) != 0 || _control[channelId].lane != bytes32(0)) revert ChannelAlreadyExists(channelId);
        uint256 received = _pull(token, amount);
        if (received > LaneTerms.MAX_AMOUNT) revert AmountTooLarge(received, LaneTerms.MAX_AMOUNT);
        _setLaneRecord(laneId, LaneRecord.pack(0, received, 0, 0));
        emit ChannelOpened(channelId, msg.sender, payee, token, salt, received);
    }

    /// @dev Credits what arrives of `amount` to the channel's current lane word `record` at `laneId`.
    function _topUp(ChannelConfig calldata config, bytes32 channelId, bytes32 laneId, uint256 record, uint256 amount)
        private
    {
        uint256 received = _pull(config.token, amount);
        uint256 deposit = record.deposit() + received;
        if (deposit > LaneTerms.MAX_AMOUNT) revert AmountTooLarge(deposit, LaneTerms.MAX_AMOUNT);
        _setLaneRecord(laneId, record.withDeposit(deposit));
        emit ChannelToppedUp(channelId, msg.sender, received, deposit);
    }

    /// @dev Pulls `amount` from the caller and returns what actually arrived.
    function _pull(address token, uint256 amount) private returns (uint256 received) {
        if (amount == 0) revert ZeroAmount();
        if (amount > LaneTerms.MAX_AMOUNT) revert AmountTooLarge(amount, LaneTerms.MAX_AMOUNT);
        uint256 before = _balanceOfThis(token);
        IERC20(token).safeTransferFrom(msg.sender, address(this), amount);
        received = _balanceOfThis(token) - before;
        if (received == 0) revert NothingReceived(token);
    }

    /// @dev `IERC20(token).balanceOf(address(this))` without the ABI helpers' memory allocation (it runs twice in
    ///      every deposit); a token that fails the call or answers less than a word is not a token.
    function _balanceOfThis(address token) private view returns (uint256 held) {
        assembly ("memory-safe") {
            mstore(0x00, 0x70a08231) // balanceOf(address), in the low four bytes of the word
            mstore(0x20, address())
            // arguments are evaluated right to left: the call runs before returndatasize is read
            if iszero(and(gt(returndatasize(), 0x1f), staticcall(gas(), token, 0x1c, 0x24, 0x00, 0x20))) {
                mstore(0x00, 0x961c9a4f) // InvalidToken(address)
                mstore(0x20, token)
                revert(0x1c, 0x24)
            }
            held := mload(0x00)
        }
    }

    /// @dev Records one redemption and pays it out.
    function _payOut(address token, address payee, Redemption calldata item, uint256 amount) private {
        emit VouchersRedeemed(payee, token, amount, RedeemedRows.single(item.channelId, item.cumulativeAmount));
        IERC20(token).safeTransfer(payee, amount);
    }

    /// @dev Ends the channel: pays `paid` to the payee, refunds the unredeemed rest to the payer.
    function _close(ChannelConfig calldata config, bytes32 channelId, bytes32 laneId, uint256 record, uint256 paid)
        private
    {
        uint256 refund = record.deposit() - record.claimed();
        _setLaneRecord(laneId, 0);
        _control[channelId].lane = CLOSED;
        emit ChannelClosed(channelId, record.claimed(), refund);
        if (paid != 0) IERC20(config.token).safeTransfer(config.payee, paid);
        if (refund != 0) IERC20(config.token).safeTransfer(config.payer, refund);
    }
}
