// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title IStreamChannels
/// @notice Unidirectional ERC-20 payment channels paid by EIP-712 cumulative vouchers, with session keys whose
///         total and per-period caps are enforced on-chain, and a guardian ("Sentinel") that can only brake.
/// @dev Amounts are token base units; times are unix seconds. A channel's money state lives in one storage word
///      at the location of its current *lane*: `laneId = keccak256(abi.encode(channelId, payee, token, signer,
///      terms))`. Changing who may sign (grant, rotate, revoke) or freezing moves the word to a new lane, so a
///      redemption reads and writes exactly one cold storage slot. See docs/protocol.md.
interface IStreamChannels {
    /// @notice What identifies a channel: `channelId = keccak256(abi.encode(config))`.
    /// @param payer Who deposits and is refunded; owner of the channel.
    /// @param payee Who is paid by redeeming vouchers.
    /// @param token The ERC-20 token deposited.
    /// @param salt Any value chosen by the payer, so one payer can hold several channels to one payee.
    struct ChannelConfig {
        address payer;
        address payee;
        address token;
        bytes32 salt;
    }

    /// @notice A session key's limits, chosen by the payer when granting it.
    /// @param totalCap Most the key may ever add to the channel's redeemed amount (base units).
    /// @param periodCap Most the key may add within one period (base units); ignored when `periodLength` is 0.
    /// @param periodLength Length of a period in seconds (periods are aligned to multiples of it); 0 = no period cap.
    /// @param validUntil First second at which the key no longer authorises anything.
    /// @param maxPerPayment Largest single payment the key may make; published on-chain, enforced off-chain by
    ///        gateways, relayers and clients (a cumulative voucher hides single payments from the chain).
    struct SessionKeyPolicy {
        uint256 totalCap;
        uint256 periodCap;
        uint256 periodLength;
        uint256 validUntil;
        uint256 maxPerPayment;
    }

    /// @notice One voucher to redeem (`redeem`, `closeCooperative`). `redeemBatch` takes the same fields packed, 138
    ///         bytes a row: channelId (32), cumulativeAmount (10, big-endian uint80), terms (32), r (32), vs (32).
    /// @param channelId The channel the voucher is for.
    /// @param cumulativeAmount Total the signer has authorised on the channel so far (base units).
    /// @param terms The packed terms of the lane the signer belongs to (see `LaneTerms`).
    /// @param r First half of the EIP-2098 compact signature.
    /// @param vs Second half of the EIP-2098 compact signature (`v` folded into the top bit of `s`).
    struct Redemption {
        bytes32 channelId;
        uint256 cumulativeAmount;
        uint256 terms;
        bytes32 r;
        bytes32 vs;
    }

    /// @notice A read-only view of a channel, for integrators and the relayer.
    struct ChannelView {
        bool open;
        bool closing;
        bool frozen;
        bytes32 laneId;
        address signer;
        uint256 terms;
        uint256 deposit;
        uint256 claimed;
        uint256 remaining;
        uint256 periodSpent;
        uint256 keyBase;
        uint256 maxPerPayment;
        uint256 closesAt;
    }

    // ---------------------------------------------------------------- errors

