"""Voucher JSON documents and revert decoding: round trips and clear errors for bad input."""

import pytest
from eth_abi import encode
from eth_account import Account
from eth_utils import keccak
from protocolbanks.sdk import ChannelDomain, LaneTerms, Voucher
from protocolbanks.sdk.contract_errors import decode_revert
from protocolbanks.sdk.vouchers_file import SignedVoucher, VoucherFormatError

DOMAIN = ChannelDomain(1, "0x5FbDB2315678afecb367f032d93F642f64180aa3")


def make_voucher(amount: int = 2_500_000) -> SignedVoucher:
    terms = LaneTerms(50_000_000, 20_000_000, 3600, 2**35, 3)
    sig = Voucher(b"\x05" * 32, terms.epoch, amount).sign(DOMAIN, Account.create().key)
    return SignedVoucher(b"\x05" * 32, amount, terms, sig)


def test_voucher_file__round_trip():
    voucher = make_voucher()
    assert SignedVoucher.from_json(voucher.to_json()) == voucher
    assert '"cumulativeAmount": "2500000"' in voucher.to_json()  # amounts travel as decimal strings


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.pop("r"), "not a signed voucher"),
    (lambda d: d.update(channelId="0x1234"), "channelId must be 32 bytes"),
    (lambda d: d.update(vs="zz"), "vs must be a 0x-prefixed hex string"),
    (lambda d: d.update(cumulativeAmount="1.5"), "invalid literal"),
    (lambda d: d.update(cumulativeAmount="-1"), "must not be negative"),
    (lambda d: d.update(epoch=9), "epoch does not match"),
])
def test_voucher_file__bad_documents__raise_clear_errors(mutate, message):
    import json

    doc = json.loads(make_voucher().to_json())
    mutate(doc)
    with pytest.raises(VoucherFormatError, match=message):
        SignedVoucher.from_json(json.dumps(doc))


def test_voucher_file__not_json__raises():
    with pytest.raises(VoucherFormatError):
        SignedVoucher.from_json("{nope")


def test_decode_revert__names_error_and_arguments():
    data = keccak(text="VoucherExceedsDeposit(uint256,uint256)")[:4] + encode(["uint256", "uint256"], [7, 5])
    decoded = decode_revert(data)
    assert decoded is not None and decoded.name == "VoucherExceedsDeposit"
    assert decoded.args == {"cumulativeAmount": 7, "deposit": 5}
    assert str(decoded) == "VoucherExceedsDeposit(cumulativeAmount=7, deposit=5)"


def test_decode_revert__token_and_solidity_errors_are_named_too():
    sender = "0x" + "ab" * 20
    data = keccak(text="ERC20InsufficientBalance(address,uint256,uint256)")[:4] + encode(
        ["address", "uint256", "uint256"], [sender, 0, 5_000_000])
    assert str(decode_revert(data)) == f"ERC20InsufficientBalance(sender={sender}, balance=0, needed=5000000)"
    message = keccak(text="Error(string)")[:4] + encode(["string"], ["paused"])
    assert str(decode_revert(message)) == "Error(message=paused)"


def test_decode_revert__unknown_selector__returns_none():
    assert decode_revert(b"\xde\xad\xbe\xef") is None


def test_shipped_abi__matches_the_compiled_contract(channels):
    """The SDK ships ABIs so run-time code never needs Ape; they must be the ones just compiled."""
    import json
    from importlib import resources

    shipped = json.loads(resources.files("protocolbanks.sdk").joinpath("abi/StreamChannels.json").read_text())
    compiled = [item.model_dump(mode="json", by_alias=True, exclude_none=True)
                for item in channels.contract_type.abi]
    def key(item):
        return (item["type"], item.get("name", ""))
    assert sorted(key(i) for i in shipped) == sorted(key(i) for i in compiled), \
        "run `make compile` and commit sdk/protocolbanks/sdk/abi/"
