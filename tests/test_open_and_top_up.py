"""Opening and funding channels: state, events and every revert."""

import ape
import pytest
from conftest import UNIT
from eth_account import Account
from protocolbanks.sdk import LaneTerms, lane_id_of


def test_open__credits_deposit_and_emits_event(channels, token, payer, payee):
    before = token.balanceOf(channels)
    tx = channels.open(payee, token, b"\x01" * 32, 5 * UNIT, sender=payer)
    [event] = tx.decode_logs(channels.ChannelOpened)
    assert event.payer == payer.address and event.payee == payee.address
    assert event.token == token.address and event.deposit == 5 * UNIT
    config = (payer.address, payee.address, token.address, b"\x01" * 32)
    assert event.channelId == channels.channelIdOf(config)
    state = channels.channelState(config)
    assert (state.open, state.deposit, state.claimed, state.remaining) == (True, 5 * UNIT, 0, 5 * UNIT)
    assert state.signer == payer.address
    assert state.laneId == lane_id_of(event.channelId, payee.address, token.address, payer.address,
                                      LaneTerms.for_payer(0).pack())
    assert token.balanceOf(channels) - before == 5 * UNIT


def test_open__reused_salt__reverts_channel_already_exists(open_channel, channels, payee, token, payer):
    channel = open_channel(salt=b"\x07" * 32)
    with ape.reverts(channels.ChannelAlreadyExists, channelId=channel.id):
        channels.open(payee, token, b"\x07" * 32, UNIT, sender=payer)


def test_open__closed_channel_id__is_never_reused(open_channel, channels, payee, token, payer, chain):
    channel = open_channel(salt=b"\x08" * 32)
    channels.requestClose(channel.config, sender=payer)
    chain.pending_timestamp += 3600
    channels.withdraw(channel.config, sender=payer)
    with ape.reverts(channels.ChannelAlreadyExists):
        channels.open(payee, token, b"\x08" * 32, UNIT, sender=payer)


def test_open__zero_amount__reverts(channels, payee, token, payer):
    with ape.reverts(channels.ZeroAmount):
        channels.open(payee, token, b"\x02" * 32, 0, sender=payer)


def test_open__amount_above_80_bits__reverts(channels, payee, token, payer):
    too_much = 2**80
    with ape.reverts(channels.AmountTooLarge, amount=too_much):
        channels.open(payee, token, b"\x02" * 32, too_much, sender=payer)


@pytest.mark.parametrize("bad_payee", ["zero", "self"])
def test_open__invalid_payee__reverts(channels, token, payer, bad_payee):
    target = "0x0000000000000000000000000000000000000000" if bad_payee == "zero" else payer.address
    with ape.reverts(channels.InvalidPayee):
        channels.open(target, token, b"\x03" * 32, UNIT, sender=payer)


def test_open__token_without_code__reverts(channels, payee, payer, stranger):
    with ape.reverts(channels.InvalidToken, token=stranger.address):
        channels.open(payee, stranger, b"\x04" * 32, UNIT, sender=payer)


def test_open__fee_on_transfer_token__credits_what_arrived(project, deployer, channels, payer, payee):
    fee_token = deployer.deploy(project.MockFeeOnTransferToken, 100)  # 1 %
    fee_token.mint(payer, 1_000 * UNIT, sender=deployer)
    fee_token.approve(channels, 2**256 - 1, sender=payer)
    tx = channels.open(payee, fee_token, b"\x05" * 32, 100 * UNIT, sender=payer)
    [event] = tx.decode_logs(channels.ChannelOpened)
    assert event.deposit == 99 * UNIT
    assert fee_token.balanceOf(channels) == 99 * UNIT
    state = channels.channelState((payer.address, payee.address, fee_token.address, b"\x05" * 32))
    assert state.deposit == 99 * UNIT


def test_open__token_without_return_values__works_end_to_end(project, deployer, channels, domain, payer, payee,
                                                              chain):
    from conftest import Channel

    usdt_like = deployer.deploy(project.MockNoReturnToken)
    usdt_like.mint(payer, 100 * UNIT, sender=deployer)
    usdt_like.approve(channels, 100 * UNIT, sender=payer)
    channels.open(payee, usdt_like, b"\x06" * 32, 10 * UNIT, sender=payer)
    channel = Channel(channels, domain, payer, payee, usdt_like, b"\x06" * 32, payer.private_key)
    channels.redeem(payee, usdt_like, channel.voucher(3 * UNIT), sender=payee)
    assert usdt_like.balanceOf(payee) == 3 * UNIT
    channels.requestClose(channel.config, sender=payer)
    chain.pending_timestamp += 3600
    channels.withdraw(channel.config, sender=payer)
    assert usdt_like.balanceOf(payer) == 97 * UNIT


