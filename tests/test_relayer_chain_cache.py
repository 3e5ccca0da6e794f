"""The relayer's chain cache follows the contract through web3 alone (ABI from the SDK package)."""

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
