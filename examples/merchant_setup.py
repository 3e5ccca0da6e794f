"""The gateway every merchant example shares (a chain view, the channel book, the relayer forwarder), and the
price list of the image API that merchant_fastapi.py, merchant_flask.py and merchant_django/ serve.

    PB_PAYEE         the merchant's address: channels paying it are accepted     (required)
    PB_RELAYER_URL   the relayer that settles (default http://127.0.0.1:8790; "off" = keep vouchers in memory)
    plus PB_RPC_URL, PB_CONTRACT, PB_TOKEN (see pb_env.py)

A paid request is decided here, in memory: the voucher's signature, the channel's on-chain state (kept current
by a ChainFollower polling contract events) and the accepted cumulative. Committed vouchers go to the relayer
from a background thread; the relayer settles them on-chain in batches.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pb_env import DECIMALS, DEFAULT_RELAYER_URL, DEFAULT_RPC_URL, address_setting, connect, setting, u
from protocolbanks.sdk.chain_view import ChainCache
from protocolbanks.sdk.gateway import (
    ChainFollower,
    GatewayChannelBook,
    MerchantGateway,
    PaymentReceipt,
    RelayerChannelLookup,
    RelayerForwarder,
)
from protocolbanks.sdk.typed_data import ChannelDomain
from web3 import Web3


@dataclass(frozen=True)
class MerchantSettings:
    rpc_url: str
    contract: str
    token: str
    payee: str
    relayer_url: str | None  # None: no relayer (vouchers are accepted but nobody settles them)

    @classmethod
    def from_env(cls) -> MerchantSettings:
        relayer = setting("PB_RELAYER_URL", DEFAULT_RELAYER_URL, what="the relayer's base URL")
        return cls(
            rpc_url=setting("PB_RPC_URL", DEFAULT_RPC_URL, what="the chain's JSON-RPC URL"),
            contract=address_setting("PB_CONTRACT", what="the StreamChannels contract", deployed_as="StreamChannels"),
            token=address_setting("PB_TOKEN", what="the token you are paid in", deployed_as="MockUSDC"),
            payee=address_setting("PB_PAYEE", what="your merchant address (the relayer's PB_RELAYER_PAYEE)"),
            relayer_url=None if relayer == "off" else relayer,
        )


@dataclass
class RunningGateway:
    gateway: MerchantGateway
    follower: ChainFollower

    def stop(self) -> bool:
        """Stops following the chain, hands the last vouchers to the relayer; False if some were not delivered."""
        self.follower.stop()
        return self.gateway.stop(timeout=5.0)

    def __enter__(self) -> RunningGateway:
        return self

    def __exit__(self, *exc: object) -> None:  # `with running: serve(...)` stops it after, even on Ctrl-C
        if not self.stop():
            print("warning: some vouchers did not reach the relayer", file=sys.stderr)


def start_gateway(w3: Web3, *, contract: str, token: str, payee: str, relayer_url: str | None,
                  poll_interval: float = 1.0) -> RunningGateway:
    cache = ChainCache(w3, contract)
    cache.poll()  # the whole history once, before the first request
    follower = ChainFollower(cache, interval=poll_interval).start()
    domain = ChannelDomain(w3.eth.chain_id, Web3.to_checksum_address(contract))
    book = GatewayChannelBook(
        domain, cache.get, payee=payee, token=token,
        chain_lag=follower.seconds_behind,  # refuse vouchers while the chain view is stale (RPC down)
        accepted_lookup=RelayerChannelLookup(relayer_url) if relayer_url else None)  # after a restart
    forwarder = RelayerForwarder(relayer_url, domain.chain_id).start() if relayer_url else None
    return RunningGateway(MerchantGateway(book, decimals=DECIMALS, forwarder=forwarder), follower)


def gateway_from_env() -> tuple[MerchantSettings, RunningGateway]:
    """Settings from the environment and a running gateway (SettingError when something is missing)."""
    settings = MerchantSettings.from_env()
    w3 = connect(settings.rpc_url, settings.contract, settings.token)
    running = start_gateway(w3, contract=settings.contract, token=settings.token, payee=settings.payee,
                            relayer_url=settings.relayer_url)
    return settings, running


# The image API (one price list for its three frameworks; each wraps images_asked in a function of its request)
IMAGE_PRICE = Decimal("0.1")  # U per image (a Decimal or decimal string of tokens, or an int of base units)
MAX_IMAGES = 10


def images_asked(n: str | None) -> int:
    """Images a request asks for with ?n= (1 when absent or not a number, at most MAX_IMAGES)."""
    return min(int(n), MAX_IMAGES) if n is not None and n.isdigit() and int(n) > 0 else 1


def log_payment(receipt: PaymentReceipt, request: Any) -> None:
    """on_payment_success: called with the receipt and the framework's request once a payment is committed."""
    print(f"paid {u(receipt.amount)} U by {receipt.payer} (payment {receipt.payment_id})", flush=True)
