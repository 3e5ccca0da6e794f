"""The whole story on a local chain, in one process tree that it starts and stops itself:

relayer (a child process) + webhook listener -> two paid APIs with their gateways -> three payers join ->
the agent generates images while the rider rents a car (the merchant switches peak pricing on mid-ride) ->
a runaway script spikes, the Sentinel freezes its key and notifies -> what is left is settled -> summary.

`run_demo(world, settings, say=...)` needs only an RPC URL, the deployed addresses and funded keys
(`DemoWorld`): `ape run demo` deploys first and calls it; the end-to-end test calls it with its own fixtures.
Everything started here is stopped on return, on an error and on Ctrl-C.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
from eth_account import Account
from protocolbanks.devtools.demo_config import DemoFailed, DemoSettings, DemoWorld, Say, short, usd
from protocolbanks.devtools.demo_merchant import IMAGES, RIDES, MerchantApis, PaymentBook, merchant_apis
from protocolbanks.devtools.demo_payers import (
    Payer,
    Ride,
    agent_budget,
    agent_generates_images,
    join_the_merchant,
    rider_rents_a_car,
    runaway_spikes,
)
from protocolbanks.devtools.demo_report import (
    DemoReport,
    FreezeLine,
    PayerLine,
    SettlementWatcher,
    confirmed_settlements,
    parse_detail,
    render,
    sentinel_trips,
    service_lines,
)
from protocolbanks.devtools.demo_services import RelayerProcess, WebhookListener, library_logs_to
from protocolbanks.devtools.thread_server import free_port
from protocolbanks.relayer.store import VoucherStore
from protocolbanks.sdk.erc20 import erc20
from protocolbanks.sdk.payer import BudgetPolicy
from web3 import Web3


def relayer_settings(world: DemoWorld, settings: DemoSettings, *, chain_id: int, port: int, database_url: str,
                     webhook_url: str, from_block: int) -> dict[str, str]:
    """The relayer's configuration as PB_RELAYER_* environment variables (see protocolbanks.relayer.config)."""
    return {
        "PB_RELAYER_RPC_URL": world.rpc_url, "PB_RELAYER_CHAIN_ID": str(chain_id),
        "PB_RELAYER_CONTRACT": Web3.to_checksum_address(world.channels),
        "PB_RELAYER_PAYEE": Account.from_key(world.merchant_key).address,
        "PB_RELAYER_PAYEE_PRIVATE_KEY": world.merchant_key,
        "PB_RELAYER_GUARDIAN_PRIVATE_KEY": world.guardian_key,
        "PB_RELAYER_NOTIFY_WEBHOOK_URL": webhook_url,
        "PB_RELAYER_DATABASE_URL": database_url, "PB_RELAYER_LISTEN_PORT": str(port),
        "PB_RELAYER_POLL_INTERVAL_MS": str(settings.poll_interval_ms), "PB_RELAYER_FROM_BLOCK": str(from_block),
        "PB_RELAYER_REORG_DEPTH": "0",
        "PB_RELAYER_SETTLEMENT__THRESHOLD": str(settings.settle_threshold),
        "PB_RELAYER_SETTLEMENT__INTERVAL_S": str(settings.settle_interval_s),
        "PB_RELAYER_SETTLEMENT__CONFIRMATIONS": "0",
        "PB_RELAYER_SENTINEL__SPIKE_WINDOW_S": str(settings.spike_window_s),
        "PB_RELAYER_SENTINEL__SPIKE_RATIO": str(settings.spike_ratio),
        "PB_RELAYER_SENTINEL__SPIKE_FLOOR_PER_S": str(settings.spike_floor_per_s),
    }


