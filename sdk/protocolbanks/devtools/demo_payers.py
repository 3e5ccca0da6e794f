"""The demo's payers, each a `PBStreamClient` with its own channel and session key:

* the AI agent generates images one request at a time and pays each silently (x402 `pb-channel`, pre-emptive
  vouchers: one round trip per image once the price is known);
* the rider rents a car: a `MeteredSession` pays every started minute with the next cumulative voucher;
* the runaway script asks for ten images at a time, five times a second, until it is refused.

No prompt, no wallet pop-up: the payer deposits once (EIP-2612 permit: no approval transaction), names the
merchant's relayer as its Sentinel guardian, grants a 24 h session key generated and stored encrypted locally,
and from then on only the key signs, off-chain.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount
from protocolbanks.devtools.demo_config import UNIT, DemoFailed, DemoSettings, DemoWorld, Say, short, usd
from protocolbanks.sdk.payer import (
    FAST_TEST_KDF,
    STANDARD_KDF,
    BudgetPolicy,
    HttpMeteredMerchant,
    MeteredSession,
    PaymentEvent,
    PaymentRequiredError,
    PBStreamClient,
    SessionKeyStore,
    TickRecord,
)
from protocolbanks.sdk.transactions import TransactionSender
from web3 import Web3

DAY = 24 * 3600
KEY_PASSPHRASE = "demo only: a real payer keeps its passphrase in a secret store"
MINT_ABI = [{"type": "function", "name": "mint", "stateMutability": "nonpayable",
             "inputs": [{"name": "to", "type": "address"}, {"name": "amount", "type": "uint256"}], "outputs": []}]


@dataclass
class Payer:
    """A payer of the story and what happened to it."""

    name: str
    account: LocalAccount
    client: PBStreamClient
    deposit: int
    session_key: str = ""
    paid: int = 0  # base units the merchant confirmed
    payments: int = 0
    refusals: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def channel_id(self) -> bytes:
        return self.client.channel_id

    def record(self, event: PaymentEvent) -> None:
        with self.lock:
            self.paid += event.amount
            self.payments += 1


def join_the_merchant(name: str, key: str, world: DemoWorld, settings: DemoSettings, *, base_url: str,
                      relayer_url: str, merchant: str, guardian: str, deposit: int, key_cap: int,
                      max_per_payment: int, budget: BudgetPolicy, workdir: Path, say: Say) -> Payer:
    """Mints test tokens, opens a channel with a permit, names the guardian, grants a 24 h session key."""
    account: LocalAccount = Account.from_key(key)
    w3 = Web3(Web3.HTTPProvider(world.rpc_url, request_kwargs={"timeout": 30}))
    token = w3.eth.contract(address=Web3.to_checksum_address(world.token), abi=MINT_ABI)
    TransactionSender(w3, account).send("mint", token.functions.mint(account.address, deposit))
    client = PBStreamClient(base_url, w3=w3, contract=world.channels, payer=account,
                            key_store=SessionKeyStore(workdir / f"keys-{name}",
                                                      kdf=FAST_TEST_KDF if settings.fast_key_encryption
                                                      else STANDARD_KDF),
                            passphrase=KEY_PASSPHRASE, budget=budget, ledger=workdir / f"ledger-{name}.json",
                            settle_url=relayer_url)
    client.open_channel(merchant, world.token, deposit)
    client.account.chain.set_guardian(guardian)
    payer = Payer(name, account, client, deposit)
    payer.session_key = client.grant_session_key(total_cap=key_cap, valid_for_s=DAY, max_per_payment=max_per_payment)
    client.on_payment_success(payer.record)
    say(f"   [{name}] {short(account.address)} deposited {usd(deposit)} (permit, one transaction), named the "
        f"relayer's guardian, granted session key {short(payer.session_key)} (24 h, cap {usd(key_cap)})")
    return payer


def agent_generates_images(agent: Payer, settings: DemoSettings, say: Say) -> None:
    """One image per request, at an ordinary agent's pace; every payment is a voucher signed by the session key."""
    for number in range(1, settings.images + 1):
        agent.client.fetch_json("POST", "/v1/images", params={"n": 1},
                                json={"prompt": f"a lighthouse at dawn, variation {number}"})
        if number % 5 == 0 or number == settings.images:
            say(f"   [agent] {number} images generated, {usd(agent.paid)} paid, "
                f"{usd(agent.client.remaining_balance())} left in the channel")
        time.sleep(settings.image_pause_s)


@dataclass
class Ride:
    """The rider's session, shared with the thread that changes the merchant's rates during it."""

    started_at: float = 0.0
    started: threading.Event = field(default_factory=threading.Event)
    billed_minutes: int = 0
    billed: int = 0
    error: str | None = None


def rider_rents_a_car(rider: Payer, rides_url: str, settings: DemoSettings, ride: Ride, say: Say) -> None:
    """Start, a tick per started (demo) minute from a timer thread, stop: the last minute is paid at the stop."""

    def on_tick(record: TickRecord) -> None:
        first = record.billed_units - record.units + 1
        minutes = f"minute {first}" if record.units == 1 else f"minutes {first}-{record.billed_units}"
        say(f"   [rider] {minutes}: {usd(record.amount)} (ride so far {usd(session.billed_amount)})")

    def on_error(exc: Exception) -> None:
        ride.error = str(exc)

    session = MeteredSession(rider.client.scheme, HttpMeteredMerchant(rides_url), on_tick=on_tick, on_error=on_error)
    say(f"   [rider] unlocks a car: a metered session, the first minute paid at the start, then one voucher per "
        f"started minute ({settings.minute_seconds} s each in this demo)")
    try:
        session.start()
    except PaymentRequiredError as exc:
        raise DemoFailed(f"the car did not unlock: {exc}") from exc
    ride.started_at = time.monotonic()
    ride.started.set()
    time.sleep(max((settings.ride_minutes - 0.5) * settings.minute_seconds - (time.monotonic() - ride.started_at), 0))
    try:
        ride.billed_minutes = session.stop()
    except PaymentRequiredError as exc:
        ride.error = str(exc)
    ride.billed = session.billed_amount
    if ride.error is None and session.error is not None:
        ride.error = str(session.error)
    say(f"   [rider] car returned after {ride.billed_minutes} minutes: {usd(ride.billed)}"
        + (f" — the ride ended early: {ride.error}" if ride.error else ""))


def runaway_spikes(runaway: Payer, settings: DemoSettings, say: Say) -> None:
    """A script in a loop: many images per request, many requests per second, until the merchant refuses."""
    images = settings.runaway_images_per_request
    for number in range(1, settings.runaway_max_requests + 1):
        try:
            runaway.client.fetch_json("POST", "/v1/images", params={"n": images},
                                      json={"prompt": "the same picture again, faster"})
            say(f"   [runaway] request {number}: {images} images, {usd(runaway.paid)} paid so far")
        except PaymentRequiredError as exc:
            runaway.refusals.append(exc.reason)
            say(f"   [runaway] request {number} refused by the API: {exc.reason}")
            if len(runaway.refusals) >= 3:
                return
        time.sleep(settings.runaway_pause_s)


def agent_budget(merchant: str) -> BudgetPolicy:
    """The agent's own guard, whatever a server asks: at most 1 U a request, 10 U a minute, this merchant only."""
    return BudgetPolicy(max_per_request=UNIT, max_per_minute=10 * UNIT, allowed_payees=frozenset({merchant}))