def test_open_with_permit__needs_no_approval(channels, token, accounts, payee, deployer, chain):
    from protocolbanks.sdk.permit import sign_permit

    sender = accounts[5]  # signs the permit and sends the open: no approve transaction in between
    token.mint(sender, 10 * UNIT, sender=deployer)
    deadline = chain.pending_timestamp + 600
    v, r, s = sign_permit(sender.private_key, token_name="Mock USD Coin", chain_id=chain.chain_id,
                          token=token.address, spender=channels.address, value=4 * UNIT,
                          nonce=token.nonces(sender), deadline=deadline)
    assert token.allowance(sender, channels) == 0
    tx = channels.openWithPermit(payee, token, b"\x09" * 32, 4 * UNIT, deadline, v, r, s, sender=sender)
    assert tx.decode_logs(channels.ChannelOpened)[0].deposit == 4 * UNIT


def test_top_up__adds_to_deposit_from_anyone(open_channel, channels, stranger):
    channel = open_channel(5 * UNIT)
    tx = channels.topUp(channel.config, 2 * UNIT, sender=stranger)
    [event] = tx.decode_logs(channels.ChannelToppedUp)
    assert (event.channelId, event.amount, event.deposit) == (channel.id, 2 * UNIT, 7 * UNIT)
    assert event["from"] == stranger.address
    assert channel.state().deposit == 7 * UNIT


def test_top_up__channel_a_session_key_holds__credits_its_current_lane(open_channel, channels, payer, chain):
    channel = open_channel(5 * UNIT)
    channel.grant(Account.create().key, total_cap=3 * UNIT, now=chain.pending_timestamp)
    tx = channels.topUp(channel.config, 2 * UNIT, sender=payer)  # the first lane is empty: found via the control record
    assert tx.decode_logs(channels.ChannelToppedUp)[0].deposit == 7 * UNIT
    state = channel.state()
    assert (state.deposit, channels.lanes(state.laneId)) == (7 * UNIT, 7 * UNIT << 80)


def test_open__contract_that_is_not_a_token__reverts_invalid_token(project, deployer, channels, payer, payee):
    not_a_token = deployer.deploy(project.MockSmartWallet, payer)  # has code, answers no balanceOf
    with ape.reverts(channels.InvalidToken, token=not_a_token.address):
        channels.open(payee, not_a_token, b"\x31" * 32, UNIT, sender=payer)


def test_channel_id_of__dirty_address_bits__reverts_like_the_abi_decoder(chain, open_channel, channels):
    channel = open_channel(UNIT)
    calldata = bytes(channels.channelIdOf.encode_input(channel.config))
    assert bytes(chain.provider.web3.eth.call({"to": channels.address, "data": calldata})) == channel.id
    for word in range(3):  # payer, payee, token: set a bit above the address's 160
        dirty = bytearray(calldata)
        dirty[4 + 32 * word] |= 0x01
        with pytest.raises(Exception):  # noqa: B017 (empty revert data, as for any malformed call)
            chain.provider.web3.eth.call({"to": channels.address, "data": bytes(dirty)})


def test_top_up__unknown_channel__reverts(channels, payer, payee, token):
    config = (payer.address, payee.address, token.address, b"\xee" * 32)
    with ape.reverts(channels.ChannelNotFound):
        channels.topUp(config, UNIT, sender=payer)


def test_top_up__zero__reverts(open_channel, channels, payer):
    channel = open_channel()
    with ape.reverts(channels.ZeroAmount):
        channels.topUp(channel.config, 0, sender=payer)


def test_top_up__past_80_bits__reverts(open_channel, channels, payer, token, deployer):
    channel = open_channel(UNIT)
    token.mint(payer, 2**80, sender=deployer)
    with ape.reverts(channels.AmountTooLarge):
        channels.topUp(channel.config, 2**80 - 1, sender=payer)


