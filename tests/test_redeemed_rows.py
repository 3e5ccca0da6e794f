"""The packed `VouchersRedeemed.redeemed` rows: the SDK decodes exactly what the contract packs."""

import pytest
from conftest import UNIT
from eth_abi import encode as abi_encode
from eth_account import Account
from eth_utils import keccak
from hypothesis import given
from hypothesis import strategies as st
from protocolbanks.sdk import pack_redemption_rows
from protocolbanks.sdk.redeemed_rows import decode_redeemed_rows, encode_redeemed_rows

rows = st.lists(st.tuples(st.binary(min_size=32, max_size=32), st.integers(min_value=0, max_value=2**80 - 1)),
                max_size=20)


@given(rows)
def test_encode_then_decode__round_trips(values):
    assert decode_redeemed_rows(encode_redeemed_rows(values)) == values


def test_decode__length_not_a_multiple_of_a_row__is_refused():
    with pytest.raises(ValueError, match="42 bytes each"):
        decode_redeemed_rows(b"\x00" * 43)


def test_contract_packs_rows_like_the_sdk(open_channel, channels, token, payee):
    opened = [open_channel(2**34) for _ in range(3)]
    amounts = [10**6, 2**33 + 5, 7 * 10**6]
    rows = pack_redemption_rows([c.voucher(a) for c, a in zip(opened, amounts, strict=True)])
    tx = channels.redeemBatch(payee, token, rows, sender=payee)
    [event] = tx.decode_logs(channels.VouchersRedeemed)
    assert bytes(event.redeemed) == encode_redeemed_rows([(c.id, a) for c, a in zip(opened, amounts, strict=True)])


@pytest.mark.parametrize("count", [0, 1, 2, 3, 4, 7])
def test_batch_event__is_the_canonical_abi_encoding(chain, open_channel, channels, token, payee, count):
    """The batch logs `VouchersRedeemed` from where it built the rows: its data must still be exactly
    `abi.encode(total, redeemed)`, zero padding included, whatever the number of rows and of skipped rows."""
    opened = [open_channel(10 * UNIT) for _ in range(count)]
    vouchers = [c.voucher((i + 1) * UNIT) for i, c in enumerate(opened)]
    if count:  # one more row that is skipped (a stranger's signature), so room is left unused
        vouchers.insert(count // 2, opened[0].voucher(9 * UNIT, key=Account.create().key))
    tx = channels.redeemBatch(payee, token, pack_redemption_rows(vouchers), sender=payee)
    topic = keccak(text="VouchersRedeemed(address,address,uint256,bytes)")
    [log] = [entry for entry in chain.provider.web3.eth.get_transaction_receipt(tx.txn_hash)["logs"]
             if bytes(entry["topics"][0]) == topic]
    expected = encode_redeemed_rows([(c.id, (i + 1) * UNIT) for i, c in enumerate(opened)])
    assert bytes(log["data"]) == abi_encode(["uint256", "bytes"], [sum(range(1, count + 1)) * UNIT, expected])
    assert [bytes(t) for t in log["topics"][1:]] == [bytes(12) + bytes.fromhex(a.address[2:]) for a in (payee, token)]
