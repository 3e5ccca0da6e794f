"""The gateway's channel book on its own: exact cumulative, one request per channel at a time (threads and
asyncio), commit / release / credit, abandoned reservations, refusals with their wire codes, a stale chain view;
the x402 server scheme's parse_price; the chain follower on the in-process chain."""

import asyncio
import threading
import time
from dataclasses import replace
from decimal import Decimal

import pytest
from eth_account import Account
from protocolbanks.sdk import ChannelDomain, LaneTerms, Voucher
from protocolbanks.sdk.acceptance import ChannelSnapshot
from protocolbanks.sdk.gateway import GatewayChannelBook, PbChannelServerScheme, VoucherRefused, to_amount
from protocolbanks.sdk.x402.wire import VoucherPayload

U = 10**6
PRICE = U // 10
DOMAIN = ChannelDomain(31337, "0x5FbDB2315678afecb367f032d93F642f64180aa3")
KEY = Account.create()
PAYEE, TOKEN = "0x00000000000000000000000000000000000000a2", "0x00000000000000000000000000000000000000a3"
TERMS = LaneTerms(ceiling=5 * U, period_cap=0, period_length=0, valid_until=2**39, epoch=1)
CHANNEL = b"\x0c" * 32
SNAPSHOT = ChannelSnapshot(CHANNEL, "0x00000000000000000000000000000000000000a1", PAYEE, TOKEN, KEY.address, TERMS,
                           deposit=10 * U, claimed=0)


def voucher(cumulative: int, *, key=KEY.key, terms=TERMS) -> VoucherPayload:
    return VoucherPayload(CHANNEL, cumulative, terms, Voucher(CHANNEL, terms.epoch, cumulative).sign(DOMAIN, key))


def book_with(snapshot=SNAPSHOT, **options) -> tuple[GatewayChannelBook, list]:
    forwarded: list = []
    book = GatewayChannelBook(DOMAIN, {CHANNEL: snapshot}.get, payee=PAYEE, token=TOKEN,
                              on_commit=forwarded.append, **options)
    return book, forwarded


def refusal(book, payload, price=PRICE) -> VoucherRefused:
    with pytest.raises(VoucherRefused) as refused:
        book.reserve(payload, price)
    return refused.value


def test_commit_release_and_exact_cumulative():
    book, forwarded = book_with()
    held = book.reserve(voucher(PRICE), PRICE)
    assert held.receipt.remaining == 5 * U - PRICE and held.receipt.amount == PRICE
    assert book.release(held) and not book.release(held)
    assert forwarded == [] and book.accepted(CHANNEL) == 0
    receipt = book.commit(book.reserve(voucher(PRICE), PRICE))
    assert receipt.cumulative == PRICE and [v.cumulative for v in forwarded] == [PRICE]
    assert refusal(book, voucher(PRICE)).code == "pb_cumulative_mismatch"  # replay: no double charge
    mismatch = refusal(book, voucher(3 * PRICE))  # skips ahead
    assert mismatch.code == "pb_cumulative_mismatch" and mismatch.accepted == PRICE
    assert book.state(CHANNEL).to_dict() == {"channelId": "0x" + CHANNEL.hex(), "chargedCumulativeAmount": str(PRICE),
                                             "remaining": str(5 * U - PRICE)}


def test_refusals_carry_wire_codes():
    book, _ = book_with()
    assert refusal(book, voucher(PRICE, key=Account.create().key)).code == "signer_not_authorised"
    assert refusal(book, voucher(6 * U), price=6 * U).code == "exceeds_total_cap"
    other_terms = replace(TERMS, period_cap=1)
    assert refusal(book, voucher(PRICE, terms=other_terms)).code == "signer_not_authorised"
    forged = replace(voucher(PRICE), cumulative=2 * PRICE)
    assert refusal(book, forged, price=2 * PRICE).code in ("signer_not_authorised", "invalid_signature")
    wrong_payee, _ = book_with(replace(SNAPSHOT, payee=TOKEN))
    assert refusal(wrong_payee, voucher(PRICE)).code == "pb_unknown_channel"
    frozen, _ = book_with(replace(SNAPSHOT, frozen=True))
    assert refusal(frozen, voucher(PRICE)).code == "channel_frozen"
    unknown = GatewayChannelBook(DOMAIN, {}.get, payee=PAYEE, token=TOKEN)
    assert refusal(unknown, voucher(PRICE)).code == "unknown_channel"
    claimed, _ = book_with(replace(SNAPSHOT, claimed=2 * PRICE))  # redeemed on-chain: the base moves up
    assert claimed.accepted(CHANNEL) == 2 * PRICE and refusal(claimed, voucher(PRICE)).accepted == 2 * PRICE
    with pytest.raises(ValueError):
        book.reserve(voucher(0), 0)


def test_one_request_per_channel_at_a_time__threads():
    book, _ = book_with()
    barrier = threading.Barrier(8)
    outcomes: list = []

    def attempt() -> None:
        barrier.wait()
        try:
            outcomes.append(book.reserve(voucher(PRICE), PRICE))
        except VoucherRefused as refused:
            outcomes.append(refused.code)

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [o for o in outcomes if not isinstance(o, str)]
    assert len(winners) == 1 and sorted(o for o in outcomes if isinstance(o, str)) == ["pb_channel_busy"] * 7
    book.commit(winners[0])
    assert book.accepted(CHANNEL) == PRICE


