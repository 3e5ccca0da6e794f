"""The packed `redeemBatch` rows: the SDK packs what the contract reads, and refuses what it cannot pack."""

import pytest
from hypothesis import given
from hypothesis import strategies as st
from protocolbanks.sdk import pack_redemption_rows, unpack_redemption_rows
from protocolbanks.sdk.batch_rows import ROW_BYTES

word = st.binary(min_size=32, max_size=32)
redemptions = st.lists(st.tuples(word, st.integers(0, 2**80 - 1), st.integers(0, 2**256 - 1), word, word),
                       max_size=12)


@given(redemptions)
def test_pack_then_unpack__round_trips(rows):
    packed = pack_redemption_rows(rows)
    assert len(packed) == ROW_BYTES * len(rows)
    assert unpack_redemption_rows(packed) == rows


def test_pack__layout_is_id_amount_terms_r_vs():
    row = (b"\x11" * 32, 0x0102, 0x0304, b"\x22" * 32, b"\x33" * 32)
    packed = pack_redemption_rows([row])
    assert packed == (b"\x11" * 32 + (0x0102).to_bytes(10, "big") + (0x0304).to_bytes(32, "big")
                      + b"\x22" * 32 + b"\x33" * 32)


@pytest.mark.parametrize("row, message", [
    ((b"\x11" * 32, 2**80, 0, b"\x00" * 32, b"\x00" * 32), "outside 0..2\\^80-1"),
    ((b"\x11" * 32, -1, 0, b"\x00" * 32, b"\x00" * 32), "outside 0..2\\^80-1"),
    ((b"\x11" * 31, 1, 0, b"\x00" * 32, b"\x00" * 32), "channelId must be 32 bytes"),
    ((b"\x11" * 32, 1, 2**256, b"\x00" * 32, b"\x00" * 32), "terms must be a uint256"),
    ((b"\x11" * 32, 1, 0, b"\x00" * 32), "5 fields"),
])
def test_pack__a_row_it_cannot_pack__is_refused_with_its_index(row, message):
    good = (b"\x11" * 32, 1, 0, b"\x00" * 32, b"\x00" * 32)
    with pytest.raises(ValueError, match=f"row 1: .*{message}"):
        pack_redemption_rows([good, row])


def test_unpack__not_whole_rows__is_refused():
    with pytest.raises(ValueError, match="138 bytes each"):
        unpack_redemption_rows(b"\x00" * (ROW_BYTES + 1))
