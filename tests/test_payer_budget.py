"""The payer's budget guard: every limit, and a real merchant that asks too much gets nothing signed."""

import httpx
import pytest
from eth_account import Account
from payer_merchant import MerchantBook, PaidRoute, build_merchant, serve
from protocolbanks.sdk.lane_terms import LaneTerms
from protocolbanks.sdk.payer import (
    BudgetExceeded,
    BudgetGuard,
    BudgetPolicy,
    ChannelBinding,
    ChannelLedger,
    PaymentAsk,
    PbChannelClientScheme,
    PBSyncTransport,
    RefusalReason,
    SessionKey,
)
from protocolbanks.sdk.payer_channels import SessionKeyPolicy
from protocolbanks.sdk.pricing import RateCard
from protocolbanks.sdk.typed_data import ChannelDomain
from x402 import x402ClientSync

PAYEE = Account.create().address
TOKEN = "0x" + "ab" * 20
DOMAIN = ChannelDomain(31337, "0x" + "cd" * 20)
CARD = RateCard(100_000, unit="image")


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def ask(amount: int = 100_000, **fields) -> PaymentAsk:
    return PaymentAsk(amount=amount, pay_to=fields.pop("pay_to", PAYEE), rate=fields.pop("rate", None), **fields)


def refusal(guard: BudgetGuard, payment: PaymentAsk) -> RefusalReason:
    with pytest.raises(BudgetExceeded) as refused:
        guard.authorize(payment)
    return refused.value.reason


def test_max_per_request():
    guard = BudgetGuard(BudgetPolicy(max_per_request=100_000))
    guard.authorize(ask(100_000))
    assert refusal(guard, ask(100_001)) is RefusalReason.OVER_MAX_PER_REQUEST


def test_per_minute_window_slides():
    clock = Clock()
    guard = BudgetGuard(BudgetPolicy(max_per_minute=300_000), clock=clock)
    for _ in range(3):
        guard.authorize(ask())
        clock.now += 10
    assert refusal(guard, ask()) is RefusalReason.OVER_MAX_PER_MINUTE
    assert guard.spent(60) == 300_000
    clock.now += 31  # the first payment is now more than a minute old
    guard.authorize(ask())
    assert guard.spent(60) == 300_000


def test_per_hour_window_and_refusals_are_not_counted():
    clock = Clock()
    guard = BudgetGuard(BudgetPolicy(max_per_minute=10**9, max_per_hour=250_000), clock=clock)
    guard.authorize(ask())
    clock.now += 1000
    guard.authorize(ask())
    assert refusal(guard, ask()) is RefusalReason.OVER_MAX_PER_HOUR
    assert guard.spent(3600) == 200_000  # the refused ask left no trace
    clock.now += 2700
    guard.authorize(ask())


def test_windows_count_the_rise_of_the_signed_maximum():
    guard = BudgetGuard(BudgetPolicy(max_per_minute=150_000))
    guard.authorize(ask(), exposure=100_000)
    guard.authorize(ask(), exposure=0)  # re-signed after a merchant's correction: nothing new at stake
    assert guard.spent(60) == 100_000


def test_allowed_merchants_by_payee_and_by_host():
    guard = BudgetGuard(BudgetPolicy(allowed_payees=frozenset({PAYEE.upper().replace("0X", "0x")}),
                                     allowed_hosts=frozenset({"api.example.com", "127.0.0.1:8080"})))
    guard.authorize(ask(host="api.example.com"))
    guard.authorize(ask(host="127.0.0.1:8080"))
    assert refusal(guard, ask(host="evil.example.com")) is RefusalReason.HOST_NOT_ALLOWED
    assert refusal(guard, ask(host=None)) is RefusalReason.HOST_NOT_ALLOWED
    assert refusal(guard, ask(pay_to=Account.create().address, host="api.example.com")) \
        is RefusalReason.MERCHANT_NOT_ALLOWED


