"""The OpenAPI 3.1 description of the relayer's HTTP interface, served at GET /openapi.json."""

from __future__ import annotations

from typing import Any

from protocolbanks.sdk.acceptance import Rejection

WIRE_REASONS = ["invalid_json", "invalid_field", "invalid_signature_length", "invalid_signature", "wrong_chain",
                "wrong_payee", "body_too_large", "sentinel_key_tripped", "sentinel_spike", "sentinel_max_per_payment",
                "sentinel_max_per_minute", "sentinel_max_per_hour", "sentinel_min_remaining_balance",
                "chain_unavailable", "channel_busy", "request_id_reused"]
REASONS = sorted({r.value for r in Rejection} | set(WIRE_REASONS))

_UINT = {"type": "string", "pattern": "^[0-9]{1,78}$", "description": "unsigned integer, token base units"}
_HEX32 = {"type": "string", "pattern": "^0x[0-9a-fA-F]{64}$"}
_CHANNEL_PARAM = {"name": "channelId", "in": "path", "required": True, "schema": _HEX32}


def openapi_document() -> dict[str, Any]:
    voucher = {
        "type": "object",
        "required": ["channelId", "cumulativeAmount", "terms"],
        "properties": {
            "channelId": _HEX32,
            "cumulativeAmount": {"oneOf": [_UINT, {"type": "integer", "minimum": 0}]},
            "terms": {"type": "string", "description": "the lane terms word (hex or decimal)"},
            "r": _HEX32, "vs": _HEX32,
            "signature": {"type": "string", "description": "64 or 65 bytes hex, instead of r/vs"},
            "chainId": {"type": "integer"},
            "requestId": {"type": "string", "maxLength": 128, "description": "idempotency key"},
            "resource": {"type": "string", "maxLength": 2048},
        },
    }
    answer = {
        "type": "object",
        "properties": {
            "status": {"enum": ["accepted", "stale", "duplicate", "rejected", "unavailable"]},
            "channelId": _HEX32, "cumulativeAmount": _UINT, "payment": _UINT, "remaining": _UINT,
            "paymentId": {"type": "string"}, "reason": {"enum": REASONS}, "message": {"type": "string"},
        },
    }
    refusal = {"description": "refused; `reason` says why",
               "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Answer"}}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "ProtocolBanks relayer", "version": "1"},
        "paths": {
            "/v1/vouchers": {"post": {
                "summary": "Submit a signed cumulative voucher; answered only after it is stored durably",
                "requestBody": {"required": True,
                                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Voucher"}}}},
                "responses": {
                    "200": {"description": "accepted, stale (older or equal: idempotent) or duplicate (same requestId)",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Answer"}}}},
                    **dict.fromkeys(("400", "401", "403", "404", "409", "413", "422", "429"), refusal),
                    "503": {"description": "`store_unavailable` (the store failed) or `chain_unavailable` (the chain "
                                           "view is older than `max_chain_lag_s`): nothing was acknowledged; retry"},
                },
            }},
            "/v1/vouchers/batch": {"post": {
                "summary": "Submit up to 256 vouchers at once (a merchant gateway forwarding what it accepted); each "
                           "is decided and made durable as if posted alone",
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["vouchers"],
                    "properties": {"vouchers": {"type": "array", "minItems": 1, "maxItems": 256,
                                                "items": {"$ref": "#/components/schemas/Voucher"}}}}}}},
                "responses": {
                    "200": {"description": "one answer per voucher, in order, each with its `httpStatus`",
                            "content": {"application/json": {"schema": {"type": "object", "properties": {
                                "results": {"type": "array", "items": {"$ref": "#/components/schemas/Answer"}}}}}}},
                    "400": refusal, "413": refusal,
                },
            }},
            "/healthz": {"get": {"summary": "Health: 200 `ok`, or 503 `degraded` while the chain view is stale",
                                 "responses": {"200": {"description": "ok"},
                                               "503": {"description": "degraded: chain_unavailable"}}}},
            "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {"description": "text"}}}},
            "/v1/channels/{channelId}": {"get": {
                "summary": "What the relayer holds for a channel (acceptedCumulative, settledCumulative, unsettled, "
                           "and the chain's deposit / redeemedOnChain / frozen / closing / closed)",
                "parameters": [_CHANNEL_PARAM],
                "responses": {"200": {"description": "the channel"}, "404": {"description": "unknown_channel"},
                              "422": {"description": "invalid_field: not a 32-byte hex id"}}}},
            "/v1/channels/{channelId}/settle": {"post": {
                "summary": "Settle this channel on the next round whatever the thresholds (once a minute at most)",
                "parameters": [_CHANNEL_PARAM],
                "responses": {"202": {"description": "queued"}, "200": {"description": "nothing_to_settle"},
                              "429": {"description": "too_soon"}}}},
        },
        "components": {"schemas": {"Voucher": voucher, "Answer": answer}},
    }
