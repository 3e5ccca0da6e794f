"""MeteredSession against the real gateway's metered service (protocolbanks.sdk.gateway.metered) on loopback and
the in-process chain: a ride billed per started minute, one cumulative voucher per tick and no chain step in
between, priced from the merchant's published card (a peak window that begins mid-ride)."""

import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from conftest import UNIT
from eth_account import Account
from fastapi import FastAPI
from gateway_harness import serve_asgi
from protocolbanks.sdk.chain_view import ChainCache
from protocolbanks.sdk.gateway import GatewayChannelBook, MerchantGateway
from protocolbanks.sdk.gateway.metered import MeteredService, metered_router
from protocolbanks.sdk.payer import (
    FAST_TEST_KDF,
    BudgetExceeded,
    BudgetGuard,
    BudgetPolicy,
    ChannelLedger,
    HttpMeteredMerchant,
    MeteredSession,
    PaymentRequiredError,
    PbChannelClientScheme,
    PBStreamClient,
    RefusalReason,
    ResyncRefused,
    SessionKeyStore,
)
from protocolbanks.sdk.pricing import RateCard, TimeWindow
from protocolbanks.sdk.typed_data import ChannelDomain

PER_MINUTE = 20_000
T0 = datetime(2026, 11, 22, 16, 58, tzinfo=UTC)  # two minutes before the evening peak


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def ride_card() -> RateCard:
    peak = TimeWindow(datetime(2026, 1, 1, 17).time(), datetime(2026, 1, 1, 20).time(), Decimal("1.5"), "peak")
    return RateCard(PER_MINUTE, unit="minute", windows=[peak], effective_at=T0 - timedelta(days=1))


@pytest.fixture
def rider(chain, channels, token, payee, deployer, tmp_path):
    """A rider's payer client with a 5 U channel and a 24 h / 2 U session key, and the car's merchant gateway."""
    account = Account.create()
    deployer.transfer(account.address, 10**18)
    token.mint(account.address, 10 * UNIT, sender=deployer)
    cache = ChainCache(chain.provider.web3, channels.address, reorg_depth=0)
    offset = chain.pending_timestamp - time.time()
    book = GatewayChannelBook(ChannelDomain(chain.chain_id, channels.address),
                              lambda cid: (cache.poll(), cache.get(cid))[1], payee=payee.address,
                              token=token.address, clock=lambda: time.time() + offset)
    committed = []
    book.on_commit = committed.append
    client = PBStreamClient("http://unused", w3=chain.provider.web3, contract=channels.address, payer=account,
                            key_store=SessionKeyStore(tmp_path / "keys", kdf=FAST_TEST_KDF), passphrase="pw")
    config = client.open_channel(payee.address, token.address, 5 * UNIT)
    client.grant_session_key(total_cap=2 * UNIT)
    return client, config, MerchantGateway(book), committed


def car(gateway, clock, *, unit_seconds: int = 60):
    service = MeteredService(gateway, ride_card(), unit_seconds=unit_seconds, clock=clock)
    app = FastAPI()
    app.include_router(metered_router(service, prefix="/meter"))
    return service, serve_asgi(app)


def test_ride_billed_per_started_minute_with_a_peak(rider, channels, token, payee):
    client, config, gateway, committed = rider
    clock = Clock(T0)
    service, server = car(gateway, clock)
    ticks = []
    with server as url:
        ride = MeteredSession(client.scheme, HttpMeteredMerchant(f"{url}/meter"), clock=clock, on_tick=ticks.append)
        ride.start(now=T0, auto=False)  # the first minute is paid when it starts
        clock.now = T0 + timedelta(seconds=30)
        assert ride.tick() is None  # nothing new within the minute
        clock.now = T0 + timedelta(seconds=61)
        second = ride.tick()
        assert (second.units, second.amount, second.cumulative) == (1, PER_MINUTE, 2 * PER_MINUTE)
        clock.now = T0 + timedelta(minutes=5)
        catch_up = ride.tick()  # minutes 3..6 in one voucher, all in the 17:00 peak (x1.5)
        assert (catch_up.units, catch_up.amount) == (4, 4 * 30_000)
        clock.now = T0 + timedelta(minutes=5, seconds=30)
        assert ride.stop() == 6

    total = 2 * PER_MINUTE + 4 * 30_000
    assert [t.cumulative for t in ticks] == [PER_MINUTE, 2 * PER_MINUTE, total]
    state = service.session(ride.session_id).state(clock.now)
    assert (state["billedUnits"], state["chargedAmount"], state["owedAmount"]) == (6, str(total), "0")
    assert gateway.book.accepted(config.channel_id) == total == ride.billed_amount
    entry = client.ledger.entry(config.channel_id)
    assert (entry.charged, entry.signed_max, entry.units) == (total, total, 6)
    newest = committed[-1]  # no chain step during the ride; the newest voucher settles it all
    channels.redeem(payee, token, (newest.channel_id, newest.cumulative, newest.terms.pack(), newest.signature.r,
                                   newest.signature.vs), sender=payee)
    assert channels.channelState(config.as_tuple()).claimed == total


