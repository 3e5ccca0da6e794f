"""The payer's on-chain actions through web3.py alone (protocolbanks.sdk.payer_channels), errors named."""

import pytest
from conftest import HOUR, UNIT
from eth_account import Account
from eth_utils import keccak
from protocolbanks.sdk.payer_channels import PayerChannels, SessionKeyPolicy
from protocolbanks.sdk.transactions import ContractCallFailed


def selector(signature: str) -> bytes:
    return keccak(text=signature)[:4]


@pytest.fixture
def fresh_payer(chain, deployer, token, channels):
    """A payer that only holds tokens and ether: no approval given to the channels contract."""
    account = Account.create()
    deployer.transfer(account.address, 10**18)
    token.mint(account.address, 100 * UNIT, sender=deployer)
    return PayerChannels(chain.provider.web3, channels.address, account)


def test_open_with_permit__one_transaction_no_approval(fresh_payer, payee, token, channels):
    config, receipt = fresh_payer.open(payee.address, token.address, 7 * UNIT)
    assert receipt["to"] == channels.address  # openWithPermit: no approve transaction before it
    assert token.allowance(fresh_payer.account.address, channels) == 0
    state = fresh_payer.state(config)
    assert (state.open, state.deposit, state.claimed, state.signer) == (True, 7 * UNIT, 0, fresh_payer.account.address)
    assert fresh_payer.find_config(config.channel_id) == config


def test_open_with_approval_then_top_up(fresh_payer, payee, token):
    config, _ = fresh_payer.open(payee.address, token.address, 2 * UNIT, use_permit=False)
    fresh_payer.top_up(config, 3 * UNIT)
    assert fresh_payer.state(config).deposit == 5 * UNIT
    assert token.balanceOf(fresh_payer.account.address) == 95 * UNIT


def test_top_up__names_the_lane_only_when_a_key_holds_the_channel(chain, fresh_payer, payee, token, channels):
    config, _ = fresh_payer.open(payee.address, token.address, 2 * UNIT)
    w3 = chain.provider.web3

    def selector_of(receipt) -> bytes:
        return bytes(w3.eth.get_transaction(receipt["transactionHash"])["input"])[:4]

    keyless = fresh_payer.top_up(config, UNIT)
    policy = SessionKeyPolicy(total_cap=5 * UNIT, valid_until=chain.pending_timestamp + HOUR)
    fresh_payer.grant_session_key(config, Account.create().address, policy)
    keyed = fresh_payer.top_up(config, UNIT)
    assert fresh_payer.state(config).deposit == 4 * UNIT
    assert selector_of(keyless) == selector("topUp((address,address,address,bytes32),uint256)")
    assert selector_of(keyed) == selector("topUpLane((address,address,address,bytes32),address,uint256,uint256)")


def test_grant_rotate_revoke(chain, fresh_payer, payee, token):
    config, _ = fresh_payer.open(payee.address, token.address, 10 * UNIT)
    first, second = Account.create(), Account.create()
    policy = SessionKeyPolicy(total_cap=5 * UNIT, valid_until=chain.pending_timestamp + HOUR,
                              period_cap=2 * UNIT, period_length=HOUR, max_per_payment=UNIT)
    fresh_payer.grant_session_key(config, first.address, policy)
    state = fresh_payer.state(config)
    assert (state.signer, state.terms.epoch, state.max_per_payment) == (first.address, 1, UNIT)
    fresh_payer.rotate_session_key(config, second.address, policy)
    assert fresh_payer.state(config).signer == second.address
    fresh_payer.revoke_session_key(config)
    assert fresh_payer.state(config).signer == fresh_payer.account.address


def test_freeze_lift_and_confirm(chain, fresh_payer, payee, token, guardian, channels):
    config, _ = fresh_payer.open(payee.address, token.address, 10 * UNIT)
    key = Account.create()
    fresh_payer.set_guardian(guardian.address)
    fresh_payer.grant_session_key(config, key.address, SessionKeyPolicy(5 * UNIT, chain.pending_timestamp + HOUR))
    channels.freeze(config.as_tuple(), sender=guardian)
    assert fresh_payer.state(config).frozen
    fresh_payer.lift_freeze(config)
    assert not fresh_payer.state(config).frozen and fresh_payer.state(config).signer == key.address
    channels.freeze(config.as_tuple(), sender=guardian)
    fresh_payer.confirm_freeze(config)  # the key is revoked; the payer signs again
    state = fresh_payer.state(config)
    assert (state.frozen, state.signer, state.deposit) == (False, fresh_payer.account.address, 10 * UNIT)


def test_errors_are_named_before_any_gas_is_spent(chain, fresh_payer, payee, token, channels, deployer):
    config, _ = fresh_payer.open(payee.address, token.address, UNIT)
    with pytest.raises(ContractCallFailed) as not_frozen:
        fresh_payer.lift_freeze(config)
    assert not_frozen.value.error is not None and not_frozen.value.error.name == "NotFrozen"
    stranger = PayerChannels(chain.provider.web3, channels.address, Account.create())
    deployer.transfer(stranger.account.address, 10**17)
    with pytest.raises(ContractCallFailed) as not_payer:
        stranger.revoke_session_key(config)
    assert not_payer.value.error is not None and not_payer.value.error.name == "NotPayer"
    assert str(not_payer.value).startswith("revokeSessionKey failed: NotPayer(caller=")
    assert chain.provider.web3.eth.get_transaction_count(stranger.account.address) == 0
    assert fresh_payer.find_config(b"\x01" * 32) is None
