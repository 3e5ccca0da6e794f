"""Session keys: grant by transaction and by signature, caps enforced on-chain, rotate, revoke, no revival."""

import ape
import pytest
from conftest import HOUR, UNIT
from eth_account import Account
from protocolbanks.sdk import LaneTerms


@pytest.fixture
def keyed(open_channel, new_key, chain):
    """A 100 U channel whose session key may spend 50 U in total and 20 U per hour, for 24 h."""
    channel = open_channel(100 * UNIT)
    key = new_key()
    channel.grant(key, total_cap=50 * UNIT, period_cap=20 * UNIT, period_length=HOUR, max_per_payment=10 * UNIT,
                  now=chain.pending_timestamp)
    return channel


def test_grant__by_transaction__records_policy_and_emits(open_channel, channels, new_key, chain):
    channel = open_channel(100 * UNIT)
    key = new_key()
    now = chain.pending_timestamp
    tx = channel.grant(key, total_cap=50 * UNIT, period_cap=20 * UNIT, period_length=HOUR,
                       max_per_payment=10 * UNIT, now=now)
    [granted] = tx.decode_logs(channels.SessionKeyGranted)
    assert granted.key == Account.from_key(key).address and granted.epoch == 1 and granted.keyBase == 0
    [retired] = tx.decode_logs(channels.SignerRetired)
    assert retired.signer == channel.payer.address and retired.redeemableUntil == now + 3600
    [activated] = tx.decode_logs(channels.LaneActivated)
    state = channel.state()
    assert activated.laneId == state.laneId and state.signer == Account.from_key(key).address
    assert LaneTerms.unpack(state.terms) == LaneTerms(50 * UNIT, 20 * UNIT, HOUR, now + 24 * HOUR, 1)
    assert (state.maxPerPayment, state.remaining) == (10 * UNIT, 50 * UNIT)


def test_grant__by_stranger_transaction__reverts_not_payer(open_channel, channels, stranger, chain):
    channel = open_channel()
    with ape.reverts(channels.NotPayer):
        channels.grantSessionKey(channel.config, Account.create().address,
                                 (UNIT, 0, 0, chain.pending_timestamp + HOUR, 0), sender=stranger)


@pytest.mark.parametrize("policy_fn, reason", [
    (lambda now: (0, 0, 0, now + HOUR, 0), "totalCap is zero"),
    (lambda now: (2**80, 0, 0, now + HOUR, 0), "totalCap above 2^80-1"),
    (lambda now: (UNIT, 0, 0, now, 0), "validUntil not in the future"),
    (lambda now: (UNIT, 0, HOUR, now + HOUR, 0), "periodCap is zero"),
    (lambda now: (UNIT, UNIT, 1, now + 70_000, 0), "validity spans 65535 periods or more"),
    (lambda now: (UNIT, UNIT, 2**32, now + HOUR, 0), "periodLength above 2^32-1"),
])
def test_grant__bad_policy__reverts_with_reason(open_channel, channels, chain, policy_fn, reason):
    channel = open_channel()
    with ape.reverts(channels.InvalidPolicy, reason=reason):
        channels.grantSessionKey(channel.config, Account.create().address, policy_fn(chain.pending_timestamp),
                                 sender=channel.payer)


def test_grant__key_equal_to_payer_or_payee__reverts(open_channel, channels, chain):
    channel = open_channel()
    for bad in (channel.payer.address, channel.payee.address, "0x0000000000000000000000000000000000000000"):
        with ape.reverts(channels.InvalidSessionKey):
            channels.grantSessionKey(channel.config, bad, (UNIT, 0, 0, chain.pending_timestamp + HOUR, 0),
                                     sender=channel.payer)


def test_key_voucher__redeems_within_caps(keyed, channels, token, payee):
    channels.redeem(payee, token, keyed.voucher(10 * UNIT), sender=payee)
    state = keyed.state()
    assert (state.claimed, state.periodSpent, state.remaining) == (10 * UNIT, 10 * UNIT, 40 * UNIT)


def test_key_voucher__over_period_cap__reverts(keyed, channels, token, payee):
    channels.redeem(payee, token, keyed.voucher(15 * UNIT), sender=payee)
    with ape.reverts(channels.PeriodCapExceeded, periodSpent=21 * UNIT, periodCap=20 * UNIT):
        channels.redeem(payee, token, keyed.voucher(21 * UNIT), sender=payee)


