"""The payer client every payer example shares: who pays, where its keys and ledger live, its channel per merchant.

    PB_PAYER_PRIVATE_KEY   the payer's own key, hex (local development only), or
    PB_PAYER_KEYSTORE      its eth-account keystore file (passphrase PB_PAYER_PASSPHRASE, else PB_KEY_PASSPHRASE)
    PB_KEY_PASSPHRASE      encrypts the session keys the client generates                          (required)
    PB_STATE_DIR           session keys, the voucher ledger, remembered channels (default ./pb-payer-state)
    PB_RELAYER_URL         where `settle` asks for a settlement (default http://127.0.0.1:8790)
    plus PB_RPC_URL, PB_CONTRACT (see pb_env.py)

The first run opens a channel to the merchant (with a permit: no approval transaction) and grants a session key;
later runs reuse both. Keep PB_STATE_DIR: its ledger is how the client resumes from what it signed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from eth_account.signers.local import LocalAccount
from pb_env import DEFAULT_RELAYER_URL, DEFAULT_RPC_URL, address_setting, payer_account, setting
from protocolbanks.sdk.payer import (
    STANDARD_KDF,
    BudgetPolicy,
    KdfParams,
    PaymentRequiredError,
    PBStreamClient,
    SessionKeyStore,
)
from protocolbanks.sdk.payer_channels import PayerChannels
from web3 import Web3

T = TypeVar("T")
CATCHING_UP = {"unknown_channel", "signer_not_authorised"}  # a merchant sees a new channel or key at its next poll


@dataclass(frozen=True)
class PayerSettings:
    rpc_url: str
    contract: str
    payer: LocalAccount
    passphrase: str
    state_dir: Path
    relayer_url: str

    @classmethod
    def from_env(cls) -> PayerSettings:
        passphrase = setting("PB_KEY_PASSPHRASE", what="the passphrase that encrypts this payer's session keys")
        return cls(rpc_url=setting("PB_RPC_URL", DEFAULT_RPC_URL, what="the chain's JSON-RPC URL"),
                   contract=address_setting("PB_CONTRACT", what="the StreamChannels contract",
                                            deployed_as="StreamChannels"),
                   payer=payer_account(passphrase), passphrase=passphrase,
                   state_dir=Path(setting("PB_STATE_DIR", "pb-payer-state", what="the payer's state folder")),
                   relayer_url=setting("PB_RELAYER_URL", DEFAULT_RELAYER_URL, what="the relayer's base URL"))


def remembered_channels(state_dir: Path) -> dict[str, str]:
    """`channels.json` in the state folder: {payTo: the channel id this payer uses for that merchant}."""
    path = state_dir / "channels.json"
    return json.loads(path.read_text()) if path.exists() else {}


def remember_channel(state_dir: Path, pay_to: str, channel_id: bytes) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    known = {**remembered_channels(state_dir), pay_to.lower(): "0x" + channel_id.hex()}
    (state_dir / "channels.json").write_text(json.dumps(known, indent=1))


def payer_client(merchant_url: str, settings: PayerSettings, *, pay_to: str, asset: str, deposit: int,
                 key_cap: int, max_per_payment: int, budget: BudgetPolicy, w3: Web3 | None = None,
                 kdf: KdfParams = STANDARD_KDF) -> PBStreamClient:
    """A client paying `merchant_url` through this payer's channel to `pay_to`, with a session key on it."""
    web3 = w3 or Web3(Web3.HTTPProvider(settings.rpc_url))
    chain = PayerChannels(web3, settings.contract, settings.payer)
    known = remembered_channels(settings.state_dir).get(pay_to.lower())
    config = chain.find_config(bytes.fromhex(known.removeprefix("0x"))) if known else None
    if config is not None and (not chain.state(config).open or chain.state(config).closing):
        config = None  # closed (or closing): open a new one
    client = PBStreamClient(merchant_url, w3=web3, contract=settings.contract, payer=settings.payer,
                            key_store=SessionKeyStore(settings.state_dir / "keys", kdf=kdf),
                            passphrase=settings.passphrase, budget=budget,
                            ledger=settings.state_dir / "ledger.json", settle_url=settings.relayer_url,
                            channel=config)
    if config is None:
        config = client.open_channel(pay_to, asset, deposit)  # permit: one transaction, no approval
        remember_channel(settings.state_dir, pay_to, config.channel_id)
    signer = client.account.refresh().signer
    if signer.lower() == settings.payer.address.lower():  # first run, or the key was revoked (confirmed freeze)
        client.grant_session_key(total_cap=key_cap, max_per_payment=max_per_payment)  # 24 h by default
    elif signer not in client.account.key_store.addresses():  # granted elsewhere: this client cannot sign
        client.rotate_session_key(total_cap=key_cap, max_per_payment=max_per_payment)
    return client


def patiently(pay: Callable[[], T], timeout: float = 15.0) -> T:
    """`pay()`, tried again while the merchant has not seen a new channel or key yet (its chain view polls)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return pay()
        except PaymentRequiredError as exc:
            if exc.reason not in CATCHING_UP or time.monotonic() > deadline:
                raise
            time.sleep(0.5)
