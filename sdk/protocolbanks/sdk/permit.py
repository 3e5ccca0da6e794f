"""EIP-2612 permits: let a payer open a channel without a separate approval transaction."""

from __future__ import annotations

from eth_account import Account
from eth_account.messages import encode_typed_data

_DOMAIN = [{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
           {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}]
_PERMIT = [{"name": "owner", "type": "address"}, {"name": "spender", "type": "address"},
           {"name": "value", "type": "uint256"}, {"name": "nonce", "type": "uint256"},
           {"name": "deadline", "type": "uint256"}]


def sign_permit(private_key: bytes | str, *, token_name: str, token_version: str = "1", chain_id: int,
                token: str, spender: str, value: int, nonce: int, deadline: int) -> tuple[int, bytes, bytes]:
    """(v, r, s) of the token owner's permit for `spender` to pull `value` base units until `deadline`."""
    owner = Account.from_key(private_key).address
    message = encode_typed_data(full_message={
        "types": {"EIP712Domain": _DOMAIN, "Permit": _PERMIT},
        "primaryType": "Permit",
        "domain": {"name": token_name, "version": token_version, "chainId": chain_id, "verifyingContract": token},
        "message": {"owner": owner, "spender": spender, "value": value, "nonce": nonce, "deadline": deadline},
    })
    signed = Account.sign_message(message, private_key)
    return int(signed.v), int(signed.r).to_bytes(32, "big"), int(signed.s).to_bytes(32, "big")