def test_asyncio__lookup_in_a_thread_then_reserve():
    calls = []

    def lookup(channel_id: bytes) -> int:
        calls.append(threading.current_thread() is threading.main_thread())
        return 4 * PRICE

    book, _ = book_with(accepted_lookup=lookup)

    async def main() -> int:
        await book.aensure_loaded(CHANNEL)
        return book.commit(book.reserve(voucher(5 * PRICE), PRICE)).cumulative

    assert asyncio.run(main()) == 5 * PRICE and calls == [False]


def test_abandoned_reservation_expires():
    now = [100.0]
    book, _ = book_with(monotonic=lambda: now[0], reservation_ttl=30)
    abandoned = book.reserve(voucher(PRICE), PRICE)
    assert refusal(book, voucher(PRICE)).code == "pb_channel_busy"
    now[0] += 31
    book.commit(book.reserve(voucher(PRICE), PRICE))
    with pytest.raises(VoucherRefused):  # the abandoned request comes back too late: the channel moved on
        book.commit(abandoned)
    assert book.accepted(CHANNEL) == PRICE


def test_credit_after_commit_serves_one_replay():
    book, forwarded = book_with()
    held = book.reserve(voucher(PRICE), PRICE)
    book.commit(held)
    assert book.credit(held) == PRICE
    replay = book.reserve(voucher(PRICE), PRICE)
    assert replay.credited and replay.receipt.amount == 0
    book.commit(replay)
    assert book.credit_of(CHANNEL) == 0 and len(forwarded) == 1 and book.accepted(CHANNEL) == PRICE
    assert refusal(book, voucher(PRICE)).code == "pb_cumulative_mismatch"


def test_scheme_parse_price__integers_and_decimals_never_floats():
    book, _ = book_with()
    scheme = PbChannelServerScheme(book)
    assert scheme.parse_price(100_000, "eip155:31337").amount == "100000"
    assert scheme.parse_price(Decimal("0.25"), "eip155:31337").amount == "250000"
    assert scheme.parse_price("1.5", "eip155:31337").asset == TOKEN
    with pytest.raises(TypeError):
        scheme.parse_price(0.1, "eip155:31337")
    with pytest.raises(ValueError):
        to_amount("0.0000001", decimals=6)


def test_stale_chain_view__refused():
    lag = [5.0]
    book, _ = book_with(chain_lag=lambda: lag[0], max_chain_lag_s=60)
    book.commit(book.reserve(voucher(PRICE), PRICE))
    lag[0] = 61.0  # the RPC has been down for a minute: a freeze could be hidden
    assert refusal(book, voucher(2 * PRICE)).code == "chain_unavailable"


def test_chain_follower__keeps_the_view_current(chain, channels, open_channel, guardian):
    from gateway_harness import make_env
    from protocolbanks.sdk.gateway import ChainFollower

    env = make_env(chain, channels, open_channel)
    follower = ChainFollower(env.cache, interval=0.01).start()
    deadline = time.monotonic() + 10
    while follower.polls < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    follower.stop()
    assert follower.polls >= 2 and follower.seconds_behind() < 5
    env.channel.contract.setGuardian(guardian, sender=env.channel.payer)  # chain calls only while it is stopped
    env.channel.contract.freeze(env.channel.config, sender=guardian)
    assert not env.cache.get(env.channel.id).frozen
    follower.start()
    while not env.cache.get(env.channel.id).frozen and time.monotonic() < deadline:
        time.sleep(0.01)
    follower.stop()
    assert env.cache.get(env.channel.id).frozen


def test_hold__refuses_the_channel_until_it_ends_then_serves_again():
    now = [100.0]
    book, forwarded = book_with(monotonic=lambda: now[0])
    book.commit(book.reserve(voucher(PRICE), PRICE))
    book.hold(CHANNEL, "sentinel_key_tripped", 60)
    refused = refusal(book, voucher(2 * PRICE))
    assert refused.code == "pb_sentinel_hold" and "sentinel_key_tripped" in str(refused)
    now[0] += 59
    assert refusal(book, voucher(2 * PRICE)).code == "pb_sentinel_hold"
    now[0] += 1
    assert book.commit(book.reserve(voucher(2 * PRICE), PRICE)).cumulative == 2 * PRICE
    assert [v.cumulative for v in forwarded] == [PRICE, 2 * PRICE]


def test_merchant_gateway__sentinel_refusal_from_the_relayer_holds_the_channel():
    from protocolbanks.sdk.gateway import MerchantGateway, RelayerForwarder

    answers = {PRICE: (429, {"status": "rejected", "reason": "sentinel_max_per_minute"})}
    seen: list = []

    def post(body):
        return answers.get(int(body["cumulativeAmount"]), (200, {"status": "accepted"}))

    book = GatewayChannelBook(DOMAIN, {CHANNEL: SNAPSHOT}.get, payee=PAYEE, token=TOKEN)
    forwarder = RelayerForwarder("http://relayer.invalid", DOMAIN.chain_id, post=post, linger=0,
                                 on_rejected=lambda v, status, answer: seen.append((v.cumulative, status)))
    gateway = MerchantGateway(book, forwarder=forwarder.start(), sentinel_hold_s=30)
    try:
        book.commit(book.reserve(voucher(PRICE), PRICE))
        assert forwarder.flush(5)
        assert refusal(book, voucher(2 * PRICE)).code == "pb_sentinel_hold"
        assert seen == [(PRICE, 429)]  # the merchant's own callback still runs
    finally:
        gateway.stop()
