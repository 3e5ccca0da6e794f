"""The voucher submission on the wire (JSON) and its validation into typed values, with reason codes.

    {"channelId": "0x…32 bytes", "cumulativeAmount": "2500000", "terms": "0x…", "r": "0x…", "vs": "0x…",
     "chainId": 31337, "requestId": "optional idempotency key", "resource": "optional, e.g. /v1/images"}

`signature` (65 or 64 bytes, hex) may replace `r`/`vs`. Amounts are decimal strings or JSON integers of base
units; floats are refused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from protocolbanks.sdk.lane_terms import LaneTerms
from protocolbanks.sdk.signing import CompactSignature, SignatureError
from protocolbanks.sdk.wire_values import WireValueError, parse_hex, parse_uint


class SubmissionError(ValueError):
    """A submission that cannot be read; `code` is the stable reason, `status` the HTTP status."""

    def __init__(self, code: str, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


@dataclass(frozen=True)
class VoucherSubmission:
    channel_id: bytes
    cumulative: int
    terms: LaneTerms
    signature: CompactSignature
    chain_id: int | None = None
    request_id: str | None = None
    resource: str | None = None


def _hex(raw: dict[str, Any], name: str, length: int | None = None) -> bytes:
    try:
        return parse_hex(raw.get(name), name, length)
    except WireValueError as exc:
        raise SubmissionError("invalid_field", str(exc)) from exc


def _uint(raw: dict[str, Any], name: str, *, hex_ok: bool = False) -> int:
    try:
        return parse_uint(raw.get(name), name, hex_ok=hex_ok)
    except WireValueError as exc:
        raise SubmissionError("invalid_field", str(exc)) from exc


MAX_BATCH = 256


def parse_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SubmissionError("invalid_json", f"body is not JSON: {exc}", 400) from exc


def parse_submission(body: bytes) -> VoucherSubmission:
    """Reads and validates a submission; raises SubmissionError with a reason code."""
    return submission_from(parse_json(body))


def parse_batch(body: bytes) -> list[VoucherSubmission | SubmissionError]:
    """`{"vouchers": [submission, ...]}` (1..MAX_BATCH): each item parsed, or the error that item has."""
    raw = parse_json(body)
    items = raw.get("vouchers") if isinstance(raw, dict) else None
    if not isinstance(items, list) or not 0 < len(items) <= MAX_BATCH:
        raise SubmissionError("invalid_json", f'body must be {{"vouchers": [1..{MAX_BATCH} submissions]}}', 400)
    out: list[VoucherSubmission | SubmissionError] = []
    for item in items:
        try:
            out.append(submission_from(item))
        except SubmissionError as exc:
            out.append(exc)
    return out


def submission_from(raw: Any) -> VoucherSubmission:
    """Validates one submission object; raises SubmissionError with a reason code."""
    if not isinstance(raw, dict):
        raise SubmissionError("invalid_json", "a submission must be a JSON object", 400)
    channel_id = _hex(raw, "channelId", 32)
    cumulative = _uint(raw, "cumulativeAmount")
    terms = LaneTerms.unpack(_uint(raw, "terms", hex_ok=True))
    if "signature" in raw:
        try:
            signature = CompactSignature.from_bytes(_hex(raw, "signature"))
        except SignatureError as exc:
            raise SubmissionError("invalid_signature_length", str(exc)) from exc
    else:
        signature = CompactSignature(_hex(raw, "r", 32), _hex(raw, "vs", 32))
    chain_id = _uint(raw, "chainId") if "chainId" in raw else None
    request_id = raw.get("requestId")
    if request_id is not None and (not isinstance(request_id, str) or not 0 < len(request_id) <= 128):
        raise SubmissionError("invalid_field", "requestId must be a string of 1..128 characters")
    resource = raw.get("resource")
    if resource is not None and (not isinstance(resource, str) or len(resource) > 2048):
        raise SubmissionError("invalid_field", "resource must be a string of at most 2048 characters")
    return VoucherSubmission(channel_id, cumulative, terms, signature, chain_id, request_id, resource)
