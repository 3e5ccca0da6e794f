"""The few ERC-20 / EIP-2612 / ERC-5267 calls the payer side needs, with a minimal ABI (no Ape, no artefacts)."""

from __future__ import annotations

from typing import Any

from web3 import Web3
from web3.exceptions import ContractLogicError, Web3Exception

ERC20_ABI: list[dict[str, Any]] = [
    {"type": "function", "name": "approve", "stateMutability": "nonpayable",
     "inputs": [{"name": "spender", "type": "address"}, {"name": "value", "type": "uint256"}],
     "outputs": [{"name": "", "type": "bool"}]},
    *({"type": "function", "name": name, "stateMutability": "view", "inputs": inputs,
       "outputs": [{"name": "", "type": out}]}
      for name, inputs, out in [
          ("allowance", [{"name": "owner", "type": "address"}, {"name": "spender", "type": "address"}], "uint256"),
          ("balanceOf", [{"name": "owner", "type": "address"}], "uint256"),
          ("nonces", [{"name": "owner", "type": "address"}], "uint256"),
          ("name", [], "string"),
          ("decimals", [], "uint8"),
      ]),
    {"type": "function", "name": "eip712Domain", "stateMutability": "view", "inputs": [],
     "outputs": [{"name": "fields", "type": "bytes1"}, {"name": "name", "type": "string"},
                 {"name": "version", "type": "string"}, {"name": "chainId", "type": "uint256"},
                 {"name": "verifyingContract", "type": "address"}, {"name": "salt", "type": "bytes32"},
                 {"name": "extensions", "type": "uint256[]"}]},
]


def erc20(w3: Web3, token: str) -> Any:
    return w3.eth.contract(address=Web3.to_checksum_address(token), abi=ERC20_ABI)


def permit_domain(w3: Web3, token: str) -> tuple[str, str] | None:
    """(name, version) of the token's EIP-2612 domain, or None when the token has no permit."""
    contract = erc20(w3, token)
    try:
        contract.functions.nonces(Web3.to_checksum_address(token)).call()
    except (ContractLogicError, Web3Exception, ValueError):
        return None
    try:
        _fields, name, version, *_ = contract.functions.eip712Domain().call()
        return str(name), str(version)
    except (ContractLogicError, Web3Exception, ValueError):
        return str(contract.functions.name().call()), "1"  # the common default before ERC-5267