def test_key_voucher__next_period__has_a_fresh_period_cap(keyed, channels, token, payee, chain):
    channels.redeem(payee, token, keyed.voucher(20 * UNIT), sender=payee)
    chain.pending_timestamp += HOUR
    channels.redeem(payee, token, keyed.voucher(40 * UNIT), sender=payee)
    assert keyed.state().periodSpent == 20 * UNIT


def test_key_voucher__over_total_cap__reverts(keyed, channels, token, payee, chain):
    for _hour, amount in enumerate((20, 40)):
        channels.redeem(payee, token, keyed.voucher(amount * UNIT), sender=payee)
        chain.pending_timestamp += HOUR
    with ape.reverts(channels.VoucherExceedsCap, cumulativeAmount=51 * UNIT, ceiling=50 * UNIT):
        channels.redeem(payee, token, keyed.voucher(51 * UNIT), sender=payee)


def test_key_voucher__at_expiry_exactly__reverts_lane_expired(keyed, channels, token, payee, chain):
    valid_until = keyed.terms.valid_until
    chain.pending_timestamp = valid_until
    with ape.reverts(channels.LaneExpired, validUntil=valid_until, nowTime=valid_until):
        channels.redeem(payee, token, keyed.voucher(UNIT), sender=payee)


def test_key_voucher__one_second_before_expiry__redeems(keyed, channels, token, payee, chain):
    chain.pending_timestamp = keyed.terms.valid_until - 1
    channels.redeem(payee, token, keyed.voucher(UNIT), sender=payee)
    assert keyed.state().claimed == UNIT


def test_payer_voucher__after_grant__redeemable_only_within_window(keyed, channels, token, payee, chain):
    payer_row = keyed.voucher(5 * UNIT, key=keyed.payer.private_key, terms=LaneTerms.for_payer(0))
    channels.redeem(payee, token, payer_row, sender=payee)  # accepted before the grant: honoured in the window
    assert keyed.state().claimed == 5 * UNIT
    later = keyed.voucher(6 * UNIT, key=keyed.payer.private_key, terms=LaneTerms.for_payer(0))
    chain.pending_timestamp += 3600
    with ape.reverts(channels.LaneExpired):
        channels.redeem(payee, token, later, sender=payee)


def test_grant_by_signature__anyone_submits(open_channel, channels, stranger, chain, new_key):
    channel = open_channel(100 * UNIT)
    key = Account.from_key(new_key())
    now = chain.pending_timestamp
    grant, signature = channel.signed_grant(key.address, total_cap=50 * UNIT, valid_until=now + 24 * HOUR,
                                            deadline=now + 600)
    channels.grantSessionKeyBySig(channel.config, key.address, grant.policy(), grant.deadline, signature,
                                  sender=stranger)
    assert channel.state().signer == key.address


def test_grant_by_signature__replayed__reverts(open_channel, channels, stranger, chain, new_key):
    channel = open_channel(100 * UNIT)
    key = Account.from_key(new_key())
    now = chain.pending_timestamp
    grant, signature = channel.signed_grant(key.address, total_cap=50 * UNIT, valid_until=now + 24 * HOUR,
                                            deadline=now + 600)
    args = (channel.config, key.address, grant.policy(), grant.deadline, signature)
    channels.grantSessionKeyBySig(*args, sender=stranger)
    with ape.reverts(channels.InvalidGrantSignature):  # the epoch moved on: the signature no longer matches
        channels.grantSessionKeyBySig(*args, sender=stranger)


def test_grant_by_signature__expired_deadline__reverts(open_channel, channels, stranger, chain):
    channel = open_channel()
    now = chain.pending_timestamp
    grant, signature = channel.signed_grant(Account.create().address, total_cap=UNIT, valid_until=now + HOUR,
                                            deadline=now - 1)
    with ape.reverts(channels.GrantExpired):
        channels.grantSessionKeyBySig(channel.config, grant.key, grant.policy(), grant.deadline, signature,
                                      sender=stranger)


def test_grant_by_signature__tampered_policy__reverts(open_channel, channels, stranger, chain):
    channel = open_channel()
    now = chain.pending_timestamp
    grant, signature = channel.signed_grant(Account.create().address, total_cap=UNIT, valid_until=now + HOUR,
                                            deadline=now + 600)
    greedy = (100 * UNIT, *grant.policy()[1:])
    with ape.reverts(channels.InvalidGrantSignature):
        channels.grantSessionKeyBySig(channel.config, grant.key, greedy, grant.deadline, signature, sender=stranger)


