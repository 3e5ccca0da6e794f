"""The settler's failure classes, from real failures: revert data the contract returns for a simulated `redeem`
(eth_call through web3, on whichever chain the suite runs), a node refusing a transaction, an RPC that is down."""

import socket

import pytest
from conftest import HOUR, UNIT
from eth_account import Account
from protocolbanks.relayer.revert_classifier import (
    NONCE_TOO_LOW,
    RPC_UNAVAILABLE,
    FailureClass,
    classify_exception,
    classify_redemption,
    classify_revert_data,
    revert_data_of,
)
from protocolbanks.sdk.abi_files import stream_channels_abi
from web3 import Web3


@pytest.fixture
def w3(chain):
    return chain.provider.web3


@pytest.fixture
def contract(w3, channels):
    return w3.eth.contract(address=channels.address, abi=stream_channels_abi())


def simulate(contract, payee, token, row):
    """eth_call of the strict `redeem`: (paid, None) or (None, the exception web3 raised)."""
    try:
        return contract.functions.redeem(payee.address, token.address, row).call({"from": payee.address}), None
    except Exception as exc:
        return None, exc


def refused(contract, payee, token, row):
    paid, exc = simulate(contract, payee, token, row)
    assert paid is None and exc is not None, f"expected a revert, the call paid {paid}"
    assert revert_data_of(exc), f"no revert data in {exc!r}"
    return classify_exception(exc)


def test_classify__bad_signature__permanent(contract, open_channel, payee, token):
    cid, amount, terms, _, _ = open_channel().voucher(UNIT)
    failure = refused(contract, payee, token, (cid, amount, terms, b"\x00" * 32, b"\x00" * 32))
    assert (failure.failure_class, failure.reason) == (FailureClass.PERMANENT, "InvalidSignature")


def test_classify__above_deposit__permanent(contract, open_channel, payee, token):
    failure = refused(contract, payee, token, open_channel(UNIT).voucher(2 * UNIT))
    assert (failure.failure_class, failure.reason) == (FailureClass.PERMANENT, "VoucherExceedsDeposit")
    assert "cumulativeAmount=2000000" in failure.detail and "deposit=1000000" in failure.detail


def test_classify__unknown_lane__stale_terms(contract, open_channel, payee, token):
    stranger_signed = open_channel().voucher(UNIT, key=Account.create().key)  # no lane for that signer
    failure = refused(contract, payee, token, stranger_signed)
    assert (failure.failure_class, failure.reason) == (FailureClass.STALE_TERMS, "UnknownLane")
    assert failure.detail.startswith("UnknownLane(laneId=0x")


def test_classify__expired_key__permanent(chain, contract, open_channel, payee, token):
    channel = open_channel()
    key = Account.create().key
    channel.grant(key, total_cap=5 * UNIT, valid_for=HOUR, now=chain.pending_timestamp)
    chain.pending_timestamp += 2 * HOUR
    chain.mine()
    failure = refused(contract, payee, token, channel.voucher(UNIT))
    assert (failure.failure_class, failure.reason) == (FailureClass.PERMANENT, "LaneExpired")


def test_classify__period_cap_spent__transient(chain, contract, open_channel, payee, token):
    channel = open_channel()
    channel.grant(Account.create().key, total_cap=5 * UNIT, period_cap=UNIT, period_length=HOUR,
                  now=chain.pending_timestamp)
    failure = refused(contract, payee, token, channel.voucher(2 * UNIT))  # the next period has room again
    assert (failure.failure_class, failure.reason) == (FailureClass.TRANSIENT, "PeriodCapExceeded")


def test_classify__closed_channel__permanent(chain, channels, contract, open_channel, payee, token):
    channel = open_channel()
    channels.requestClose(channel.config, sender=channel.payer)
    chain.pending_timestamp += 2 * HOUR
    channels.withdraw(channel.config, sender=channel.payer)
    failure = refused(contract, payee, token, channel.voucher(UNIT))
    assert (failure.failure_class, failure.reason) == (FailureClass.PERMANENT, "ChannelIsClosed")


def test_classify__already_redeemed__nothing_due(channels, contract, open_channel, payee, token):
    channel = open_channel()
    channels.redeem(payee, token, channel.voucher(2 * UNIT), sender=payee)
    paid, exc = simulate(contract, payee, token, channel.voucher(UNIT))  # older than what is on-chain
    assert (paid, exc) == (0, None)
    failure = classify_redemption(paid > 0, None)
    assert failure is not None and failure.failure_class is FailureClass.NOTHING_DUE
    assert classify_redemption(True, None) is None  # a row that moved money is no failure


def test_classify__skip_selector_alone__named(contract, open_channel, payee, token):
    """`RedemptionSkipped` carries only the 4-byte selector: the name is enough to classify."""
    stranger_signed = open_channel().voucher(UNIT, key=Account.create().key)
    _, exc = simulate(contract, payee, token, stranger_signed)
    selector = revert_data_of(exc)[:4]
    failure = classify_revert_data(selector)
    assert (failure.failure_class, failure.reason, failure.detail) == (FailureClass.STALE_TERMS, "UnknownLane",
                                                                       "UnknownLane")
    unknown = classify_revert_data(b"\xde\xad\xbe\xef")
    assert (unknown.failure_class, unknown.reason) == (FailureClass.PERMANENT, "unknown_revert")


def test_classify__nonce_already_used__transient(w3, payee, stranger):
    account = Account.from_key(payee.private_key)
    payee.transfer(stranger, 1)
    used = w3.eth.get_transaction_count(account.address) - 1
    tx = {"type": 2, "chainId": w3.eth.chain_id, "nonce": used, "to": stranger.address, "value": 1, "gas": 21_000,
          "maxFeePerGas": 10**11, "maxPriorityFeePerGas": 10**9}
    with pytest.raises(Exception) as refused_by_node:
        w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
    failure = classify_exception(refused_by_node.value)
    assert (failure.failure_class, failure.reason) == (FailureClass.TRANSIENT, NONCE_TOO_LOW)


def test_classify__rpc_down__transient():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    down = Web3(Web3.HTTPProvider(f"http://127.0.0.1:{port}", request_kwargs={"timeout": 2}))
    with pytest.raises(Exception) as unreachable:
        _ = down.eth.block_number
    failure = classify_exception(unreachable.value)
    assert (failure.failure_class, failure.reason) == (FailureClass.TRANSIENT, RPC_UNAVAILABLE)
