"""The packed `VouchersRedeemed.redeemed` rows: the SDK decodes exactly what the contract packs."""

import pytest
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
