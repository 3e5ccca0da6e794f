"""The relayer's chain cache follows the contract through web3 alone (ABI from the SDK package)."""

import pytest
from conftest import HOUR, UNIT
from eth_account import Account
from protocolbanks.relayer.chain_cache import ChainCache


def test_cache__follows_open_topup_grant_redeem_freeze(chain, channels, open_channel, guardian, payee, token,
                                                       stranger):
    cache = ChainCache(chain.provider.web3, channels.address, from_block=chain.blocks.head.number)
    channel = open_channel(10 * UNIT)
    channels.setGuardian(guardian, sender=channel.payer)
    channels.topUp(channel.config, 2 * UNIT, sender=stranger)
    channel.grant(Account.create().key, total_cap=5 * UNIT, period_cap=2 * UNIT, period_length=HOUR,
                  max_per_payment=UNIT, now=chain.pending_timestamp)
    channels.redeem(payee, token, channel.voucher(UNIT), sender=payee)
    channels.freeze(channel.config, sender=guardian)
    assert cache.poll() >= 6
    snap, state = cache.get(channel.id), channel.state()
    assert (snap.deposit, snap.claimed, snap.signer, snap.terms.pack(), snap.frozen, snap.max_per_payment) == (
        state.deposit, state.claimed, state.signer, state.terms, state.frozen, state.maxPerPayment)
    assert cache.poll() == 0  # nothing new


def test_cache__a_reorg_of_recent_blocks_takes_their_events_away(chain, channels, open_channel, guardian,
                                                                 stranger):
    cache = ChainCache(chain.provider.web3, channels.address, from_block=chain.blocks.head.number, reorg_depth=12)
    seen = []
    cache.hooks.append(lambda name, args: seen.append(name))
    channel = open_channel(10 * UNIT)
    channels.setGuardian(guardian, sender=channel.payer)
    cache.poll()
    fork_point = chain.snapshot()
    channels.freeze(channel.config, sender=guardian)
    cache.poll()
    assert cache.get(channel.id).frozen
    chain.restore(fork_point)  # the freeze's block is replaced by another one
    channels.topUp(channel.config, UNIT, sender=stranger)
    cache.poll()
    snap = cache.get(channel.id)
    assert (snap.frozen, snap.deposit) == (False, 11 * UNIT) == (channel.state().frozen, channel.state().deposit)
    # each event announced once, although the recent blocks are read again on every poll
    assert seen == ["ChannelOpened", "GuardianSet", "LaneActivated", "ChannelFrozen", "ChannelToppedUp"]
    assert cache.poll() == 0


def test_cache__a_reorg_deeper_than_its_window_rebuilds_the_view(chain, channels, open_channel, guardian,
                                                                 stranger):
    cache = ChainCache(chain.provider.web3, channels.address, from_block=chain.blocks.head.number, reorg_depth=1)
    channel = open_channel(10 * UNIT)
    channels.setGuardian(guardian, sender=channel.payer)
    fork_point = chain.snapshot()
    channels.freeze(channel.config, sender=guardian)
    chain.mine(3)
    cache.poll()
    assert cache.get(channel.id).frozen and cache.final_block >= chain.blocks.head.number - 1  # folded as final
    chain.restore(fork_point)
    channels.topUp(channel.config, UNIT, sender=stranger)
    chain.mine(3)
    cache.poll()
    snap = cache.get(channel.id)
    assert (snap.frozen, snap.deposit) == (False, 11 * UNIT)


def test_cache__keeps_its_view_and_reports_its_age_while_the_rpc_is_down(chain, channels, open_channel):
    now = [1_000.0]
    w3 = chain.provider.web3
    cache = ChainCache(w3, channels.address, from_block=chain.blocks.head.number, clock=lambda: now[0])
    assert cache.seconds_behind() is None
    channel = open_channel(10 * UNIT)
    cache.poll()
    now[0] += 30
    assert cache.seconds_behind() == 30

    class Down:
        def __getattr__(self, name):
            raise ConnectionError("connection refused")

    cache.w3 = type("W3", (), {"eth": Down()})()
    with pytest.raises(ConnectionError):
        cache.poll()
    assert cache.get(channel.id).deposit == 10 * UNIT and cache.seconds_behind() == 30
    cache.w3 = w3
    cache.poll()
    assert cache.seconds_behind() == 0
