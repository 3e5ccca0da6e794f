"""`PBStreamClient` / `AsyncPBStreamClient`: the payer's one-object API (the seed guide's checklist).

    client = PBStreamClient("https://api.example", w3=w3, contract=CHANNELS, payer=account,
                            key_store=SessionKeyStore("~/.pb/keys"), passphrase=secret,
                            budget=BudgetPolicy(max_per_request=UNIT, max_per_hour=10 * UNIT))
    client.open_channel(payee, token, 5 * UNIT)                 # permit: one transaction
    client.grant_session_key(total_cap=50 * UNIT)               # 24 h / 50 U, key generated and stored locally
    image = client.fetch_json("POST", "/images", json={...})    # 402 -> voucher -> 200, silently
    client.remaining_balance(); client.settle(); client.close()

Requests pay through `PBSyncTransport` / `PBAsyncTransport` (pre-emptive vouchers, one round trip per paid
request once a route is known). A request that stays unpaid raises `PaymentRequiredError` (amount, recipient,
reason) after the failure hooks ran; a paid one runs the success hooks, then the low-balance hooks and the
automatic top-up. On-chain actions of the async client run in a worker thread.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
from eth_account.signers.local import LocalAccount
from protocolbanks.sdk.payer.budget import BudgetGuard, BudgetPolicy
from protocolbanks.sdk.payer.channel_account import DAY, ChannelAccount, PaymentEvent, PaymentFailure, session_policy
from protocolbanks.sdk.payer.client_scheme import PbChannelClientScheme
from protocolbanks.sdk.payer.errors import PaymentRefused, PaymentRequiredError
from protocolbanks.sdk.payer.ledger import ChannelLedger
from protocolbanks.sdk.payer.requirement_cache import pb_offer
from protocolbanks.sdk.payer.session_keys import SessionKeyStore, load_account_keystore
from protocolbanks.sdk.payer.transports import PBAsyncTransport, PBSyncTransport, required_of
from protocolbanks.sdk.payer_channels import ChannelConfig, SessionKeyPolicy
from web3 import Web3
from x402 import x402Client, x402ClientSync
from x402.http.clients.httpx import PaymentError
from x402.http.constants import PAYMENT_RESPONSE_HEADER
from x402.http.utils import decode_payment_response_header


class _PayerCore:
    """Everything but the HTTP client: shared by the sync and the async facade."""

    def __init__(self, base_url: str, *, w3: Web3 | str, contract: str, key_store: SessionKeyStore,
                 passphrase: str, payer: LocalAccount | Path | str | None = None,
                 payer_passphrase: str | None = None, channel: ChannelConfig | bytes | None = None,
                 budget: BudgetPolicy | BudgetGuard | None = None, ledger: ChannelLedger | Path | str | None = None,
                 settle_url: str | None = None, preemptive: bool = True, from_block: int = 0) -> None:
        self.base_url = base_url.rstrip("/")
        web3 = Web3(Web3.HTTPProvider(w3)) if isinstance(w3, str) else w3
        if isinstance(payer, (str, Path)):
            payer = load_account_keystore(payer, payer_passphrase if payer_passphrase is not None else passphrase)
        self.ledger = ledger if isinstance(ledger, ChannelLedger) else ChannelLedger(ledger)
        guard = budget if isinstance(budget, BudgetGuard) else BudgetGuard(budget or BudgetPolicy())
        self.scheme = PbChannelClientScheme(self.ledger, guard)
        self.account = ChannelAccount(w3=web3, contract=contract, scheme=self.scheme, key_store=key_store,
                                      passphrase=passphrase, payer=payer, channel=channel,
                                      settle_url=settle_url or self.base_url, from_block=from_block)
        self.preemptive = preemptive

    # ---- read-only
    @property
    def channel_id(self) -> bytes:
        return self.account.channel_id

    @property
    def guard(self) -> BudgetGuard:
        return self.scheme.guard

    # ---- hooks
    def on_payment_success(self, hook: Any) -> Any:
        return self.account.on_payment_success(hook)

    def on_payment_failure(self, hook: Any) -> Any:
        return self.account.on_payment_failure(hook)

    def on_low_balance(self, threshold: int, hook: Any) -> Any:
        return self.account.on_low_balance(threshold, hook)

    def enable_auto_top_up(self, *, below: int, amount: int) -> None:
        self.account.enable_auto_top_up(below=below, amount=amount)

    # ---- after a request
    def _after(self, url: str, response: httpx.Response) -> PaymentEvent | None:
        if response.status_code == 402:
            required = required_of(response)
            offer = pb_offer(required) if required is not None else None
            failure = PaymentFailure(url, int(offer.amount) if offer and offer.amount.isdigit() else None,
                                     offer.pay_to if offer else None,
                                     (required.error if required else None) or "payment_required")
            self.account.payment_failed(failure)
            raise PaymentRequiredError(amount=failure.amount, recipient=failure.recipient, reason=failure.reason,
                                       url=url)
        header = response.headers.get(PAYMENT_RESPONSE_HEADER)
        if not header:
            return None
        settle = decode_payment_response_header(header)
        state = (settle.extra or {}).get("channelState") or {}
        if not settle.success or state.get("channelId") != "0x" + self.channel_id.hex():
            return None
        amount = (settle.extra or {}).get("chargedAmount", settle.amount or "0")
        return self.account.payment_succeeded(url, int(amount) if str(amount).isdigit() else 0,
                                              self.ledger.entry(self.channel_id).charged,
                                              (settle.extra or {}).get("paymentId"))

    def _refused(self, url: str, exc: PaymentError) -> PaymentRequiredError:
        if isinstance(exc, PaymentRefused):
            failure = PaymentFailure(url, exc.amount, exc.recipient, exc.reason.value)
        else:
            failure = PaymentFailure(url, None, None, f"payment_error: {exc}")
        self.account.payment_failed(failure)
        return PaymentRequiredError(amount=failure.amount, recipient=failure.recipient, reason=failure.reason,
                                    url=url)

    def _policy(self, policy: SessionKeyPolicy | None, total_cap: int | None, valid_for_s: int,
                period_cap: int, period_length: int, max_per_payment: int) -> SessionKeyPolicy:
        if policy is not None:
            return policy
        if total_cap is None:
            raise ValueError("pass a SessionKeyPolicy or total_cap=")
        now = int(self.account.w3.eth.get_block("latest")["timestamp"])
        return session_policy(total_cap, now=now, valid_for_s=valid_for_s, period_cap=period_cap,
                              period_length=period_length, max_per_payment=max_per_payment)


class PBStreamClient(_PayerCore):
    """Sync payer client. `inner_transport` replaces the network transport under the paying one (tests)."""

    def __init__(self, base_url: str, *, timeout: float = 30.0, inner_transport: httpx.BaseTransport | None = None,
                 **options: Any) -> None:
        super().__init__(base_url, **options)
        self.x402 = self.scheme.register_with(x402ClientSync())
        self.transport = PBSyncTransport(self.x402, inner_transport, preemptive=self.preemptive)
        self.http = httpx.Client(base_url=self.base_url, transport=self.transport, timeout=timeout)

    # ---- on-chain
    def open_channel(self, payee: str, token: str, deposit: int, *, permit: bool = True,
                     salt: bytes | None = None) -> ChannelConfig:
        return self.account.open_channel(payee, token, deposit, permit=permit, salt=salt)

    def top_up(self, amount: int) -> None:
        self.account.top_up(amount)

    def grant_session_key(self, policy: SessionKeyPolicy | None = None, *, total_cap: int | None = None,
                          valid_for_s: int = DAY, period_cap: int = 0, period_length: int = 0,
                          max_per_payment: int = 0) -> str:
        return self.account.grant_session_key(
            self._policy(policy, total_cap, valid_for_s, period_cap, period_length, max_per_payment))

    def rotate_session_key(self, policy: SessionKeyPolicy | None = None, *, total_cap: int | None = None,
                           valid_for_s: int = DAY, period_cap: int = 0, period_length: int = 0,
                           max_per_payment: int = 0) -> str:
        return self.account.rotate_session_key(
            self._policy(policy, total_cap, valid_for_s, period_cap, period_length, max_per_payment))

    def revoke_session_key(self) -> None:
        self.account.revoke_session_key()

    def remaining_balance(self) -> int:
        return self.account.remaining_balance()

    def settle(self) -> dict[str, Any]:
        return self.account.settle()

    def close(self) -> int:
        return self.account.close()

    def withdraw(self) -> Any:
        return self.account.withdraw()

    # ---- HTTP
    def fetch(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.http.request(method, url, **kwargs)
        except PaymentError as exc:
            raise self._refused(url, exc) from exc
        self._after(url, response)
        return response

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.fetch("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.fetch("POST", url, **kwargs)

    def fetch_json(self, method: str, url: str, **kwargs: Any) -> Any:
        response = self.fetch(method, url, **kwargs)
        response.raise_for_status()
        return response.json()

    def close_http(self) -> None:
        """Closes the HTTP client and writes the ledger's pending confirmations."""
        self.http.close()
        self.ledger.flush()

    def __enter__(self) -> PBStreamClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close_http()


