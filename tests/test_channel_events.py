"""Events alone rebuild every channel's state: the reducer is compared with channelState() after each step."""

from conftest import HOUR, REDEEM_WINDOW, UNIT
from eth_account import Account
from protocolbanks.sdk import pack_redemption_rows
from protocolbanks.sdk.channel_events import ChannelEventReducer


def replay(receipts, channels) -> ChannelEventReducer:
    reducer = ChannelEventReducer()
    for receipt in receipts:
        for log in receipt.decode_logs():
            if log.contract_address == channels.address:
                reducer.apply(log.event_name, dict(log.event_arguments))
    return reducer


def assert_matches(reducer, channel):
    state = channel.state()
    snap = reducer.get(channel.id)
    assert snap is not None
    assert (snap.signer, snap.terms.pack(), snap.deposit, snap.claimed) == (
        state.signer, state.terms, state.deposit, state.claimed)
    assert (snap.frozen, snap.closing, snap.max_per_payment) == (state.frozen, state.closing, state.maxPerPayment)


def test_events_rebuild_state_through_a_whole_lifecycle(channels, token, payer, payee, guardian, stranger, chain,
                                                       domain):
    from conftest import Channel

    receipts = [channels.setGuardian(guardian, sender=payer)]
    salt = b"\x33" * 32
    receipts.append(channels.open(payee, token, salt, 20 * UNIT, sender=payer))
    channel = Channel(channels, domain, payer, payee, token, salt, payer.private_key)
    steps = [
        lambda: channels.topUp(channel.config, 5 * UNIT, sender=stranger),
        lambda: channels.redeem(payee, token, channel.voucher(2 * UNIT), sender=payee),
        lambda: channel.grant(Account.create().key, total_cap=10 * UNIT, period_cap=4 * UNIT, period_length=HOUR,
                              max_per_payment=UNIT, now=chain.pending_timestamp),
        lambda: channels.redeemBatch(payee, token, pack_redemption_rows([channel.voucher(5 * UNIT)]), sender=payee),
        lambda: channels.freeze(channel.config, sender=guardian),
        lambda: channels.unfreeze(channel.config, sender=payer),
        lambda: channels.freeze(channel.config, sender=guardian),
        lambda: channels.rotateSessionKey(channel.config, Account.create().address,
                                          (UNIT, 0, 0, chain.pending_timestamp + HOUR, 7), sender=payer),
        lambda: channels.revokeSessionKey(channel.config, sender=payer),
        lambda: channels.requestClose(channel.config, sender=payer),
    ]
    for step in steps:
        receipts.append(step())
        channel.refresh_terms()
        assert_matches(replay(receipts, channels), channel)
    chain.pending_timestamp += REDEEM_WINDOW
    receipts.append(channels.withdraw(channel.config, sender=payer))
    assert replay(receipts, channels).get(channel.id).closed
