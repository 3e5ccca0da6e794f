"""The relayer's view of the chain: StreamChannels' events, polled with web3 and folded into channel snapshots.

The intake reads snapshots from memory (no chain round trip per voucher); `poll()` brings them up to the chain
head. The contract's ABI comes from the SDK package, so no Ape is needed at run time.
"""

from __future__ import annotations

import json
import logging
from importlib import resources
from typing import Any

from eth_utils import to_checksum_address
from protocolbanks.sdk.acceptance import ChannelSnapshot
from protocolbanks.sdk.channel_events import ChannelEventReducer
from web3 import Web3

log = logging.getLogger("protocolbanks.relayer.chain")


def stream_channels_abi() -> list[dict[str, Any]]:
    text = resources.files("protocolbanks.sdk").joinpath("abi/StreamChannels.json").read_text()
    abi: list[dict[str, Any]] = json.loads(text)
    return abi


class ChainCache:
    """Snapshots of every channel of one StreamChannels contract, kept current from its events."""

    def __init__(self, w3: Web3, contract_address: str, *, from_block: int = 0, max_range: int = 2_000) -> None:
        self.w3 = w3
        abi = stream_channels_abi()
        self.contract = w3.eth.contract(address=to_checksum_address(contract_address), abi=abi)
        self.reducer = ChannelEventReducer()
        self.next_block = from_block
        self.max_range = max_range
        self._events: dict[bytes, Any] = {}
        for item in abi:
            if item.get("type") == "event":
                signature = f"{item['name']}({','.join(_canonical(i) for i in item['inputs'])})"
                self._events[bytes(Web3.keccak(text=signature))] = self.contract.events[item["name"]]

    def get(self, channel_id: bytes) -> ChannelSnapshot | None:
        return self.reducer.get(channel_id)

    def poll(self) -> int:
        """Applies every new event up to the head; returns how many were applied."""
        head = self.w3.eth.block_number
        applied = 0
        while self.next_block <= head:
            to_block = min(head, self.next_block + self.max_range - 1)
            logs = self.w3.eth.get_logs({"address": self.contract.address, "fromBlock": self.next_block,
                                         "toBlock": to_block})
            for entry in sorted(logs, key=lambda e: (e["blockNumber"], e["logIndex"])):
                event = self._events.get(bytes(entry["topics"][0])) if entry["topics"] else None
                if event is None:
                    continue
                decoded = event().process_log(entry)
                self.reducer.apply(decoded["event"], _plain(decoded["args"]))
                applied += 1
            self.next_block = to_block + 1
        return applied


def _canonical(abi_input: dict[str, Any]) -> str:
    if abi_input["type"].startswith("tuple"):
        inner = ",".join(_canonical(c) for c in abi_input["components"])
        return f"({inner}){abi_input['type'][5:]}"
    return str(abi_input["type"])


def _plain(value: Any) -> Any:
    """web3's AttributeDicts to plain dicts, recursively."""
    if hasattr(value, "items"):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
