"""The packed row list of a `VouchersRedeemed` event: per voucher that moved money, the channel and its new
redeemed amount.

The contract packs each row as the 32-byte channel id followed by the redeemed amount as a 10-byte big-endian
integer (42 bytes, against 64 for two ABI arrays: log data costs 8 gas a byte on every batch row). See
contracts/libraries/RedeemedRows.sol.
"""

from __future__ import annotations

from collections.abc import Iterable

ROW_BYTES = 42
AMOUNT_BYTES = 10


def decode_redeemed_rows(data: bytes) -> list[tuple[bytes, int]]:
    """(channel id, redeemed amount) for each row of an event's `redeemed` field, in batch order."""
    data = bytes(data)
    if len(data) % ROW_BYTES:
        raise ValueError(f"redeemed rows are {ROW_BYTES} bytes each; got {len(data)} bytes")
    return [(data[at:at + 32], int.from_bytes(data[at + 32:at + ROW_BYTES], "big"))
            for at in range(0, len(data), ROW_BYTES)]


def encode_redeemed_rows(rows: Iterable[tuple[bytes, int]]) -> bytes:
    """The contract's packing of (channel id, redeemed amount) rows (for tests and indexers' fixtures)."""
    out = bytearray()
    for channel_id, amount in rows:
        if len(channel_id) != 32:
            raise ValueError("a channel id is 32 bytes")
        out += bytes(channel_id) + int(amount).to_bytes(AMOUNT_BYTES, "big")
    return bytes(out)
