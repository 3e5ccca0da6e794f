"""One payer channel as the payer's client sees it: the on-chain lifecycle (open with permit, top up, grant /
rotate / revoke a session key, close, withdraw), the session key that signs for it, the balance left (chain state
and ledger), and the payer's hooks (payment success / failure, low balance, automatic top-up).

Chain calls go through `PayerChannels` (web3, every call simulated first, errors named). The channel's signer and
lane terms are read back from the chain after every change and handed to the x402 client scheme (`bind`), so
vouchers always carry the current terms and the current key.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from eth_account import Account
from eth_account.signers.local import LocalAccount
from protocolbanks.sdk.payer.client_scheme import AccountSigner, ChannelBinding, PbChannelClientScheme, VoucherSigner
from protocolbanks.sdk.payer.session_keys import SessionKeyStore
from protocolbanks.sdk.payer_channels import ChannelConfig, ChannelState, PayerChannels, SessionKeyPolicy
from protocolbanks.sdk.typed_data import ChannelDomain
from web3 import Web3

log = logging.getLogger(__name__)

DAY = 24 * 3600


@dataclass(frozen=True)
class PaymentEvent:
    """A payment the merchant confirmed."""

    url: str
    channel_id: bytes
    amount: int
    charged_cumulative: int
    payment_id: str | None
    remaining: int  # what the channel can still pay (chain state and ledger)


@dataclass(frozen=True)
class PaymentFailure:
    """A request that stayed unpaid: `reason` is a RefusalReason value or the merchant's 402 error code."""

    url: str
    amount: int | None
    recipient: str | None
    reason: str


class NoPayerAccount(RuntimeError):
    """An on-chain action of the payer was asked of a client that holds only a session key."""


class NoChannel(RuntimeError):
    """No channel is open (or known) for this client yet."""


def session_policy(total_cap: int, *, now: int, valid_for_s: int = DAY, period_cap: int = 0, period_length: int = 0,
                   max_per_payment: int = 0) -> SessionKeyPolicy:
    """"24 h / 50 U": a key that may spend `total_cap` base units until `now + valid_for_s`."""
    return SessionKeyPolicy(total_cap=total_cap, valid_until=now + valid_for_s, period_cap=period_cap,
                            period_length=period_length, max_per_payment=max_per_payment)


