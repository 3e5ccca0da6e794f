"""Rebuilds channel snapshots from StreamChannels' events alone (what the relayer's cache and any indexer do).

Pure: feed decoded events (name + arguments) in chain order; read `ChannelSnapshot`s back. Every state change
of the contract has an event that carries what changed, and this reducer is tested against `channelState()`
after every kind of transaction.
"""

from __future__ import annotations

from collections import ChainMap
from collections.abc import Mapping, MutableMapping
from dataclasses import replace
from typing import Any

from eth_utils import to_checksum_address
from protocolbanks.sdk.acceptance import ChannelSnapshot
from protocolbanks.sdk.lane_terms import LaneTerms
from protocolbanks.sdk.redeemed_rows import decode_redeemed_rows


class ChannelEventReducer:
    """Channel id -> snapshot, kept current by `apply(event_name, args)`."""

    def __init__(self) -> None:
        self.channels: MutableMapping[bytes, ChannelSnapshot] = {}
        self.closes_at: MutableMapping[bytes, int] = {}

    @classmethod
    def layered_on(cls, base: ChannelEventReducer) -> ChannelEventReducer:
        """A reducer that reads through to `base` and keeps its own changes apart (for blocks that a reorg may
        still remove: throw the layer away and `base` is untouched)."""
        layer = cls()
        layer.channels = ChainMap({}, base.channels)
        layer.closes_at = ChainMap({}, base.closes_at)
        return layer

    def get(self, channel_id: bytes) -> ChannelSnapshot | None:
        return self.channels.get(bytes(channel_id))

    def apply(self, name: str, args: Mapping[str, Any]) -> None:
        handler = getattr(self, f"_on_{name}", None)
        if handler is not None:
            handler(args)

    # One handler per event; events this reducer does not need (GuardianSet, RedemptionSkipped) are ignored.

    def _on_ChannelOpened(self, a: Mapping[str, Any]) -> None:
        payer = to_checksum_address(a["payer"])
        self.channels[bytes(a["channelId"])] = ChannelSnapshot(
            channel_id=bytes(a["channelId"]), payer=payer, payee=to_checksum_address(a["payee"]),
            token=to_checksum_address(a["token"]), signer=payer, terms=LaneTerms.for_payer(0),
            deposit=int(a["deposit"]), claimed=0, salt=bytes(a["salt"]),
        )

    def _update(self, channel_id: bytes, **changes: Any) -> None:
        key = bytes(channel_id)
        if key in self.channels:
            self.channels[key] = replace(self.channels[key], **changes)

    def _on_ChannelToppedUp(self, a: Mapping[str, Any]) -> None:
        self._update(a["channelId"], deposit=int(a["deposit"]))

    def _on_LaneActivated(self, a: Mapping[str, Any]) -> None:
        snapshot = self.channels.get(bytes(a["channelId"]))
        if snapshot is None:
            return
        signer = to_checksum_address(a["signer"])
        changes: dict[str, Any] = {"signer": signer, "terms": LaneTerms.unpack(int(a["terms"]))}
        if signer != snapshot.signer:  # grant, rotate or revoke: a new signer, never frozen
            changes["frozen"] = False
            if signer == snapshot.payer:
                changes["max_per_payment"] = 0
        self.channels[bytes(a["channelId"])] = replace(snapshot, **changes)

    def _on_SessionKeyGranted(self, a: Mapping[str, Any]) -> None:
        policy = a["policy"]
        max_per_payment = policy["maxPerPayment"] if isinstance(policy, Mapping) else policy[4]
        self._update(a["channelId"], max_per_payment=int(max_per_payment), frozen=False)

    def _on_ChannelFrozen(self, a: Mapping[str, Any]) -> None:
        self._update(a["channelId"], frozen=True)

    def _on_ChannelUnfrozen(self, a: Mapping[str, Any]) -> None:
        self._update(a["channelId"], frozen=False)

    def _on_VouchersRedeemed(self, a: Mapping[str, Any]) -> None:
        for channel_id, redeemed in decode_redeemed_rows(a["redeemed"]):
            self._update(channel_id, claimed=redeemed)

    def _on_CloseRequested(self, a: Mapping[str, Any]) -> None:
        self._update(a["channelId"], closing=True)
        self.closes_at[bytes(a["channelId"])] = int(a["closesAt"])

    def _on_ChannelClosed(self, a: Mapping[str, Any]) -> None:
        self._update(a["channelId"], closed=True)