    /// @notice A channel with this id was opened before; ids are never reused.
    error ChannelAlreadyExists(bytes32 channelId);
    /// @notice No open channel has this id (or its configuration was given wrongly).
    error ChannelNotFound(bytes32 channelId);
    /// @notice The channel was closed; nothing more can happen on it.
    error ChannelIsClosed(bytes32 channelId);
    /// @notice An amount of zero was given where a positive amount is needed.
    error ZeroAmount();
    /// @notice An amount does not fit the channel's accounting (at most 2^80 - 1 base units per channel).
    error AmountTooLarge(uint256 amount, uint256 max);
    /// @notice The token transfer into the contract credited nothing.
    error NothingReceived(address token);
    /// @notice The payee may not be the zero address, nor the payer itself.
    error InvalidPayee(address payee);
    /// @notice The token is not a contract.
    error InvalidToken(address token);
    /// @notice Only the channel's payer may do this.
    error NotPayer(address caller, address payer);
    /// @notice Only the channel's payee may do this.
    error NotPayee(address caller, address payee);
    /// @notice Only the payer's guardian may do this.
    error NotGuardian(address caller, address guardian);
    /// @notice The signature does not recover to any address (malformed, zero or high-s).
    error InvalidSignature();
    /// @notice No lane with this id holds the channel: a stranger's signature, a wrong payee/token, stale terms,
    ///         or a voucher for another channel, chain or contract.
    error UnknownLane(bytes32 laneId);
    /// @notice The lane's authority ended (expiry, freeze, revoke or rotation) at `validUntil`.
    error LaneExpired(uint256 validUntil, uint256 nowTime);
    /// @notice The voucher asks for more than the channel holds.
    error VoucherExceedsDeposit(uint256 cumulativeAmount, uint256 deposit);
    /// @notice The voucher would take the key past its total cap.
    error VoucherExceedsCap(uint256 cumulativeAmount, uint256 ceiling);
    /// @notice The voucher would take the key past its per-period cap.
    error PeriodCapExceeded(uint256 periodSpent, uint256 periodCap);
    /// @notice The session-key policy is not acceptable.
    error InvalidPolicy(string reason);
    /// @notice The key may not be the zero address, the payer or the payee.
    error InvalidSessionKey(address key);
    /// @notice The channel has no session key to rotate or revoke.
    error NoSessionKey(bytes32 channelId);
    /// @notice A signed grant was submitted after its deadline.
    error GrantExpired(uint256 deadline, uint256 nowTime);
    /// @notice A signed grant's signature is not the payer's (EOA or ERC-1271).
    error InvalidGrantSignature(address payer);
    /// @notice The channel is frozen already.
    error AlreadyFrozen(bytes32 channelId);
    /// @notice The channel is not frozen.
    error NotFrozen(bytes32 channelId);
    /// @notice The payer asked to close already.
    error CloseAlreadyRequested(bytes32 channelId, uint256 closesAt);
    /// @notice The payer has not asked to close.
    error CloseNotRequested(bytes32 channelId);
    /// @notice The challenge period runs until `closesAt`.
    error ChallengePeriodActive(uint256 closesAt, uint256 nowTime);
    /// @notice The redemption window given at deployment must be positive and at most 30 days.
    error InvalidRedeemWindow(uint256 redeemWindow);
    /// @notice `redeemBatch` rows are not a whole number of 138-byte rows.
    error MalformedBatch(uint256 length);

    // ---------------------------------------------------------------- events

    /// @notice A channel was opened with `deposit` credited.
    event ChannelOpened(
        bytes32 indexed channelId,
        address indexed payer,
        address indexed payee,
        address token,
        bytes32 salt,
        uint256 deposit
    );
    /// @notice `amount` was credited to the channel; its deposit is now `deposit`.
    event ChannelToppedUp(bytes32 indexed channelId, address indexed from, uint256 amount, uint256 deposit);
    /// @notice The channel's money now lives in lane `laneId`: `signer` may sign vouchers under `terms`.
    event LaneActivated(bytes32 indexed channelId, bytes32 indexed laneId, address indexed signer, uint256 terms);
    /// @notice A session key was granted (or rotated in); `keyBase` is the redeemed amount it starts from.
    event SessionKeyGranted(
        bytes32 indexed channelId,
        address indexed key,
        SessionKeyPolicy policy,
        uint256 keyBase,
        uint256 epoch
    );
    /// @notice The previous signer's vouchers stay redeemable until `redeemableUntil`, then authorise nothing.
    event SignerRetired(bytes32 indexed channelId, address indexed signer, bytes32 laneId, uint256 redeemableUntil);
    /// @notice The payer named `guardian` to brake its channels.
    event GuardianSet(address indexed payer, address indexed guardian);
    /// @notice The channel was frozen; vouchers already issued stay redeemable until `redeemableUntil`.
    event ChannelFrozen(bytes32 indexed channelId, address indexed guardian, uint256 redeemableUntil);
    /// @notice The payer lifted the freeze.
    event ChannelUnfrozen(bytes32 indexed channelId);
    /// @notice Vouchers moved `total` to `payee` in one transfer. `redeemed` holds one packed row per voucher
    ///         that moved money: the channel id (32 bytes), then its new redeemed amount (10 bytes, big-endian);
    ///         see `RedeemedRows`.
    event VouchersRedeemed(address indexed payee, address indexed token, uint256 total, bytes redeemed);
    /// @notice A batch row was skipped for the reason given by the error selector `reason`.
    event RedemptionSkipped(bytes32 indexed channelId, bytes4 reason);
    /// @notice The payer started a unilateral close; the payee may redeem until `closesAt`.
    event CloseRequested(bytes32 indexed channelId, uint256 closesAt);
    /// @notice The channel ended: `paidToPayee` in total over its life, `refunded` back to the payer.
    event ChannelClosed(bytes32 indexed channelId, uint256 paidToPayee, uint256 refunded);
}
