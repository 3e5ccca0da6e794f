"""The guardian's brake, and closing channels cooperatively and unilaterally."""

import ape
import pytest
from conftest import HOUR, REDEEM_WINDOW, UNIT
from eth_account import Account
from protocolbanks.sdk import LaneTerms


@pytest.fixture
def guarded(open_channel, channels, guardian, new_key, chain):
    channel = open_channel(100 * UNIT)
    channels.setGuardian(guardian, sender=channel.payer)
    channel.grant(new_key(), total_cap=50 * UNIT, now=chain.pending_timestamp)
    return channel


def test_set_guardian__emits(channels, payer, guardian):
    tx = channels.setGuardian(guardian, sender=payer)
    assert tx.decode_logs(channels.GuardianSet)[0].guardian == guardian.address
    assert channels.guardianOf(payer) == guardian.address


def test_freeze__accepted_vouchers_redeemable_in_window_then_nothing(guarded, channels, token, payee, guardian,
                                                                     chain):
    accepted = guarded.voucher(5 * UNIT)
    tx = channels.freeze(guarded.config, sender=guardian)
    [event] = tx.decode_logs(channels.ChannelFrozen)
    assert event.redeemableUntil == tx.timestamp + REDEEM_WINDOW
    guarded.refresh_terms()
    assert guarded.state().frozen
    channels.redeem(payee, token, guarded.voucher(5 * UNIT), sender=payee)  # within the window: honoured
    assert accepted[1] == guarded.state().claimed
    chain.pending_timestamp = event.redeemableUntil
    with ape.reverts(channels.LaneExpired):
        channels.redeem(payee, token, guarded.voucher(6 * UNIT), sender=payee)


def test_freeze__by_anyone_but_the_guardian__reverts(guarded, channels, stranger, payee):
    for who in (stranger, payee, guarded.payer):
        with ape.reverts(channels.NotGuardian):
            channels.freeze(guarded.config, sender=who)


def test_freeze__without_guardian__reverts(open_channel, channels, stranger):
    channel = open_channel()
    with ape.reverts(channels.NotGuardian):
        channels.freeze(channel.config, sender=stranger)


def test_freeze__twice__reverts(guarded, channels, guardian):
    channels.freeze(guarded.config, sender=guardian)
    with ape.reverts(channels.AlreadyFrozen):
        channels.freeze(guarded.config, sender=guardian)


def test_freeze__moves_no_money(guarded, channels, token, guardian, payee):
    balances = [token.balanceOf(a) for a in (channels, guarded.payer, payee, guardian)]
    channels.freeze(guarded.config, sender=guardian)
    assert [token.balanceOf(a) for a in (channels, guarded.payer, payee, guardian)] == balances


def test_unfreeze__only_payer__restores_expiry(guarded, channels, token, payee, guardian, chain):
    original = guarded.terms
    channels.freeze(guarded.config, sender=guardian)
    for who in (guardian, payee):
        with ape.reverts(channels.NotPayer):
            channels.unfreeze(guarded.config, sender=who)
    chain.pending_timestamp += REDEEM_WINDOW + 10
    tx = channels.unfreeze(guarded.config, sender=guarded.payer)
    assert tx.decode_logs(channels.ChannelUnfrozen)
    assert guarded.refresh_terms() == original and not guarded.state().frozen
    channels.redeem(payee, token, guarded.voucher(7 * UNIT), sender=payee)
    assert guarded.state().claimed == 7 * UNIT


def test_unfreeze__not_frozen__reverts(guarded, channels):
    with ape.reverts(channels.NotFrozen):
        channels.unfreeze(guarded.config, sender=guarded.payer)


def test_freeze__payer_can_still_close_and_recover_funds(guarded, channels, token, guardian, chain):
    channels.freeze(guarded.config, sender=guardian)
    before = token.balanceOf(guarded.payer)
    channels.requestClose(guarded.config, sender=guarded.payer)
    chain.pending_timestamp += REDEEM_WINDOW
    channels.withdraw(guarded.config, sender=guarded.payer)
    assert token.balanceOf(guarded.payer) - before == 100 * UNIT


