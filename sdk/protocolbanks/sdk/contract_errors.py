"""Names the protocol's custom errors from raw revert data, using the ABI shipped with the SDK.

Any tool (web3.py, Ape, a block explorer) hands back revert data as bytes; this turns
`0xf383b13e…` into `ChannelNotFound(channelId=0x…)`.
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


@cache
def _errors() -> dict[bytes, tuple[str, list[str], list[str]]]:
    abi = stream_channels_abi()
    table = {}
    for item in abi:
        if item.get("type") != "error":
            continue
        types = [i["type"] for i in item["inputs"]]
        signature = f"{item['name']}({','.join(types)})"
        table[keccak(text=signature)[:4]] = (item["name"], [i["name"] for i in item["inputs"]], types)
    return table


def decode_revert(data: bytes) -> DecodedError | None:
    """The custom error in `data`, or None when the selector is not one of StreamChannels' errors."""
    entry = _errors().get(bytes(data[:4]))
    if entry is None:
        return None
    name, names, types = entry
    try:
        values = decode(types, bytes(data[4:]))
    except Exception:
        return DecodedError(name, {})
    return DecodedError(name, dict(zip(names, values, strict=True)))
