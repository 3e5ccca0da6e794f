"""Names the protocol's custom errors from raw revert data, using the ABI shipped with the SDK.

Any tool (web3.py, Ape, a block explorer) hands back revert data as bytes; this turns
`0xf383b13e…` into `ChannelNotFound(channelId=0x…)`. A deposit or a payout also runs the token's code, so the
standard ERC-20 errors (ERC-6093, what OpenZeppelin 5 tokens raise), `Error(string)` and `Panic(uint256)` are
named too: `ERC20InsufficientBalance(sender=0x…, balance=0, needed=5000000)` rather than hex.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from eth_abi import decode
from eth_utils import keccak
from protocolbanks.sdk.abi_files import stream_channels_abi


@dataclass(frozen=True)
class DecodedError:
    name: str
    args: dict[str, Any]

    def __str__(self) -> str:
        shown = ", ".join(f"{k}={'0x' + v.hex() if isinstance(v, bytes) else v}" for k, v in self.args.items())
        return f"{self.name}({shown})"


# Errors raised by code other than StreamChannels' own that a protocol call runs: the token's and Solidity's.
OTHER_ERRORS: tuple[dict[str, Any], ...] = tuple(
    {"type": "error", "name": name, "inputs": [{"name": n, "type": t} for n, t in inputs]}
    for name, inputs in [
        ("ERC20InsufficientBalance", [("sender", "address"), ("balance", "uint256"), ("needed", "uint256")]),
        ("ERC20InvalidSender", [("sender", "address")]),
        ("ERC20InvalidReceiver", [("receiver", "address")]),
        ("ERC20InsufficientAllowance", [("spender", "address"), ("allowance", "uint256"), ("needed", "uint256")]),
        ("ERC20InvalidApprover", [("approver", "address")]),
        ("ERC20InvalidSpender", [("spender", "address")]),
        ("Error", [("message", "string")]),
        ("Panic", [("code", "uint256")]),
    ])


@cache
def _errors() -> dict[bytes, tuple[str, list[str], list[str]]]:
    table = {}
    for item in [*OTHER_ERRORS, *stream_channels_abi()]:
        if item.get("type") != "error":
            continue
        types = [i["type"] for i in item["inputs"]]
        signature = f"{item['name']}({','.join(types)})"
        table[keccak(text=signature)[:4]] = (item["name"], [i["name"] for i in item["inputs"]], types)
    return table


def decode_revert(data: bytes) -> DecodedError | None:
    """The error in `data`, or None when the selector is neither StreamChannels' nor one of `OTHER_ERRORS`."""
    entry = _errors().get(bytes(data[:4]))
    if entry is None:
        return None
    name, names, types = entry
    try:
        values = decode(types, bytes(data[4:]))
    except Exception:
        return DecodedError(name, {})
    return DecodedError(name, dict(zip(names, values, strict=True)))
