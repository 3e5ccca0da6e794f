"""A signed voucher as a JSON document, so a voucher can travel between a signer and a redeemer as a file.

    {"channelId": "0x…", "epoch": 1, "cumulativeAmount": "2500000", "terms": "0x…", "r": "0x…", "vs": "0x…"}

Amounts are decimal strings of base units (never floats).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from protocolbanks.sdk.lane_terms import LaneTerms
from protocolbanks.sdk.signing import CompactSignature


class VoucherFormatError(ValueError):
    """The document is not a valid signed voucher."""


@dataclass(frozen=True)
class SignedVoucher:
    channel_id: bytes
    cumulative_amount: int
    terms: LaneTerms
    signature: CompactSignature

    def redemption(self) -> tuple[bytes, int, int, bytes, bytes]:
        """The `Redemption` tuple `redeem`/`redeemBatch` take."""
        return (self.channel_id, self.cumulative_amount, self.terms.pack(), self.signature.r, self.signature.vs)

    def to_json(self) -> str:
        return json.dumps({
            "channelId": "0x" + self.channel_id.hex(),
            "epoch": self.terms.epoch,
            "cumulativeAmount": str(self.cumulative_amount),
            "terms": hex(self.terms.pack()),
            "r": "0x" + self.signature.r.hex(),
            "vs": "0x" + self.signature.vs.hex(),
        }, indent=2)

    @classmethod
    def from_json(cls, text: str) -> SignedVoucher:
        try:
            raw: dict[str, Any] = json.loads(text)
            channel_id = _hex_bytes(raw["channelId"], 32, "channelId")
            amount = int(str(raw["cumulativeAmount"]), 10)
            terms = LaneTerms.unpack(int(str(raw["terms"]), 16))
            signature = CompactSignature(_hex_bytes(raw["r"], 32, "r"), _hex_bytes(raw["vs"], 32, "vs"))
        except (KeyError, TypeError, json.JSONDecodeError) as exc:
            raise VoucherFormatError(f"not a signed voucher document: {exc}") from exc
        except ValueError as exc:
            raise VoucherFormatError(str(exc)) from exc
        if amount < 0:
            raise VoucherFormatError("cumulativeAmount must not be negative")
        if "epoch" in raw and raw["epoch"] != terms.epoch:
            raise VoucherFormatError("epoch does not match the terms")
        return cls(channel_id, amount, terms, signature)


def _hex_bytes(value: Any, length: int, name: str) -> bytes:
    if not isinstance(value, str) or not value.startswith("0x"):
        raise ValueError(f"{name} must be a 0x-prefixed hex string")
    data = bytes.fromhex(value[2:])
    if len(data) != length:
        raise ValueError(f"{name} must be {length} bytes, got {len(data)}")
    return data
