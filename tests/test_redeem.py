"""Redeeming vouchers: single and batch, deltas only, and every bad-input case."""

import ape
import pytest
from conftest import UNIT
from eth_account import Account
from eth_utils import keccak
from protocolbanks.sdk import ChannelDomain, LaneTerms, pack_redemption_rows
from protocolbanks.sdk.redeemed_rows import decode_redeemed_rows
from protocolbanks.sdk.signing import SECP256K1_N


def test_redeem__pays_only_the_delta_over_what_was_redeemed(open_channel, channels, token, payee):
    channel = open_channel(10 * UNIT)
    before = token.balanceOf(payee)
    tx = channels.redeem(payee, token, channel.voucher(3 * UNIT), sender=payee)
    [event] = tx.decode_logs(channels.VouchersRedeemed)
    assert (event.total, decode_redeemed_rows(event.redeemed)) == (3 * UNIT, [(channel.id, 3 * UNIT)])
    channels.redeem(payee, token, channel.voucher(5 * UNIT), sender=payee)
    assert token.balanceOf(payee) - before == 5 * UNIT
    state = channel.state()
    assert (state.claimed, state.remaining) == (5 * UNIT, 5 * UNIT)


def test_redeem__same_or_older_voucher__moves_nothing(open_channel, channels, token, payee, stranger):
    channel = open_channel(10 * UNIT)
    newest, older = channel.voucher(4 * UNIT), channel.voucher(2 * UNIT)
    channels.redeem(payee, token, newest, sender=stranger)  # anyone may submit; money goes to the payee
    balance = token.balanceOf(payee)
    for row in (newest, older):
        tx = channels.redeem(payee, token, row, sender=stranger)
        assert not tx.decode_logs(channels.VouchersRedeemed)
    assert token.balanceOf(payee) == balance and channel.state().claimed == 4 * UNIT


def test_redeem__above_deposit__reverts(open_channel, channels, token, payee):
    channel = open_channel(10 * UNIT)
    with ape.reverts(channels.VoucherExceedsDeposit, cumulativeAmount=10 * UNIT + 1, deposit=10 * UNIT):
        channels.redeem(payee, token, channel.voucher(10 * UNIT + 1), sender=payee)


def test_redeem__exactly_the_deposit__is_allowed(open_channel, channels, token, payee):
    channel = open_channel(10 * UNIT)
    channels.redeem(payee, token, channel.voucher(10 * UNIT), sender=payee)
    assert channel.state().remaining == 0


def test_redeem__stranger_signature__reverts_unknown_lane(open_channel, channels, token, payee):
    channel = open_channel()
    with ape.reverts(channels.UnknownLane):
        channels.redeem(payee, token, channel.voucher(UNIT, key=Account.create().key), sender=payee)


def test_redeem__voucher_for_another_channel__reverts(open_channel, channels, token, payee):
    first, second = open_channel(), open_channel()
    row = first.voucher(UNIT)
    forged = (second.id,) + row[1:]  # first's signature presented for second
    with ape.reverts(channels.UnknownLane):
        channels.redeem(payee, token, forged, sender=payee)


def test_redeem__signed_for_another_chain__reverts(open_channel, channels, token, payee, domain):
    channel = open_channel()
    other_chain = ChannelDomain(domain.chain_id + 1, domain.verifying_contract)
    with ape.reverts(channels.UnknownLane):
        channels.redeem(payee, token, channel.voucher(UNIT, domain=other_chain), sender=payee)


def test_redeem__signed_for_another_contract__reverts(open_channel, channels, token, payee, domain, stranger):
    channel = open_channel()
    other_contract = ChannelDomain(domain.chain_id, stranger.address)
    with ape.reverts(channels.UnknownLane):
        channels.redeem(payee, token, channel.voucher(UNIT, domain=other_contract), sender=payee)


def test_redeem__wrong_payee_or_token__reverts(open_channel, channels, token, payee, stranger, project, deployer):
    channel = open_channel()
    with ape.reverts(channels.UnknownLane):
        channels.redeem(stranger, token, channel.voucher(UNIT), sender=stranger)
    other_token = deployer.deploy(project.MockUSDC)
    with ape.reverts(channels.UnknownLane):
        channels.redeem(payee, other_token, channel.voucher(UNIT), sender=payee)


def test_redeem__tampered_terms__reverts(open_channel, channels, token, payee):
    channel = open_channel()
    bigger = LaneTerms(ceiling=2**80 - 1, period_cap=1, period_length=0, valid_until=2**40 - 1, epoch=0)
    row = channel.voucher(UNIT, terms=bigger)
    with ape.reverts(channels.UnknownLane):
        channels.redeem(payee, token, row, sender=payee)


def test_redeem__high_s_signature__reverts_invalid_signature(open_channel, channels, token, payee, domain):
    from protocolbanks.sdk import Voucher

    channel = open_channel()
    sig = Voucher(channel.id, 0, UNIT).sign(domain, channel.signer_key)
    # The malleable twin (r, n - s, v ^ 1) recovers the same signer; it must be refused outright.
    twin = sig.r + (SECP256K1_N - sig.s).to_bytes(32, "big") + bytes([sig.v ^ 1])
    row = (channel.id, UNIT, LaneTerms.for_payer(0).pack(), b"\x00" * 32, b"\x00" * 32)
    with ape.reverts(channels.InvalidSignature):
        channels.redeemWithSignature(payee, token, channel.payer, row, twin, sender=payee)
    # In EIP-2098 compact form the twin's s spills into the parity bit: it names some other signer, never the payer.
    high_vs = ((SECP256K1_N - sig.s) | ((sig.v - 27) ^ 1) << 255) % 2**256
    with ape.reverts(channels.UnknownLane):
        channels.redeem(payee, token, (*row[:3], sig.r, high_vs.to_bytes(32, "big")), sender=payee)
    assert channel.state().claimed == 0