def test_rotate_while_frozen__lifts_the_freeze(guarded, channels, guardian, chain):
    channels.freeze(guarded.config, sender=guardian)
    channels.rotateSessionKey(guarded.config, Account.create().address,
                              (UNIT, 0, 0, chain.pending_timestamp + HOUR, 0), sender=guarded.payer)
    assert not guarded.state().frozen


def test_close_cooperative__payee_redeems_last_voucher_and_refunds_rest(guarded, channels, token, payee):
    payer_before, payee_before = token.balanceOf(guarded.payer), token.balanceOf(payee)
    tx = channels.closeCooperative(guarded.config, guarded.voucher(12 * UNIT), sender=payee)
    [closed] = tx.decode_logs(channels.ChannelClosed)
    assert (closed.paidToPayee, closed.refunded) == (12 * UNIT, 88 * UNIT)
    assert token.balanceOf(payee) - payee_before == 12 * UNIT
    assert token.balanceOf(guarded.payer) - payer_before == 88 * UNIT
    with ape.reverts(channels.ChannelIsClosed):
        channels.channelState(guarded.config)


def test_close_cooperative__by_payer__reverts(guarded, channels):
    with ape.reverts(channels.NotPayee):
        channels.closeCooperative(guarded.config, guarded.voucher(UNIT), sender=guarded.payer)


def test_close_cooperative__voucher_for_another_channel__reverts(guarded, open_channel, channels, payee):
    other = open_channel()
    with ape.reverts(channels.ChannelNotFound):
        channels.closeCooperative(guarded.config, other.voucher(UNIT), sender=payee)


def test_unilateral_close__challenge_then_withdraw(guarded, channels, token, payee, chain):
    tx = channels.requestClose(guarded.config, sender=guarded.payer)
    closes_at = tx.decode_logs(channels.CloseRequested)[0].closesAt
    assert closes_at == tx.timestamp + REDEEM_WINDOW and guarded.state().closing
    with ape.reverts(channels.ChallengePeriodActive):
        channels.withdraw(guarded.config, sender=guarded.payer)
    channels.redeem(payee, token, guarded.voucher(9 * UNIT), sender=payee)  # payee answers the challenge
    chain.pending_timestamp = closes_at
    before = token.balanceOf(guarded.payer)
    tx = channels.withdraw(guarded.config, sender=guarded.payer)
    assert tx.decode_logs(channels.ChannelClosed)[0].refunded == 91 * UNIT
    assert token.balanceOf(guarded.payer) - before == 91 * UNIT
    with ape.reverts(channels.ChannelIsClosed):
        channels.redeem(payee, token, guarded.voucher(10 * UNIT), sender=payee)


def test_unilateral_close__errors(guarded, channels, stranger):
    with ape.reverts(channels.NotPayer):
        channels.requestClose(guarded.config, sender=stranger)
    with ape.reverts(channels.CloseNotRequested):
        channels.withdraw(guarded.config, sender=guarded.payer)
    channels.requestClose(guarded.config, sender=guarded.payer)
    with ape.reverts(channels.CloseAlreadyRequested):
        channels.requestClose(guarded.config, sender=guarded.payer)
    with ape.reverts(channels.NotPayer):
        channels.withdraw(guarded.config, sender=stranger)
    with ape.reverts(channels.CloseAlreadyRequested):
        channels.grantSessionKey(guarded.config, Account.create().address, (1, 0, 0, 2**39, 0),
                                 sender=guarded.payer)


def test_unilateral_close__retired_signer_after_close__reverts_channel_closed(open_channel, channels, token, payee,
                                                                            chain, new_key):
    channel = open_channel(10 * UNIT)
    payer_row = channel.voucher(2 * UNIT)
    channel.grant(new_key(), total_cap=5 * UNIT, now=chain.pending_timestamp)
    channels.closeCooperative(channel.config, (channel.id, 0, 0, b"\x00" * 32, b"\x00" * 32), sender=payee)
    with ape.reverts(channels.ChannelIsClosed):
        channels.redeem(payee, token, payer_row, sender=payee)
    assert LaneTerms.for_payer(0).pack() == payer_row[2]
