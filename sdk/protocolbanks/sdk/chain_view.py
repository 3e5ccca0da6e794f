"""A merchant's view of the chain: StreamChannels' events, polled with web3 and folded into channel snapshots.

The relayer's intake and the HTTP gateway read snapshots from memory (no chain round trip per voucher); `poll()`
brings them up to the chain head. The contract's ABI comes from the SDK package, so no Ape is needed at run time.

Reorgs: events of the newest `reorg_depth` blocks are kept in a separate layer that every poll rebuilds from the
chain, so a block that a reorg removes takes its events with it. Older blocks are folded into the final state;
the hash of the newest final block is checked on every poll, and if even that changed (a reorg deeper than
`reorg_depth`) the whole state is rebuilt from `from_block`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eth_utils import to_checksum_address
from protocolbanks.sdk.abi_files import stream_channels_abi
from protocolbanks.sdk.acceptance import ChannelSnapshot
from protocolbanks.sdk.channel_events import ChannelEventReducer
from web3 import Web3
from web3.exceptions import BlockNotFound

log = logging.getLogger("protocolbanks.chain")

__all__ = ["ChainCache", "ChainEvent", "stream_channels_abi"]

EventHook = Callable[[str, dict[str, Any]], None]


@dataclass(frozen=True)
class ChainEvent:
    block_number: int
    name: str
    args: dict[str, Any]


class ChainCache:
    """Snapshots of every channel of one StreamChannels contract, kept current from its events."""

    def __init__(self, w3: Web3, contract_address: str, *, from_block: int = 0, max_range: int = 2_000,
                 reorg_depth: int = 12, clock: Callable[[], float] = time.time) -> None:
        self.w3 = w3
        abi = stream_channels_abi()
        self.contract = w3.eth.contract(address=to_checksum_address(contract_address), abi=abi)
        self.from_block = from_block
        self.max_range = max_range
        self.reorg_depth = reorg_depth
        self.clock = clock
        self.hooks: list[EventHook] = []
        self.synced_at: float | None = None  # clock time of the last successful poll
        self._events: dict[bytes, Any] = {}
        for item in abi:
            if item.get("type") == "event":
                signature = f"{item['name']}({','.join(_canonical(i) for i in item['inputs'])})"
                self._events[bytes(Web3.keccak(text=signature))] = self.contract.events[item["name"]]
        self._reset()

    def _reset(self) -> None:
        self.final = ChannelEventReducer()
        self.final_block = self.from_block - 1  # events up to here are folded into `final`
        self.final_hash: bytes | None = None
        self.recent = ChannelEventReducer.layered_on(self.final)
        self._seen: dict[tuple[bytes, int], ChainEvent] = {}  # decoded logs of recent blocks, by (block, index)

    def get(self, channel_id: bytes) -> ChannelSnapshot | None:
        return self.recent.get(channel_id)

    def seconds_behind(self) -> float | None:
        """Seconds since the last successful poll (None before the first)."""
        return None if self.synced_at is None else max(self.clock() - self.synced_at, 0.0)

    def poll(self) -> int:
        """Brings the snapshots up to the head; returns how many events were seen for the first time.
        Raises whatever the RPC raises (the caller retries); the snapshots keep their last good state."""
        head = self.w3.eth.block_number
        if self.final_hash is not None and self._block_hash(self.final_block) != self.final_hash:
            log.error("reorg deeper than %s blocks at block %s: rebuilding the chain view from block %s",
                      self.reorg_depth, self.final_block, self.from_block)
            self._reset()
        new = 0
        final_target = head - self.reorg_depth
        while self.final_block < final_target:
            to_block = min(final_target, self.final_block + self.max_range)
            for event, first_time in self._fetch(self.final_block + 1, to_block):
                self.final.apply(event.name, event.args)
                new += self._announce(event) if first_time else 0
            self.final_block = to_block
            self.final_hash = self._block_hash(to_block)
        recent = ChannelEventReducer.layered_on(self.final)
        for event, first_time in self._fetch(self.final_block + 1, head):
            recent.apply(event.name, event.args)
            new += self._announce(event) if first_time else 0
        self.recent = recent  # one assignment: readers see the old view or the new one, never half of it
        self._seen = {k: v for k, v in self._seen.items() if v.block_number > self.final_block}
        self.synced_at = self.clock()
        return new

    def _fetch(self, from_block: int, to_block: int) -> list[tuple[ChainEvent, bool]]:
        """Decoded events of the blocks in range, in chain order, each with whether it is new to this cache."""
        if from_block > to_block:
            return []
        logs = self.w3.eth.get_logs({"address": self.contract.address, "fromBlock": from_block,
                                     "toBlock": to_block})
        out = []
        for entry in sorted(logs, key=lambda e: (e["blockNumber"], e["logIndex"])):
            key = (bytes(entry["blockHash"]), int(entry["logIndex"]))
            known = self._seen.get(key)
            if known is not None:
                out.append((known, False))
                continue
            event_type = self._events.get(bytes(entry["topics"][0])) if entry["topics"] else None
            if event_type is None:
                continue
            decoded = event_type().process_log(entry)
            event = ChainEvent(int(entry["blockNumber"]), decoded["event"], _plain(decoded["args"]))
            self._seen[key] = event
            out.append((event, True))
        return out

    def _announce(self, event: ChainEvent) -> int:
        for hook in self.hooks:
            try:
                hook(event.name, event.args)
            except Exception as exc:  # a hook's failure must not stop the chain view
                log.warning("chain event hook failed on %s: %s", event.name, exc)
        return 1

    def _block_hash(self, number: int) -> bytes | None:
        if number < 0:
            return None
        try:
            return bytes(self.w3.eth.get_block(number)["hash"])
        except BlockNotFound:  # the chain is now shorter than it was: a reorg
            return b""


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