def test_timer_ticks_every_unit_until_stopped(rider):
    client, config, gateway, _ = rider
    _, server = car(gateway, lambda: datetime.now(UTC), unit_seconds=1)
    ticks = []
    with server as url:
        ride = MeteredSession(client.scheme, HttpMeteredMerchant(f"{url}/meter"), on_tick=ticks.append)
        ride.start()  # real clock, timer thread
        time.sleep(2.4)
        billed = ride.stop()
    assert billed == 3 and ride.error is None  # seconds 0, 1 and 2 were started
    assert sum(t.units for t in ticks) == 3
    assert gateway.book.accepted(config.channel_id) == ride.billed_amount > 0


def test_unanswered_voucher_is_resynchronised(rider):
    client, config, gateway, _ = rider
    clock = Clock(T0)
    _, server = car(gateway, clock)
    with server as url:
        MeteredSession(client.scheme, HttpMeteredMerchant(f"{url}/meter"), clock=clock).start(now=T0, auto=False)
        # the same payer after a crash: its persisted ledger knows it signed 20000 but saw no confirmation
        ledger = ChannelLedger()
        ledger.record_signed(config.channel_id, PER_MINUTE, {"cumulativeAmount": str(PER_MINUTE)})
        restarted = PbChannelClientScheme(ledger, BudgetGuard(BudgetPolicy()), client.scheme.bindings())
        second = MeteredSession(restarted, HttpMeteredMerchant(f"{url}/meter"), clock=clock)
        second.start(now=T0, auto=False)
    assert second.ticks[0].cumulative == 2 * PER_MINUTE
    assert gateway.book.accepted(config.channel_id) == 2 * PER_MINUTE


def test_a_base_this_client_never_signed_is_refused(rider):
    client, config, gateway, _ = rider
    clock = Clock(T0)
    _, server = car(gateway, clock)
    with server as url:
        first = MeteredSession(client.scheme, HttpMeteredMerchant(f"{url}/meter"), clock=clock)
        first.start(now=T0, auto=False)
        clock.now = T0 + timedelta(seconds=61)
        first.tick()  # 40000 accepted on the channel
        # a client that lost all its state signs 20000; the merchant's base 40000 is above anything it signed
        stranger = PbChannelClientScheme(ChannelLedger(), BudgetGuard(BudgetPolicy()), client.scheme.bindings())
        with pytest.raises(ResyncRefused) as refused:
            MeteredSession(stranger, HttpMeteredMerchant(f"{url}/meter"), clock=clock).start(auto=False)
    assert refused.value.reason is RefusalReason.MERCHANT_BASE_ABOVE_SIGNED
    entry = stranger.ledger.entry(config.channel_id)
    assert (entry.charged, entry.signed_max) == (0, PER_MINUTE)
    assert gateway.book.accepted(config.channel_id) == 2 * PER_MINUTE


def test_budget_guard_applies_to_every_tick(rider):
    client, config, gateway, _ = rider
    clock = Clock(T0)
    _, server = car(gateway, clock)
    guarded = PbChannelClientScheme(ChannelLedger(), BudgetGuard(BudgetPolicy(max_per_request=25_000)),
                                    client.scheme.bindings())
    with server as url:
        ride = MeteredSession(guarded, HttpMeteredMerchant(f"{url}/meter"), clock=clock)
        ride.start(now=T0, auto=False)
        clock.now = T0 + timedelta(minutes=2)  # 17:00: a peak minute costs 30000
        with pytest.raises(BudgetExceeded) as refused:
            ride.tick()
    assert refused.value.reason is RefusalReason.OVER_MAX_PER_REQUEST
    assert gateway.book.accepted(config.channel_id) == PER_MINUTE and ride.billed_units == 1


def test_the_merchant_refuses_a_start_far_from_its_clock(rider):
    client, config, gateway, _ = rider
    clock = Clock(T0)
    _, server = car(gateway, clock)
    with server as url, pytest.raises(PaymentRequiredError) as refused:
        MeteredSession(client.scheme, HttpMeteredMerchant(f"{url}/meter"), clock=clock).start(
            now=T0 - timedelta(hours=1), auto=False)
    assert refused.value.reason == "pb_meter_start_skew"
    assert gateway.book.accepted(config.channel_id) == 0


def test_a_multiplier_changed_mid_ride_prices_the_minutes_that_begin_after_it(rider):
    client, config, gateway, _ = rider
    start = T0 - timedelta(hours=2)  # 14:58: outside the peak window
    clock = Clock(start)
    card = RateCard(PER_MINUTE, unit="minute", multipliers={"surge": "1"}, clock=clock,
                    effective_at=T0 - timedelta(days=1))
    app = FastAPI()
    app.include_router(metered_router(MeteredService(gateway, card, clock=clock), prefix="/meter"))
    with serve_asgi(app) as url:
        ride = MeteredSession(client.scheme, HttpMeteredMerchant(f"{url}/meter"), clock=clock)
        ride.start(now=start, auto=False)  # minute 1 at the card the session read at its start
        clock.now = start + timedelta(seconds=90)
        card.set_multiplier("surge", "1.5")  # the merchant's rate API, during minute 2
        clock.now = start + timedelta(seconds=150)
        record = ride.tick()  # minute 2 began before the change, minute 3 after it
        assert (record.units, record.amount) == (2, PER_MINUTE + 30_000)
        clock.now = start + timedelta(seconds=170)
        assert ride.stop() == 3
    assert gateway.book.accepted(config.channel_id) == 2 * PER_MINUTE + 30_000 == ride.billed_amount
