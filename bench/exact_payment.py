"""x402's "exact" scheme on-chain: one EIP-3009 `transferWithAuthorization` per paid request (what a facilitator
submits for each payment). Signed here with eth-account; used by the gateway benchmark and its test."""

from __future__ import annotations

import os

from eth_account import Account
from eth_account.messages import encode_typed_data

_DOMAIN = [{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
           {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}]
_AUTHORIZATION = [{"name": "from", "type": "address"}, {"name": "to", "type": "address"},
                  {"name": "value", "type": "uint256"}, {"name": "validAfter", "type": "uint256"},
                  {"name": "validBefore", "type": "uint256"}, {"name": "nonce", "type": "bytes32"}]


def sign_transfer_authorization(private_key: bytes | str, *, token: str, chain_id: int, to: str, value: int,
                                valid_before: int, token_name: str = "Mock USD Coin",
                                nonce: bytes | None = None) -> tuple:
    """The arguments of `transferWithAuthorization(from, to, value, validAfter, validBefore, nonce, v, r, s)`."""
    sender = Account.from_key(private_key).address
    nonce = nonce or os.urandom(32)
    message = encode_typed_data(full_message={
        "types": {"EIP712Domain": _DOMAIN, "TransferWithAuthorization": _AUTHORIZATION},
        "primaryType": "TransferWithAuthorization",
        "domain": {"name": token_name, "version": "1", "chainId": chain_id, "verifyingContract": token},
        "message": {"from": sender, "to": to, "value": value, "validAfter": 0, "validBefore": valid_before,
                    "nonce": nonce},
    })
    signed = Account.sign_message(message, private_key)
    return (sender, to, value, 0, valid_before, nonce, signed.v, int(signed.r).to_bytes(32, "big"),
            int(signed.s).to_bytes(32, "big"))