def test_redeem__zero_address_recovery__reverts_invalid_signature(open_channel, channels, token, payee):
    channel = open_channel()
    cid, amount, terms, _, _ = channel.voucher(UNIT)
    with ape.reverts(channels.InvalidSignature):
        channels.redeem(payee, token, (cid, amount, terms, b"\x00" * 32, b"\x00" * 32), sender=payee)


def test_redeem_batch__many_channels_one_transfer(open_channel, channels, token, payee, stranger):
    rows = [open_channel(10 * UNIT).voucher((i + 1) * UNIT) for i in range(5)]
    before = token.balanceOf(payee)
    tx = channels.redeemBatch(payee, token, pack_redemption_rows(rows), sender=stranger)
    transfers = [log for log in tx.decode_logs(token.Transfer) if log.to == payee.address]
    assert len(transfers) == 1 and transfers[0].value == 15 * UNIT
    assert token.balanceOf(payee) - before == 15 * UNIT
    [event] = tx.decode_logs(channels.VouchersRedeemed)
    assert decode_redeemed_rows(event.redeemed) == [(row[0], (i + 1) * UNIT) for i, row in enumerate(rows)]


def test_redeem_batch__bad_rows_are_skipped_with_reason(open_channel, channels, token, payee):
    good, over = open_channel(10 * UNIT), open_channel(1 * UNIT)
    rows = [good.voucher(2 * UNIT), over.voucher(5 * UNIT), good.voucher(1 * UNIT, key=Account.create().key)]
    tx = channels.redeemBatch(payee, token, pack_redemption_rows(rows), sender=payee)
    skipped = tx.decode_logs(channels.RedemptionSkipped)
    reasons = {(log.channelId, bytes(log.reason)) for log in skipped}
    assert reasons == {
        (over.id, keccak(text="VoucherExceedsDeposit(uint256,uint256)")[:4]),
        (good.id, keccak(text="UnknownLane(bytes32)")[:4]),
    }
    [event] = tx.decode_logs(channels.VouchersRedeemed)
    assert event.total == 2 * UNIT and decode_redeemed_rows(event.redeemed) == [(good.id, 2 * UNIT)]


def test_redeem_batch__unrecoverable_signature__is_skipped_invalid_signature(open_channel, channels, token, payee):
    good, bad = open_channel(10 * UNIT), open_channel(10 * UNIT)
    cid, amount, terms, _, _ = bad.voucher(UNIT)
    rows = pack_redemption_rows([(cid, amount, terms, b"\x00" * 32, b"\x00" * 32), good.voucher(UNIT)])
    tx = channels.redeemBatch(payee, token, rows, sender=payee)
    [skipped] = tx.decode_logs(channels.RedemptionSkipped)
    assert (skipped.channelId, bytes(skipped.reason)) == (bad.id, keccak(text="InvalidSignature()")[:4])
    assert decode_redeemed_rows(tx.decode_logs(channels.VouchersRedeemed)[0].redeemed) == [(good.id, UNIT)]


def test_redeem_batch__same_voucher_twice_in_one_batch__pays_once(open_channel, channels, token, payee):
    channel = open_channel(10 * UNIT)
    row = channel.voucher(3 * UNIT)
    before = token.balanceOf(payee)
    channels.redeemBatch(payee, token, pack_redemption_rows([row, row]), sender=payee)
    assert token.balanceOf(payee) - before == 3 * UNIT


def test_redeem_batch__empty__does_nothing(channels, token, payee):
    tx = channels.redeemBatch(payee, token, b"", sender=payee)
    assert tx.decode_logs(channels.VouchersRedeemed)[0].total == 0


@pytest.mark.parametrize("cut", [1, 137, -1])
def test_redeem_batch__not_whole_rows__reverts_malformed(open_channel, channels, token, payee, cut):
    rows = pack_redemption_rows([open_channel(10 * UNIT).voucher(UNIT)])
    data = rows + b"\x01" if cut == -1 else rows[:-cut]
    with ape.reverts(channels.MalformedBatch, length=len(data)):
        channels.redeemBatch(payee, token, data, sender=payee)


def test_redeem_with_signature__erc1271_payer(wallet_channel, channels, domain, token, payee):
    from protocolbanks.sdk import Voucher

    channel, owner = wallet_channel
    terms = LaneTerms.for_payer(0)
    signature = Voucher(channel.id, 0, 4 * UNIT).sign(domain, owner.private_key).to_bytes()
    row = (channel.id, 4 * UNIT, terms.pack(), b"\x00" * 32, b"\x00" * 32)
    channels.redeemWithSignature(payee, token, channel.payer, row, signature, sender=payee)
    assert channel.state().claimed == 4 * UNIT
    with ape.reverts(channels.InvalidSignature):
        bad = Voucher(channel.id, 0, 5 * UNIT).sign(domain, Account.create().key).to_bytes()
        channels.redeemWithSignature(payee, token, channel.payer, (channel.id, 5 * UNIT, *row[2:]), bad,
                                     sender=payee)


@pytest.mark.parametrize("amount", [1, 2**80 - 1])
def test_voucher_digest__matches_python_sdk(channels, domain, amount):
    from protocolbanks.sdk import Voucher

    voucher = Voucher(b"\x42" * 32, 7, amount)
    assert channels.voucherDigest(b"\x42" * 32, 7, amount) == voucher.digest(domain)
