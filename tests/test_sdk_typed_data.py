"""The SDK's typed data, signing and lane terms, checked against eth-account's EIP-712 and the contract."""

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from hypothesis import given
from hypothesis import strategies as st
from protocolbanks.sdk import ChannelDomain, CompactSignature, LaneTerms, SessionKeyGrant, Voucher
from protocolbanks.sdk.lane_terms import MAX_AMOUNT, MAX_EPOCH, MAX_PERIOD_LENGTH, MAX_TIME
from protocolbanks.sdk.signing import SignatureError, recover_digest, sign_digest

DOMAIN = ChannelDomain(chain_id=31337, verifying_contract="0x5FbDB2315678afecb367f032d93F642f64180aa3")
DOMAIN_JSON = {"name": "ProtocolBanks StreamChannels", "version": "1", "chainId": 31337,
               "verifyingContract": DOMAIN.verifying_contract}
DOMAIN_TYPE = [{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
               {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}]


@given(channel=st.binary(min_size=32, max_size=32), epoch=st.integers(0, MAX_EPOCH),
       amount=st.integers(0, 2**256 - 1))
def test_voucher_digest__matches_eth_account_eip712(channel, epoch, amount):
    message = encode_typed_data(full_message={
        "types": {"EIP712Domain": DOMAIN_TYPE, "Voucher": [
            {"name": "channelId", "type": "bytes32"}, {"name": "epoch", "type": "uint256"},
            {"name": "cumulativeAmount", "type": "uint256"}]},
        "primaryType": "Voucher", "domain": DOMAIN_JSON,
        "message": {"channelId": channel, "epoch": epoch, "cumulativeAmount": amount},
    })
    expected = b"\x19" + message.version + message.header + message.body
    from eth_utils import keccak
    assert Voucher(channel, epoch, amount).digest(DOMAIN) == keccak(expected)


def test_grant_digest__matches_eth_account_eip712():
    from eth_utils import keccak

    grant = SessionKeyGrant(b"\x01" * 32, "0x000000000000000000000000000000000000dEaD", 50, 20, 3600, 10**9, 1, 1,
                            10**9 + 5)
    fields = ["totalCap", "periodCap", "periodLength", "validUntil", "maxPerPayment", "epoch", "deadline"]
    message = encode_typed_data(full_message={
        "types": {"EIP712Domain": DOMAIN_TYPE, "SessionKeyGrant": [
            {"name": "channelId", "type": "bytes32"}, {"name": "key", "type": "address"},
            *({"name": f, "type": "uint256"} for f in fields)]},
        "primaryType": "SessionKeyGrant", "domain": DOMAIN_JSON,
        "message": {"channelId": grant.channel_id, "key": grant.key, "totalCap": 50, "periodCap": 20,
                    "periodLength": 3600, "validUntil": 10**9, "maxPerPayment": 1, "epoch": 1,
                    "deadline": 10**9 + 5},
    })
    assert grant.digest(DOMAIN) == keccak(b"\x19" + message.version + message.header + message.body)


@given(ceiling=st.integers(0, MAX_AMOUNT), cap=st.integers(0, MAX_AMOUNT), length=st.integers(0, MAX_PERIOD_LENGTH),
       until=st.integers(0, MAX_TIME), epoch=st.integers(0, MAX_EPOCH))
def test_lane_terms__pack_unpack_round_trip(ceiling, cap, length, until, epoch):
    terms = LaneTerms(ceiling, cap, length, until, epoch)
    assert LaneTerms.unpack(terms.pack()) == terms
    assert terms.pack() < 2**256


@pytest.mark.parametrize("field, value", [("ceiling", 2**80), ("epoch", -1), ("valid_until", 2**40)])
def test_lane_terms__out_of_range__raises_value_error(field, value):
    kwargs = {"ceiling": 1, "period_cap": 1, "period_length": 1, "valid_until": 1, "epoch": 1, field: value}
    with pytest.raises(ValueError, match=field):
        LaneTerms(**kwargs)


def test_lane_terms__matches_contract_decoding(channels):
    terms = LaneTerms(123, 456, 60, 10**10, 7)
    assert tuple(channels.decodeTerms(terms.pack())) == (123, 456, 60, 10**10, 7)


def test_sign_and_recover__low_s_and_round_trip():
    account = Account.create()
    digest = bytes(range(32))
    for _ in range(20):
        sig = sign_digest(account.key, digest)
        assert sig.s <= 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0
        assert recover_digest(digest, sig) == account.address
        assert CompactSignature.from_bytes(sig.to_bytes()) == sig
        assert CompactSignature.from_bytes(sig.to_compact()) == sig
        digest = bytes(reversed(sig.r))


@pytest.mark.parametrize("bad", [b"", b"\x00" * 63, b"\x00" * 66])
def test_signature__wrong_length__raises(bad):
    with pytest.raises(SignatureError, match="64 or 65 bytes"):
        CompactSignature.from_bytes(bad)


def test_sign__private_key_as_hex_string():
    account = Account.create()
    digest = b"\x11" * 32
    assert recover_digest(digest, sign_digest(account.key.hex(), digest)) == account.address
    with pytest.raises(SignatureError):
        sign_digest("0xnothex", digest)


def test_recover__fast_and_fallback_paths_agree(monkeypatch):
    from protocolbanks.sdk import signing

    account = Account.create()
    digests = [bytes([i]) * 32 for i in range(1, 6)]
    fast = [recover_digest(d, sign_digest(account.key, d)) for d in digests]
    monkeypatch.setattr(signing, "coincurve", None)
    slow = [recover_digest(d, sign_digest(account.key, d)) for d in digests]
    assert fast == slow == [account.address] * 5


@pytest.mark.parametrize("r", [0, 2**256 - 1])
def test_recover__r_out_of_range__raises_signature_error(r):
    with pytest.raises(SignatureError, match="out of range"):
        recover_digest(b"\x00" * 32, CompactSignature(r.to_bytes(32, "big"), (5).to_bytes(32, "big")))