def test_published_rate_must_match_the_amount():
    BudgetGuard(BudgetPolicy()).authorize(ask(100_000))  # a fixed price publishes no card: the caps alone apply
    guard = BudgetGuard(BudgetPolicy(require_published_rate=True))
    guard.authorize(ask(100_000, rate=CARD.published()))
    guard.authorize(ask(300_000, rate=CARD.published(), units=3))
    assert refusal(guard, ask(100_001, rate=CARD.published())) is RefusalReason.PRICE_NOT_PUBLISHED_RATE
    assert refusal(guard, ask(100_000)) is RefusalReason.RATE_NOT_PUBLISHED
    assert refusal(guard, ask(100_000, rate={"format": "nonsense"})) is RefusalReason.INVALID_REQUIREMENT


def test_policy_mirroring_a_session_key():
    policy = BudgetPolicy.mirroring(SessionKeyPolicy(total_cap=50 * 10**6, valid_until=2**40, period_cap=10**6,
                                                     period_length=3600, max_per_payment=200_000))
    guard = BudgetGuard(policy)
    assert refusal(guard, ask(200_001)) is RefusalReason.OVER_MAX_PER_REQUEST
    for _ in range(5):
        guard.authorize(ask(200_000))
    assert refusal(guard, ask(1)) is RefusalReason.OVER_PERIOD_CAP


# --------------------------------------------------------------------------- a real merchant asking too much


def paying_client(policy: BudgetPolicy):
    ledger = ChannelLedger()
    binding = ChannelBinding(b"\x01" * 32, PAYEE, TOKEN, DOMAIN, LaneTerms.for_payer(1), SessionKey.generate())
    scheme = PbChannelClientScheme(ledger, BudgetGuard(policy), [binding])
    return scheme, ledger, binding.channel_id


@pytest.mark.parametrize("route, policy, reason", [
    (PaidRoute(CARD, overcharge=1), BudgetPolicy(), RefusalReason.PRICE_NOT_PUBLISHED_RATE),
    (PaidRoute(RateCard(2_000_000)), BudgetPolicy(max_per_request=1_000_000), RefusalReason.OVER_MAX_PER_REQUEST),
    (PaidRoute(CARD), BudgetPolicy(allowed_hosts=frozenset({"api.example.com"})), RefusalReason.HOST_NOT_ALLOWED),
])
def test_malicious_or_expensive_merchant_gets_nothing_signed(route, policy, reason):
    book = MerchantBook(DOMAIN)
    scheme, ledger, channel_id = paying_client(policy)
    with serve(build_merchant(book, {"/images": route}, pay_to=PAYEE, token=TOKEN)) as url, \
            httpx.Client(transport=PBSyncTransport(scheme.register_with(x402ClientSync())), base_url=url) as http:
        with pytest.raises(BudgetExceeded) as refused:
            http.get("/images")
    assert refused.value.reason is reason
    assert refused.value.amount == route.card.quote() + route.overcharge and refused.value.recipient == PAYEE
    assert ledger.entry(channel_id).signed_max == 0  # nothing was signed
    assert (book.requests, book.paid_requests, book.committed) == (1, 0, [])  # only the unpaid first try


def test_unknown_merchant_is_not_paid():
    book = MerchantBook(DOMAIN)
    scheme, ledger, channel_id = paying_client(BudgetPolicy())
    stranger = Account.create().address
    with serve(build_merchant(book, {"/images": PaidRoute(CARD)}, pay_to=stranger, token=TOKEN)) as url, \
            httpx.Client(transport=PBSyncTransport(scheme.register_with(x402ClientSync())), base_url=url) as http:
        with pytest.raises(BudgetExceeded) as refused:
            http.get("/images")
    assert refused.value.reason is RefusalReason.NO_CHANNEL_FOR_PAYEE
    assert book.paid_requests == 0 and ledger.entry(channel_id).signed_max == 0