class AsyncPBStreamClient(_PayerCore):
    """Async payer client: HTTP on the event loop, chain actions in a worker thread."""

    def __init__(self, base_url: str, *, timeout: float = 30.0,
                 inner_transport: httpx.AsyncBaseTransport | None = None, **options: Any) -> None:
        super().__init__(base_url, **options)
        self.x402 = self.scheme.register_with(x402Client())
        self.transport = PBAsyncTransport(self.x402, inner_transport, preemptive=self.preemptive)
        self.http = httpx.AsyncClient(base_url=self.base_url, transport=self.transport, timeout=timeout)

    async def open_channel(self, payee: str, token: str, deposit: int, *, permit: bool = True,
                           salt: bytes | None = None) -> ChannelConfig:
        return await asyncio.to_thread(self.account.open_channel, payee, token, deposit, permit=permit, salt=salt)

    async def top_up(self, amount: int) -> None:
        await asyncio.to_thread(self.account.top_up, amount)

    async def grant_session_key(self, policy: SessionKeyPolicy | None = None, *, total_cap: int | None = None,
                                valid_for_s: int = DAY, period_cap: int = 0, period_length: int = 0,
                                max_per_payment: int = 0) -> str:
        chosen = await asyncio.to_thread(self._policy, policy, total_cap, valid_for_s, period_cap, period_length,
                                         max_per_payment)
        return await asyncio.to_thread(self.account.grant_session_key, chosen)

    async def rotate_session_key(self, policy: SessionKeyPolicy | None = None, *, total_cap: int | None = None,
                                 valid_for_s: int = DAY, period_cap: int = 0, period_length: int = 0,
                                 max_per_payment: int = 0) -> str:
        chosen = await asyncio.to_thread(self._policy, policy, total_cap, valid_for_s, period_cap, period_length,
                                         max_per_payment)
        return await asyncio.to_thread(self.account.rotate_session_key, chosen)

    async def revoke_session_key(self) -> None:
        await asyncio.to_thread(self.account.revoke_session_key)

    async def remaining_balance(self) -> int:
        return await asyncio.to_thread(self.account.remaining_balance)

    async def settle(self) -> dict[str, Any]:
        return await asyncio.to_thread(self.account.settle)

    async def close(self) -> int:
        return await asyncio.to_thread(self.account.close)

    async def withdraw(self) -> Any:
        return await asyncio.to_thread(self.account.withdraw)

    async def fetch(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            response = await self.http.request(method, url, **kwargs)
        except PaymentError as exc:
            raise self._refused(url, exc) from exc
        await asyncio.to_thread(self._after, url, response)  # hooks and an automatic top-up may block
        return response

    async def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.fetch("GET", url, **kwargs)

    async def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.fetch("POST", url, **kwargs)

    async def fetch_json(self, method: str, url: str, **kwargs: Any) -> Any:
        response = await self.fetch(method, url, **kwargs)
        response.raise_for_status()
        return response.json()

    async def __aenter__(self) -> AsyncPBStreamClient:
        return self

    async def close_http(self) -> None:
        """Closes the HTTP client and writes the ledger's pending confirmations."""
        await self.http.aclose()
        self.ledger.flush()

    async def __aexit__(self, *exc: object) -> None:
        await self.close_http()