def wait_until(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise DemoFailed(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.2)


class Worker:
    """A story line on its own thread; `join()` re-raises what it raised."""

    def __init__(self, name: str, work: Callable[[], None]) -> None:
        self.error: BaseException | None = None

        def run() -> None:
            try:
                work()
            except BaseException as exc:
                self.error = exc

        self.thread = threading.Thread(target=run, name=f"pb-demo-{name}", daemon=True)
        self.thread.start()

    def join(self) -> None:
        self.thread.join()
        if self.error is not None:
            raise self.error


def run_demo(world: DemoWorld, settings: DemoSettings | None = None, *, say: Say = print) -> DemoReport:
    """Runs the story; returns the facts of the summary (already printed through `say`)."""
    settings = settings or DemoSettings()
    workdir = Path(tempfile.mkdtemp(prefix="pb-demo-"))
    try:
        report = _run(world, settings, say, workdir)
    except Exception as exc:
        message = str(exc) if isinstance(exc, DemoFailed) else f"{type(exc).__name__}: {exc}"
        raise DemoFailed(f"{message}\n(logs kept in {workdir}: relayer.log, libraries.log)") from exc
    except BaseException:  # Ctrl-C, SystemExit: everything is stopped already; nothing worth keeping
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    shutil.rmtree(workdir, ignore_errors=True)
    for line in render(report):
        say(line)
    return report


def _run(world: DemoWorld, settings: DemoSettings, say: Say, workdir: Path) -> DemoReport:
    w3 = Web3(Web3.HTTPProvider(world.rpc_url, request_kwargs={"timeout": 30}))
    chain_id, from_block = w3.eth.chain_id, w3.eth.block_number
    merchant = Account.from_key(world.merchant_key).address
    guardian = Account.from_key(world.guardian_key).address
    token = erc20(w3, world.token)
    merchant_before = int(token.functions.balanceOf(merchant).call())
    with ExitStack() as stack:
        stack.enter_context(library_logs_to(workdir / "libraries.log"))
        webhook = stack.enter_context(WebhookListener(on_event=lambda event: say(
            f"   [webhook] Sentinel alert for payer {short(str(event.get('payer')))}: {event.get('reason')}, "
            f"key {short(str(event.get('signer')))} frozen on-chain (tx {short(str(event.get('freezeTx')), 18)}); "
            "the payer may lift the freeze if the spending was its own, or confirm it to revoke the key")))
        database_url = f"sqlite:///{workdir / 'relayer.db'}"
        relayer = stack.enter_context(RelayerProcess(relayer_settings(
            world, settings, chain_id=chain_id, port=free_port(), database_url=database_url,
            webhook_url=webhook.url, from_block=from_block), workdir / "relayer.log"))
        say(f"2. Relayer started as its own process (pid {relayer.pid}) on {relayer.url} for merchant "
            f"{short(merchant)}:\n   settles a channel at {usd(settings.settle_threshold)} unsettled (one redeemBatch "
            f"for every channel due), guardian {short(guardian)} freezes a key that spends more than "
            f"{usd(settings.spike_trips_above)} within {settings.spike_window_s} s, alerts go to the webhook "
            f"{webhook.url}")
        store = VoucherStore(database_url)
        stack.callback(store.engine.dispose)
        book = PaymentBook()
        apis = stack.enter_context(merchant_apis(world, settings, relayer_url=relayer.url, from_block=from_block,
                                                 book=book))
        say(f"3. Paid APIs on loopback, each verifying vouchers locally and forwarding them to the relayer:\n"
            f"   image generation {apis.image_url}/v1/images at {settings.image_price} U per image\n"
            f"   car rental       {apis.rides_url} at {usd(settings.ride_price)} per started minute x the "
            f"'peak' multiplier (now 1; rate API {apis.car_url}/v1/rates)\n"
            f"   (a demo minute lasts {settings.minute_seconds} s)")
        watcher = stack.enter_context(SettlementWatcher(store, say))

        say("4. The payers join: deposit once, name the guardian, grant a session key")
        common: dict[str, Any] = {"relayer_url": relayer.url, "merchant": merchant, "guardian": guardian,
                                  "workdir": workdir, "say": say}
        agent = join_the_merchant("agent", world.agent_key, world, settings, base_url=apis.image_url,
                                  deposit=settings.agent_deposit, key_cap=settings.agent_key_cap, max_per_payment=10**6,
                                  budget=agent_budget(merchant), **common)
        rider = join_the_merchant("rider", world.rider_key, world, settings, base_url=apis.car_url,
                                  deposit=settings.rider_deposit, key_cap=settings.rider_key_cap,
                                  max_per_payment=10**6, budget=replace(agent_budget(merchant), max_per_minute=None),
                                  **common)
        runaway = join_the_merchant("runaway", world.runaway_key, world, settings, base_url=apis.image_url,
                                    deposit=settings.runaway_deposit, key_cap=settings.agent_key_cap,
                                    max_per_payment=0, budget=BudgetPolicy(), **common)
        payers = [agent, rider, runaway]
        for payer in payers:
            stack.callback(payer.client.close_http)

        say(f"5. The agent generates {settings.images} images silently while the rider rents a car for "
            f"{settings.ride_minutes} minutes")
        ride = Ride()
        agent_line = Worker("agent", lambda: agent_generates_images(agent, settings, say))
        rider_line = Worker("rider", lambda: rider_rents_a_car(rider, apis.rides_url, settings, ride, say))
        _peak_hour(apis, settings, ride, say)
        agent_line.join()
        rider_line.join()

        say(f"6. A runaway script on another channel asks for {settings.runaway_images_per_request} images per "
            f"request, {1 / settings.runaway_pause_s:.0f} requests a second")
        runaway_spikes(runaway, settings, say)
        wait_until(lambda: bool(webhook.events), 15, "the Sentinel's webhook notification")

        say("7. Closing time: the gateways hand over their last vouchers and the payers ask the relayer to settle "
            "what is left now (their settle(); otherwise the relayer's interval would)")
        _settle_everything(apis, payers, store, say)
        watcher.poll()
        report = _collect(book, payers, store, webhook.events, settings,
                          int(token.functions.balanceOf(merchant).call()) - merchant_before)
    say(f"8. Stopped the two APIs (their gateways flushed), the relayer (pid {relayer.pid}) and the webhook listener")
    return report


def _peak_hour(apis: MerchantApis, settings: DemoSettings, ride: Ride, say: Say) -> None:
    """The merchant's rush hour: during minute `peak_from_minute` it sets the peak multiplier via its rate API."""
    if not ride.started.wait(60):
        return  # the rider's thread failed to start the ride; its error surfaces when it is joined
    change_at = ride.started_at + (settings.peak_from_minute - 0.5) * settings.minute_seconds
    time.sleep(max(change_at - time.monotonic(), 0))
    answer = apis.set_multiplier("peak", settings.peak_multiplier)
    change = answer["change"]
    say(f"   [car API] rush hour: the merchant sets 'peak' {change['old']} -> {change['new']} through its rate API "
        f"(PUT /v1/rates/rides/multipliers/peak, card version {change['version']}, recorded at {change['at']}); "
        f"minutes from now on cost more")


def _settle_everything(apis: MerchantApis, payers: list[Payer], store: VoucherStore, say: Say) -> None:
    if not apis.flush():
        raise DemoFailed("the gateways could not deliver every voucher to the relayer")

    def ask(payer: Payer, http: httpx.Client) -> str:
        try:
            return str(payer.client.account.settle(client=http).get("status"))  # = PBStreamClient.settle()
        except httpx.HTTPError as exc:
            return f"not asked: {exc}"

    # all at once, so that the relayer's next round takes them in one batch
    with httpx.Client(timeout=10) as http, ThreadPoolExecutor(len(payers)) as pool:
        answers = list(pool.map(lambda payer: ask(payer, http), payers))
    say("   " + ", ".join(f"[{payer.name}] settle(): {answer}" for payer, answer in zip(payers, answers, strict=True)))

    def all_settled() -> bool:
        for payer in payers:
            progress = store.channel_progress(payer.channel_id)
            if progress is not None and progress.unsettled > 0:
                return False
        return True

    wait_until(all_settled, 60, "the relayer to settle every accepted payment")


def _collect(book: PaymentBook, payers: list[Payer], store: VoucherStore, notifications: list[dict[str, Any]],
             settings: DemoSettings, merchant_received: int) -> DemoReport:
    by_channel = {"0x" + payer.channel_id.hex(): payer for payer in payers}
    freezes = []
    for event in sentinel_trips(store):
        detail = parse_detail(event.get("detail"))
        payer = by_channel.get(str(event["channelId"]))
        freezes.append(FreezeLine(payer.name if payer else "unknown payer", str(event["channelId"]),
                                  str(event["signer"]), str(event["reason"]), detail,
                                  detail.get("freezeTx") if isinstance(detail.get("freezeTx"), str) else None,
                                  any(n.get("channelId") == event["channelId"] for n in notifications)))
    lines, settled_payments, not_settled, not_settled_payments = [], 0, 0, 0
    for payer in payers:
        state = payer.client.account.refresh()
        payments = book.of_channel(payer.channel_id)
        settled_payments += sum(1 for p in payments if p.cumulative <= state.claimed)
        late = [p for p in payments if p.cumulative > state.claimed]
        not_settled += sum(p.amount for p in late)
        not_settled_payments += len(late)
        lines.append(PayerLine(payer.name, payer.account.address, state.deposit, sum(p.amount for p in payments),
                               state.claimed, state.deposit - state.claimed, tuple(payer.refusals)))
    services = service_lines(book, {payer.account.address.lower(): payer.name for payer in payers}, [IMAGES, RIDES])
    return DemoReport(services, confirmed_settlements(store), freezes, lines, merchant_received, settled_payments,
                      not_settled, not_settled_payments, settings.minute_seconds, settings.spike_trips_above,
                      settings.spike_window_s)