def test_top_up__closed_channel__reverts(open_channel, channels, payer, payee):
    channel = open_channel()
    channels.closeCooperative(channel.config, (channel.id, 0, 0, b"\x00" * 32, b"\x00" * 32), sender=payee)
    with ape.reverts(channels.ChannelIsClosed):
        channels.topUp(channel.config, UNIT, sender=payer)


def test_open__token_that_delivers_nothing__reverts_nothing_received(project, deployer, channels, payer, payee):
    black_hole = deployer.deploy(project.MockFeeOnTransferToken, 10_000)  # a 100 % fee: nothing arrives
    black_hole.mint(payer, 10 * UNIT, sender=deployer)
    black_hole.approve(channels, 2**256 - 1, sender=payer)
    with ape.reverts(channels.NothingReceived, token=black_hole.address):
        channels.open(payee, black_hole, b"\x0a" * 32, UNIT, sender=payer)


@pytest.mark.parametrize("window", [0, 30 * 24 * 3600 + 1])
def test_constructor__redeem_window_out_of_range__reverts(project, deployer, window):
    with ape.reverts(project.StreamChannels.InvalidRedeemWindow, redeemWindow=window):
        deployer.deploy(project.StreamChannels, window)


ZERO_ADDRESS = "0x" + "00" * 20


def test_top_up_lane__payer_lane_hint__credits_the_deposit(open_channel, channels, stranger):
    channel = open_channel(5 * UNIT)
    tx = channels.topUpLane(channel.config, ZERO_ADDRESS, 0, 2 * UNIT, sender=stranger)
    [event] = tx.decode_logs(channels.ChannelToppedUp)
    assert (event.channelId, event.amount, event.deposit) == (channel.id, 2 * UNIT, 7 * UNIT)
    assert event["from"] == stranger.address and channel.state().deposit == 7 * UNIT


def test_top_up_lane__session_key_lane_hint__credits_the_current_lane(open_channel, channels, payer, chain):
    channel = open_channel(5 * UNIT)
    key = Account.create()
    channel.grant(key.key, total_cap=3 * UNIT, now=chain.pending_timestamp)
    lane = channel.state().laneId
    channels.topUpLane(channel.config, key.address, channel.terms.pack(), UNIT, sender=payer)
    state = channel.state()
    assert (state.deposit, state.laneId, state.signer) == (6 * UNIT, lane, key.address)


@pytest.mark.parametrize("hint", ["payer lane after a grant", "retired key", "another channel's lane"])
def test_top_up_lane__stale_or_foreign_hint__still_tops_up_the_current_lane(open_channel, channels, payer, chain,
                                                                           hint):
    channel, other = open_channel(5 * UNIT), open_channel(5 * UNIT)
    old_key, new_key = Account.create(), Account.create()
    channel.grant(old_key.key, total_cap=3 * UNIT, now=chain.pending_timestamp)
    old_terms = channel.terms.pack()
    channels.rotateSessionKey(channel.config, new_key.address, (3 * UNIT, 0, 0, chain.pending_timestamp + 3600, 0),
                              sender=payer)
    signer, terms = {
        "payer lane after a grant": (ZERO_ADDRESS, 0),
        "retired key": (old_key.address, old_terms),
        "another channel's lane": (payer.address, LaneTerms.for_payer(0).pack()),
    }[hint]
    lanes_before = (channel.state().laneId, other.state().deposit)
    channels.topUpLane(channel.config, signer, terms, UNIT, sender=payer)
    state = channel.state()
    assert (state.deposit, state.signer, state.laneId) == (6 * UNIT, new_key.address, lanes_before[0])
    assert other.state().deposit == lanes_before[1]


def test_top_up_lane__closed_channel__reverts(open_channel, channels, payer, payee):
    channel = open_channel()
    channels.closeCooperative(channel.config, (channel.id, 0, 0, b"\x00" * 32, b"\x00" * 32), sender=payee)
    with ape.reverts(channels.ChannelIsClosed):
        channels.topUpLane(channel.config, ZERO_ADDRESS, 0, UNIT, sender=payer)


def test_top_up_lane__unknown_channel__reverts(channels, payer, payee, token):
    config = (payer.address, payee.address, token.address, b"\xef" * 32)
    with ape.reverts(channels.ChannelNotFound):
        channels.topUpLane(config, ZERO_ADDRESS, 0, UNIT, sender=payer)
