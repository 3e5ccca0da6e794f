"""The `pb-channel` x402 scheme on the wire: what a 402 asks for, what a paid request carries, what comes back.

Standard x402 v2 envelope (headers PAYMENT-REQUIRED / PAYMENT-SIGNATURE / PAYMENT-RESPONSE, base64 JSON; the
`x402` library does that part). Scheme-specific parts, all amounts decimal strings of token base units:

- requirement `extra`: the EIP-712 domain of the channels contract, the merchant's published rate for the
  route (`rate`, see protocolbanks.sdk.pricing) so the client can check the amount before signing:
  `{"name": "ProtocolBanks StreamChannels", "version": "1", "verifyingContract": "0x…", "rate": {...}}`
- payment `payload` (also the relayer's `POST /v1/vouchers` body, plus `type`):
  `{"type": "voucher", "channelId": "0x…", "cumulativeAmount": "300000", "terms": "0x…", "signature": "0x…64 bytes"}`
- settle response `extra` / a corrective 402's requirement `extra`: `{"paymentId", "chargedAmount",
  "channelState": {"channelId", "chargedCumulativeAmount" | "acceptedCumulative", "remaining"}}`

The voucher is the cumulative total the payer owes on the channel after this request: previous charged
cumulative + this request's amount.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from protocolbanks.sdk.lane_terms import LaneTerms
from protocolbanks.sdk.signing import CompactSignature, SignatureError
from protocolbanks.sdk.typed_data import DOMAIN_NAME, DOMAIN_VERSION, ChannelDomain
from protocolbanks.sdk.wire_values import WireValueError, parse_hex, parse_uint

SCHEME = "pb-channel"
PAYLOAD_TYPE = "voucher"

# error codes a merchant puts in a 402's `error` (besides protocolbanks.sdk.acceptance.Rejection values)
CUMULATIVE_MISMATCH = "pb_cumulative_mismatch"  # the voucher is not (accepted cumulative + price)
CHANNEL_BUSY = "pb_channel_busy"  # another request of this channel is being served
SENTINEL_HOLD = "pb_sentinel_hold"  # the relayer's Sentinel refused the channel's vouchers: the gateway pauses it
UNKNOWN_CHANNEL_FOR_PAYEE = "pb_unknown_channel"


class WireError(ValueError):
    """A payload or requirement that does not follow the scheme; `code` is the reason put on the wire."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def network_of(chain_id: int) -> str:
    """CAIP-2 network id: `eip155:31337`."""
    return f"eip155:{chain_id}"


def chain_id_of(network: str) -> int:
    namespace, _, reference = network.partition(":")
    if namespace != "eip155" or not reference.isdigit():
        raise WireError("invalid_network", f"{network!r} is not an eip155:<chain id> network")
    return int(reference)


def requirement_extra(domain: ChannelDomain, rate: dict[str, Any] | None = None) -> dict[str, Any]:
    extra: dict[str, Any] = {"name": DOMAIN_NAME, "version": DOMAIN_VERSION,
                             "verifyingContract": domain.verifying_contract}
    if rate is not None:
        extra["rate"] = rate
    return extra


def domain_of(network: str, extra: dict[str, Any]) -> ChannelDomain:
    """The EIP-712 domain a requirement names; refuses a domain that is not ProtocolBanks StreamChannels v1."""
    if extra.get("name") != DOMAIN_NAME or extra.get("version") != DOMAIN_VERSION:
        raise WireError("invalid_domain", f"requirement names domain {extra.get('name')!r}/{extra.get('version')!r}")
    contract = extra.get("verifyingContract")
    if not isinstance(contract, str) or not contract.startswith("0x") or len(contract) != 42:
        raise WireError("invalid_domain", "requirement extra has no verifyingContract address")
    return ChannelDomain(chain_id_of(network), contract)


def _uint(value: Any, name: str) -> int:
    try:
        return parse_uint(value, name)
    except WireValueError as exc:
        raise WireError("invalid_payload", str(exc)) from exc


def _hex(value: Any, name: str, length: int | None = None) -> bytes:
    try:
        return parse_hex(value, name, length)
    except WireValueError as exc:
        raise WireError("invalid_payload", str(exc)) from exc


@dataclass(frozen=True)
class VoucherPayload:
    """The `payload` of a pb-channel payment: one signed cumulative voucher."""

    channel_id: bytes
    cumulative: int
    terms: LaneTerms
    signature: CompactSignature
    request_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": PAYLOAD_TYPE, "channelId": "0x" + self.channel_id.hex(), "cumulativeAmount": str(self.cumulative),
            "terms": hex(self.terms.pack()), "signature": "0x" + (self.signature.r + self.signature.vs).hex(),
        }
        if self.request_id is not None:
            body["requestId"] = self.request_id
        return body

    @classmethod
    def from_dict(cls, raw: Any) -> VoucherPayload:
        if not isinstance(raw, dict) or raw.get("type") != PAYLOAD_TYPE:
            raise WireError("invalid_payload", f"payload must be an object with type {PAYLOAD_TYPE!r}")
        terms_raw = raw.get("terms")
        if not isinstance(terms_raw, str):
            raise WireError("invalid_payload", "terms must be a hex or decimal string")
        try:
            terms = LaneTerms.unpack(int(terms_raw, 16) if terms_raw.startswith("0x") else int(terms_raw))
            signature = CompactSignature.from_bytes(_hex(raw.get("signature"), "signature"))
        except (ValueError, SignatureError) as exc:
            raise WireError("invalid_payload", str(exc)) from exc
        request_id = raw.get("requestId")
        if request_id is not None and (not isinstance(request_id, str) or not 0 < len(request_id) <= 128):
            raise WireError("invalid_payload", "requestId must be a string of 1..128 characters")
        return cls(_hex(raw.get("channelId"), "channelId", 32), _uint(raw.get("cumulativeAmount"), "cumulativeAmount"),
                   terms, signature, request_id)

    def relayer_body(self, chain_id: int) -> dict[str, Any]:
        """The same voucher as the relayer's `POST /v1/vouchers` body."""
        body = self.to_dict()
        body.pop("type")
        body["chainId"] = chain_id
        return body


@dataclass(frozen=True)
class ChannelStateExtra:
    """What the merchant tells the payer about its channel after a payment (or in a corrective 402)."""

    channel_id: bytes
    charged_cumulative: int
    remaining: int | None = None

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"channelId": "0x" + self.channel_id.hex(),
                                "chargedCumulativeAmount": str(self.charged_cumulative)}
        if self.remaining is not None:
            body["remaining"] = str(self.remaining)
        return body

    @classmethod
    def from_dict(cls, raw: Any) -> ChannelStateExtra:
        if not isinstance(raw, dict):
            raise WireError("invalid_channel_state", "channelState must be an object")
        remaining = raw.get("remaining")
        return cls(_hex(raw.get("channelId"), "channelId", 32),
                   _uint(raw.get("chargedCumulativeAmount"), "chargedCumulativeAmount"),
                   None if remaining is None else _uint(remaining, "remaining"))
