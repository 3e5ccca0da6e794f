"""The `rows` argument of `redeemBatch`: each voucher's `Redemption` fields packed without ABI padding.

A row is 138 bytes: channel id (32), cumulative amount (10, big-endian: a channel holds at most 2^80 - 1 base
units), lane terms (32), r (32), vs (32). Calldata is most of what a batch costs, and the ABI would pad the
amount to 32 bytes (88 gas a row). `redeem` and `closeCooperative` keep the `Redemption` tuple.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

Redemption = tuple[bytes, int, int, bytes, bytes]  # (channelId, cumulativeAmount, terms, r, vs)

ROW_BYTES = 138
AMOUNT_BYTES = 10
MAX_AMOUNT = 2**80 - 1


def _word(value: bytes, name: str, index: int) -> bytes:
    value = bytes(value)
    if len(value) != 32:
        raise ValueError(f"row {index}: {name} must be 32 bytes, got {len(value)}")
    return value


def pack_redemption_rows(rows: Iterable[Sequence[Any]]) -> bytes:
    """`redeemBatch`'s rows from `Redemption` tuples (channelId, cumulativeAmount, terms, r, vs), in order."""
    out = bytearray()
    for index, row in enumerate(rows):
        if len(row) != 5:
            raise ValueError(f"row {index}: a redemption has 5 fields (channelId, cumulativeAmount, terms, r, vs)")
        channel_id, amount, terms, r, vs = row
        amount, terms = int(amount), int(terms)
        if not 0 <= amount <= MAX_AMOUNT:
            raise ValueError(f"row {index}: cumulativeAmount {amount} is outside 0..2^80-1")
        if not 0 <= terms < 2**256:
            raise ValueError(f"row {index}: terms must be a uint256")
        out += _word(channel_id, "channelId", index) + amount.to_bytes(AMOUNT_BYTES, "big") + terms.to_bytes(32, "big")
        out += _word(r, "r", index) + _word(vs, "vs", index)
    return bytes(out)


def unpack_redemption_rows(data: bytes) -> list[Redemption]:
    """The `Redemption` tuples of packed `redeemBatch` rows (for reading back a sent transaction)."""
    data = bytes(data)
    if len(data) % ROW_BYTES:
        raise ValueError(f"redeemBatch rows are {ROW_BYTES} bytes each; got {len(data)} bytes")
    rows = []
    for at in range(0, len(data), ROW_BYTES):
        amount_end = at + 32 + AMOUNT_BYTES
        rows.append((data[at:at + 32], int.from_bytes(data[at + 32:amount_end], "big"),
                     int.from_bytes(data[amount_end:amount_end + 32], "big"),
                     data[amount_end + 32:amount_end + 64], data[amount_end + 64:amount_end + 96]))
    return rows