def test_grant_by_signature__erc1271_wallet_payer(wallet_channel, channels, token, payee, stranger, chain):
    channel, owner = wallet_channel
    key = Account.create()
    now = chain.pending_timestamp
    # The wallet's owner signs; the wallet vouches for it through ERC-1271.
    grant, signature = channel.signed_grant(key.address, total_cap=5 * UNIT, valid_until=now + HOUR,
                                            deadline=now + 600, payer_key=owner.private_key)
    channels.grantSessionKeyBySig(channel.config, key.address, grant.policy(), grant.deadline, signature,
                                  sender=stranger)
    channel.signer_key = key.key
    channel.refresh_terms()
    channels.redeem(payee, token, channel.voucher(2 * UNIT), sender=payee)
    assert channel.state().claimed == 2 * UNIT


def test_rotate__replaces_key_atomically_old_key_keeps_window(keyed, channels, token, payee, chain, new_key):
    old_key, old_terms = keyed.signer_key, keyed.terms
    accepted = keyed.voucher(5 * UNIT)
    new = new_key()
    now = chain.pending_timestamp
    channels.rotateSessionKey(keyed.config, Account.from_key(new).address, (30 * UNIT, 0, 0, now + HOUR, 0),
                              sender=keyed.payer)
    keyed.signer_key = new
    keyed.refresh_terms()
    assert keyed.terms.epoch == old_terms.epoch + 1
    channels.redeem(payee, token, accepted, sender=payee)  # old key's voucher, inside its window
    channels.redeem(payee, token, keyed.voucher(8 * UNIT), sender=payee)
    assert keyed.state().claimed == 8 * UNIT
    chain.pending_timestamp += 3600
    with ape.reverts(channels.LaneExpired):
        channels.redeem(payee, token, keyed.voucher(9 * UNIT, key=old_key, terms=old_terms), sender=payee)


def test_rotate__without_key__reverts(open_channel, channels, chain):
    channel = open_channel()
    with ape.reverts(channels.NoSessionKey):
        channels.rotateSessionKey(channel.config, Account.create().address,
                                  (UNIT, 0, 0, chain.pending_timestamp + HOUR, 0), sender=channel.payer)


def test_revoke__returns_signing_to_payer(keyed, channels, token, payee):
    tx = channels.revokeSessionKey(keyed.config, sender=keyed.payer)
    assert tx.decode_logs(channels.SignerRetired)[0].signer == Account.from_key(keyed.signer_key).address
    state = keyed.state()
    assert state.signer == keyed.payer.address and LaneTerms.unpack(state.terms).epoch == 2
    assert state.maxPerPayment == 0
    row = keyed.voucher(30 * UNIT, key=keyed.payer.private_key, terms=LaneTerms.unpack(state.terms))
    channels.redeem(payee, token, row, sender=payee)
    assert keyed.state().claimed == 30 * UNIT


def test_revoke__by_stranger_or_without_key__reverts(keyed, open_channel, channels, stranger):
    with ape.reverts(channels.NotPayer):
        channels.revokeSessionKey(keyed.config, sender=stranger)
    plain = open_channel()
    with ape.reverts(channels.NoSessionKey):
        channels.revokeSessionKey(plain.config, sender=plain.payer)


def test_revoked_then_regranted_key__does_not_revive_old_vouchers(keyed, channels, token, payee, chain):
    key, old_terms = keyed.signer_key, keyed.terms
    old_voucher = keyed.voucher(10 * UNIT)
    channels.revokeSessionKey(keyed.config, sender=keyed.payer)
    chain.pending_timestamp += 3600 + 1  # the revoked key's window is over
    keyed.grant(key, total_cap=50 * UNIT, now=chain.pending_timestamp)  # same key, granted again
    with ape.reverts(channels.LaneExpired):
        channels.redeem(payee, token, old_voucher, sender=payee)
    with ape.reverts(channels.UnknownLane):  # old signature presented under the new terms: wrong epoch
        channels.redeem(payee, token, (old_voucher[0], old_voucher[1], keyed.terms.pack(), *old_voucher[3:]),
                        sender=payee)
    channels.redeem(payee, token, keyed.voucher(10 * UNIT), sender=payee)  # a fresh signature works
    assert keyed.state().claimed == 10 * UNIT
    del old_terms
