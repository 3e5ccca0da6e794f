"""The payer's on-chain side of its channels: open (with an EIP-2612 permit when the token has one), top up,
grant / rotate / revoke session keys, name a guardian, and answer a Sentinel freeze (lift it or confirm it).

web3.py + eth-account only. Every call is simulated first and fails with the protocol's custom error named
(`ContractCallFailed`), before any gas is spent.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from eth_account.signers.local import LocalAccount
from protocolbanks.sdk.abi_files import stream_channels_abi
from protocolbanks.sdk.erc20 import erc20, permit_domain
from protocolbanks.sdk.lane_terms import LaneTerms
from protocolbanks.sdk.permit import sign_permit
from protocolbanks.sdk.transactions import TransactionSender
from protocolbanks.sdk.typed_data import ChannelDomain, SessionKeyGrant, channel_id_of
from web3 import Web3
from web3.exceptions import ContractLogicError


@dataclass(frozen=True)
class ChannelConfig:
    """What identifies a channel on-chain; its id is the hash of these four."""

    payer: str
    payee: str
    token: str
    salt: bytes

    @cached_property
    def channel_id(self) -> bytes:
        return channel_id_of(self.payer, self.payee, self.token, self.salt)

    def as_tuple(self) -> tuple[str, str, str, bytes]:
        return (Web3.to_checksum_address(self.payer), Web3.to_checksum_address(self.payee),
                Web3.to_checksum_address(self.token), self.salt)


@dataclass(frozen=True)
class SessionKeyPolicy:
    """Limits of a session key, token base units and seconds; 0 disables the period cap / per-payment cap."""

    total_cap: int
    valid_until: int
    period_cap: int = 0
    period_length: int = 0
    max_per_payment: int = 0

    def as_tuple(self) -> tuple[int, int, int, int, int]:
        return (self.total_cap, self.period_cap, self.period_length, self.valid_until, self.max_per_payment)


@dataclass(frozen=True)
class ChannelState:
    """`channelState()`: amounts in token base units, times in unix seconds."""

    open: bool
    closing: bool
    frozen: bool
    signer: str
    terms: LaneTerms
    deposit: int
    claimed: int
    remaining: int
    period_spent: int
    key_base: int
    max_per_payment: int
    closes_at: int


class PayerChannels:
    """One payer's actions on one StreamChannels contract."""

    def __init__(self, w3: Web3, contract_address: str, account: LocalAccount, *,
                 sender: TransactionSender | None = None) -> None:
        self.w3 = w3
        self.account = account
        self.contract = w3.eth.contract(address=Web3.to_checksum_address(contract_address),
                                        abi=stream_channels_abi())
        self.sender = sender or TransactionSender(w3, account)

    @property
    def domain(self) -> ChannelDomain:
        return ChannelDomain(self.w3.eth.chain_id, self.contract.address)

    # ------------------------------------------------------------------ reading

    def state(self, config: ChannelConfig) -> ChannelState:
        v = self.contract.functions.channelState(config.as_tuple()).call()
        return ChannelState(open=v[0], closing=v[1], frozen=v[2], signer=Web3.to_checksum_address(v[4]),
                            terms=LaneTerms.unpack(int(v[5])), deposit=v[6], claimed=v[7], remaining=v[8],
                            period_spent=v[9], key_base=v[10], max_per_payment=v[11], closes_at=v[12])

    def find_config(self, channel_id: bytes, from_block: int = 0) -> ChannelConfig | None:
        """A channel's configuration from its ChannelOpened event (what payer-side commands take by id)."""
        event = self.contract.events.ChannelOpened()
        logs = event.get_logs(from_block=from_block, argument_filters={"channelId": channel_id})
        for entry in logs:
            a = entry["args"]
            return ChannelConfig(a["payer"], a["payee"], a["token"], bytes(a["salt"]))
        return None

    # ------------------------------------------------------------------ money in

    def open(self, payee: str, token: str, amount: int, *, salt: bytes | None = None,
             use_permit: bool = True, permit_ttl_s: int = 3600) -> tuple[ChannelConfig, Any]:
        """Opens a channel with `amount` base units; a permit replaces the approval when the token has one."""
        salt = salt if salt is not None else os.urandom(32)
        config = ChannelConfig(self.account.address, payee, token, salt)
        fn = self.contract.functions
        domain = permit_domain(self.w3, token) if use_permit else None
        if domain is not None:
            deadline = int(time.time()) + permit_ttl_s
            nonce = erc20(self.w3, token).functions.nonces(self.account.address).call()
            v, r, s = sign_permit(self.account.key, token_name=domain[0], token_version=domain[1],
                                  chain_id=self.w3.eth.chain_id, token=Web3.to_checksum_address(token),
                                  spender=self.contract.address, value=amount, nonce=nonce, deadline=deadline)
            call = fn.openWithPermit(config.as_tuple()[1], config.as_tuple()[2], salt, amount, deadline, v, r, s)
        else:
            self._ensure_allowance(token, amount)
            call = fn.open(config.as_tuple()[1], config.as_tuple()[2], salt, amount)
        return config, self.sender.send("open", call)

    def top_up(self, config: ChannelConfig, amount: int) -> Any:
        """Adds `amount` to the deposit. A channel still in its first lane (no session key yet) takes `topUp`, which
        finds that lane itself; any other names its current lane (read for free with an eth_call) through
        `topUpLane`, so the transaction skips looking it up. If the lane changes in between, the contract still
        finds the current one."""
        self._ensure_allowance(config.token, amount)
        try:
            state = self.state(config)
        except ContractLogicError:  # closed or unknown: the transaction's simulation names the contract's error
            state = None
        if state is None or (state.terms == LaneTerms.for_payer(0) and state.signer.lower() == config.payer.lower()):
            call = self.contract.functions.topUp(config.as_tuple(), amount)
        else:
            call = self.contract.functions.topUpLane(config.as_tuple(), state.signer, state.terms.pack(), amount)
        return self.sender.send("topUp", call)

    def _ensure_allowance(self, token: str, amount: int) -> None:
        contract = erc20(self.w3, token)
        if contract.functions.allowance(self.account.address, self.contract.address).call() < amount:
            self.sender.send("approve", contract.functions.approve(self.contract.address, amount))

    # ------------------------------------------------------------------ session keys

    def grant_session_key(self, config: ChannelConfig, key: str, policy: SessionKeyPolicy) -> Any:
        return self.sender.send("grantSessionKey", self.contract.functions.grantSessionKey(
            config.as_tuple(), Web3.to_checksum_address(key), policy.as_tuple()))

    def sign_grant(self, config: ChannelConfig, key: str, policy: SessionKeyPolicy, *, deadline: int) -> bytes:
        """The payer's gas-free grant ("Subscribe"): anyone may submit it with `grantSessionKeyBySig`."""
        epoch = self.state(config).terms.epoch + 1
        grant = SessionKeyGrant(config.channel_id, Web3.to_checksum_address(key), policy.total_cap,
                                policy.period_cap, policy.period_length, policy.valid_until,
                                policy.max_per_payment, epoch, deadline)
        return grant.sign(self.domain, self.account.key)

    def rotate_session_key(self, config: ChannelConfig, new_key: str, policy: SessionKeyPolicy) -> Any:
        return self.sender.send("rotateSessionKey", self.contract.functions.rotateSessionKey(
            config.as_tuple(), Web3.to_checksum_address(new_key), policy.as_tuple()))

    def revoke_session_key(self, config: ChannelConfig) -> Any:
        return self.sender.send("revokeSessionKey", self.contract.functions.revokeSessionKey(config.as_tuple()))

    # ------------------------------------------------------------------ the Sentinel

    def set_guardian(self, guardian: str) -> Any:
        return self.sender.send("setGuardian", self.contract.functions.setGuardian(
            Web3.to_checksum_address(guardian)))

    def lift_freeze(self, config: ChannelConfig) -> Any:
        """The spending was the payer's own: the key works again with its original expiry."""
        return self.sender.send("unfreeze", self.contract.functions.unfreeze(config.as_tuple()))

    def confirm_freeze(self, config: ChannelConfig) -> Any:
        """The spending was not the payer's: the key is revoked for good (its vouchers stay redeemable for the
        redeem window, as for any revoke); the deposit stays in the channel for a new key or a close."""
        return self.revoke_session_key(config)

    # ------------------------------------------------------------------ leaving

    def request_close(self, config: ChannelConfig) -> Any:
        return self.sender.send("requestClose", self.contract.functions.requestClose(config.as_tuple()))

    def withdraw(self, config: ChannelConfig) -> Any:
        return self.sender.send("withdraw", self.contract.functions.withdraw(config.as_tuple()))