class ChannelAccount:
    """Sync; thread-safe for the hooks and the cached chain state."""

    def __init__(self, *, w3: Web3, contract: str, scheme: PbChannelClientScheme, key_store: SessionKeyStore,
                 passphrase: str, payer: LocalAccount | None = None, channel: ChannelConfig | bytes | None = None,
                 settle_url: str | None = None, from_block: int = 0) -> None:
        self.w3 = w3
        self.scheme = scheme
        self.key_store = key_store
        self._passphrase = passphrase
        self.payer = payer
        self.settle_url = settle_url.rstrip("/") if settle_url else None
        self.chain = PayerChannels(w3, contract, payer or Account.create())  # a throwaway account only reads
        self.config: ChannelConfig | None = None
        self.state: ChannelState | None = None
        self._signers: dict[str, VoucherSigner] = {}
        self._lock = threading.Lock()
        self._success_hooks: list[Callable[[PaymentEvent], None]] = []
        self._failure_hooks: list[Callable[[PaymentFailure], None]] = []
        self._low_balance: list[tuple[int, Callable[[int], None]]] = []
        self._warned: set[int] = set()
        self._auto_top_up: tuple[int, int] | None = None
        if isinstance(channel, bytes):
            channel = self.chain.find_config(channel, from_block)
            if channel is None:
                raise NoChannel("no ChannelOpened event for this channel id")
        if channel is not None:
            self.config = channel
            self.refresh()

    # ------------------------------------------------------------------ chain state and the signing binding

    @property
    def domain(self) -> ChannelDomain:
        return self.chain.domain

    @property
    def channel_id(self) -> bytes:
        return self._config().channel_id

    def refresh(self) -> ChannelState:
        """Reads the channel from the chain and binds its current signer and terms to the scheme."""
        config = self._config()
        state = self.chain.state(config)
        with self._lock:
            self.state = state
        signer = self._signer_for(state.signer)
        if signer is not None:
            self.scheme.bind(ChannelBinding(config.channel_id, config.payee, config.token, self.domain,
                                            state.terms, signer))
        else:
            self.scheme.unbind(config.channel_id)
            log.warning("no key for the channel's signer: requests will not be paid",
                        extra={"channel": "0x" + config.channel_id.hex(), "signer": state.signer})
        return state

    def _signer_for(self, address: str) -> VoucherSigner | None:
        if self.payer is not None and address.lower() == self.payer.address.lower():
            return AccountSigner(self.payer)
        if address not in self._signers:
            if address not in self.key_store.addresses():
                return None
            self._signers[address] = self.key_store.load(address, self._passphrase)
        return self._signers[address]

    def remaining_balance(self, *, refresh: bool = True) -> int:
        """What the channel can still pay: min(deposit, the signer's ceiling) minus the larger of what was
        redeemed on-chain and what merchants confirmed off-chain (not yet settled)."""
        state = self.refresh() if refresh or self.state is None else self.state
        charged = self.scheme.ledger.entry(self.channel_id).charged
        return max(0, min(state.deposit, state.terms.ceiling) - max(state.claimed, charged))

    # ------------------------------------------------------------------ payer actions

    def open_channel(self, payee: str, token: str, deposit: int, *, permit: bool = True,
                     salt: bytes | None = None) -> ChannelConfig:
        config, _ = self._payer_chain().open(payee, token, deposit, salt=salt, use_permit=permit)
        self.config = config
        self.refresh()
        log.info("channel opened", extra={"channel": "0x" + config.channel_id.hex(), "deposit": deposit})
        return config

    def top_up(self, amount: int) -> ChannelState:
        self._payer_chain().top_up(self._config(), amount)
        with self._lock:
            self._warned.clear()
        return self.refresh()

    def grant_session_key(self, policy: SessionKeyPolicy) -> str:
        """Generates a key locally (stored encrypted), grants it on-chain; returns its address."""
        key = self.key_store.generate(self._passphrase)
        self._signers[key.address] = key
        self._payer_chain().grant_session_key(self._config(), key.address, policy)
        self.refresh()
        return key.address

    def rotate_session_key(self, policy: SessionKeyPolicy) -> str:
        old = self.state.signer if self.state else None
        key = self.key_store.generate(self._passphrase)
        self._signers[key.address] = key
        self._payer_chain().rotate_session_key(self._config(), key.address, policy)
        self.refresh()
        self._forget(old)
        return key.address

    def revoke_session_key(self) -> None:
        old = self.state.signer if self.state else None
        self._payer_chain().revoke_session_key(self._config())
        self.refresh()
        self._forget(old)

    def close(self) -> int:
        """Asks to close (the payee may redeem during the challenge period); returns when `withdraw` may run."""
        self._payer_chain().request_close(self._config())
        return self.refresh().closes_at

    def withdraw(self) -> Any:
        """After the challenge period: the rest of the deposit back to the payer; the channel ends."""
        receipt = self._payer_chain().withdraw(self._config())
        self.scheme.unbind(self.channel_id)
        return receipt

    def settle(self, *, client: httpx.Client | None = None, timeout: float = 10.0) -> dict[str, Any]:
        """Asks the relayer (or the gateway) to settle this channel in its next round, whatever its threshold."""
        if self.settle_url is None:
            raise ValueError("no settle_url: pass the relayer's (or gateway's) base URL")
        url = f"{self.settle_url}/v1/channels/0x{self.channel_id.hex()}/settle"
        http = client or httpx.Client(timeout=timeout)
        try:
            response = http.post(url, json={})
        finally:
            if client is None:
                http.close()
        response.raise_for_status()
        answer: dict[str, Any] = response.json() if response.content else {}
        return answer

    def _forget(self, address: str | None) -> None:
        if address is None or (self.payer is not None and address.lower() == self.payer.address.lower()):
            return
        self._signers.pop(address, None)
        self.key_store.forget(address)

    def _payer_chain(self) -> PayerChannels:
        if self.payer is None:
            raise NoPayerAccount("this client holds no payer account: open, top up and key changes need it")
        return self.chain

    def _config(self) -> ChannelConfig:
        if self.config is None:
            raise NoChannel("no channel yet: open_channel(...) or pass channel=")
        return self.config

    # ------------------------------------------------------------------ hooks

    def on_payment_success(self, hook: Callable[[PaymentEvent], None]) -> Callable[[PaymentEvent], None]:
        self._success_hooks.append(hook)
        return hook

    def on_payment_failure(self, hook: Callable[[PaymentFailure], None]) -> Callable[[PaymentFailure], None]:
        self._failure_hooks.append(hook)
        return hook

    def on_low_balance(self, threshold: int, hook: Callable[[int], None]) -> Callable[[int], None]:
        """`hook(remaining)` once when the remaining balance falls below `threshold` (again after a top-up)."""
        self._low_balance.append((threshold, hook))
        return hook

    def enable_auto_top_up(self, *, below: int, amount: int) -> None:
        """Top up `amount` whenever a payment leaves less than `below` (needs the payer account)."""
        self._payer_chain()
        self._auto_top_up = (below, amount)

    def payment_succeeded(self, url: str, amount: int, charged: int, payment_id: str | None) -> PaymentEvent:
        event = PaymentEvent(url, self.channel_id, amount, charged, payment_id,
                             self.remaining_balance(refresh=False))
        for hook in list(self._success_hooks):
            hook(event)
        self._watch_balance(event.remaining)
        return event

    def payment_failed(self, failure: PaymentFailure) -> None:
        for hook in list(self._failure_hooks):
            hook(failure)

    def _watch_balance(self, remaining: int) -> None:
        """Low-balance hooks see the balance the payment left; the automatic top-up (if any) follows them."""
        for index, (threshold, hook) in enumerate(list(self._low_balance)):
            with self._lock:
                fire = remaining < threshold and index not in self._warned
                if fire:
                    self._warned.add(index)
                elif remaining >= threshold:
                    self._warned.discard(index)
            if fire:
                hook(remaining)
        if self._auto_top_up is not None and remaining < self._auto_top_up[0]:
            log.info("auto top-up", extra={"channel": "0x" + self.channel_id.hex(), "remaining": remaining,
                                           "amount": self._auto_top_up[1]})
            self.top_up(self._auto_top_up[1])
