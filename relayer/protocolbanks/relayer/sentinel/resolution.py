"""The human in the loop: after a Sentinel trip, the payer decides on-chain and the relayer follows.

- Lift (`unfreeze`, payer only): the spending was the payer's own. The relayer accepts the key again with fresh
  windows, and records `payer_lifted`.
- Confirm (`revokeSessionKey` or `rotateSessionKey`: the key is retired for good): the relayer records
  `payer_confirmed`; the retired key is refused by the acceptance rules from then on.

Both arrive as contract events through the chain cache's hooks, so a decision made from any wallet, the SDK or
`protocolbanks payer …` is seen the same way.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from protocolbanks.relayer.sentinel.guard import SentinelGuard
from protocolbanks.relayer.store import VoucherStore, schema

log = logging.getLogger("protocolbanks.relayer.sentinel")


class FreezeResolutionWatcher:
    """A chain-cache hook: `(event name, args)`; acts only on channels with a tripped key."""

    def __init__(self, guard: SentinelGuard, store: VoucherStore, clock: Callable[[], float] = time.time, *,
                 record: bool = True) -> None:
        self.guard = guard
        self.store = store
        self.clock = clock
        self.record = record  # with several workers, one of them records (the others only follow)

    def __call__(self, name: str, args: Mapping[str, Any]) -> None:
        if name == "ChannelUnfrozen":
            channel_id = bytes(args["channelId"])
            epochs = self.guard.lift_channel(channel_id)
            if epochs:
                self._record(channel_id, "", "payer_lifted", {"epochs": epochs})
        elif name == "SignerRetired":
            channel_id = bytes(args["channelId"])
            epochs = self.guard.tripped_epochs(channel_id)
            if epochs:
                self._record(channel_id, str(args["signer"]), "payer_confirmed",
                             {"epochs": epochs, "redeemableUntil": int(args["redeemableUntil"])})

    def _record(self, channel_id: bytes, signer: str, kind: str, detail: dict[str, Any]) -> None:
        if not self.record:
            return
        log.warning("sentinel: %s on channel 0x%s", kind, channel_id.hex())
        with self.store.engine.begin() as connection:
            connection.execute(schema.sentinel_events.insert().values(
                channel_id=channel_id, signer=signer, kind=kind, detail=json.dumps(detail), action="resolved",
                created_at_ms=int(self.clock() * 1000)))
