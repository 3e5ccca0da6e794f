"""What happens after a Sentinel trip, off the request path: the event is recorded, the channel is frozen
on-chain through the payer's guardian hook (when this relayer holds the guardian key), and the payer's
notification channels are told. Trips are queued by the intake and handled by a periodic task."""

from __future__ import annotations

import json
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from eth_account.signers.local import LocalAccount
from protocolbanks.relayer.chain_cache import stream_channels_abi
from protocolbanks.relayer.sentinel.guard import SentinelTrip
from protocolbanks.relayer.store import VoucherStore, schema
from web3 import Web3

log = logging.getLogger("protocolbanks.relayer.sentinel")


class Notifier(Protocol):
    """A way to reach the payer (webhook, e-mail, Telegram, ...)."""

    def notify(self, trip: SentinelTrip, freeze_tx: str | None) -> None: ...


class SentinelResponder:
    def __init__(self, store: VoucherStore, *, w3: Web3 | None = None, contract_address: str | None = None,
                 guardian: LocalAccount | None = None, notifiers: Sequence[Notifier] = (),
                 clock: Callable[[], float] = time.time,
                 on_trip_counted: Callable[[str], None] | None = None) -> None:
        self.store = store
        self.on_trip_counted = on_trip_counted
        self.w3 = w3
        self.contract = (w3.eth.contract(address=Web3.to_checksum_address(contract_address), abi=stream_channels_abi())
                         if w3 is not None and contract_address else None)
        self.guardian = guardian
        self.notifiers = list(notifiers)
        self.clock = clock
        self.queue: deque[SentinelTrip] = deque()

    def enqueue(self, trip: SentinelTrip) -> None:
        """Called by the Sentinel guard on the request path: cheap, no I/O."""
        self.queue.append(trip)

    def handle_pending(self) -> int:
        """Records, freezes and notifies every queued trip; returns how many were handled."""
        handled = 0
        while self.queue:
            trip = self.queue.popleft()
            if self.on_trip_counted is not None:
                self.on_trip_counted(trip.reason)
            freeze_tx = self._freeze(trip)
            self._record(trip, "freeze_sent" if freeze_tx else "refused", freeze_tx)
            for notifier in self.notifiers:
                try:
                    notifier.notify(trip, freeze_tx)
                except Exception as exc:
                    log.warning("notifier %s failed: %s", type(notifier).__name__, exc)
            handled += 1
        return handled

    def _freeze(self, trip: SentinelTrip) -> str | None:
        if self.contract is None or self.guardian is None or self.w3 is None:
            return None
        try:
            call = self.contract.functions.freeze(
                (Web3.to_checksum_address(trip.config[0]), Web3.to_checksum_address(trip.config[1]),
                 Web3.to_checksum_address(trip.config[2]), trip.config[3]))
            tx: dict[str, Any] = dict(call.build_transaction({
                "from": self.guardian.address,
                "nonce": self.w3.eth.get_transaction_count(self.guardian.address, "pending")}))
            tx_hash = self.w3.eth.send_raw_transaction(self.guardian.sign_transaction(tx).raw_transaction)
        except Exception as exc:
            log.warning("freeze of channel %s failed: %s", trip.channel_id.hex(), exc)
            return None
        log.warning("sentinel froze channel %s (%s): tx %s", trip.channel_id.hex(), trip.reason, tx_hash.hex())
        return "0x" + bytes(tx_hash).hex()

    def _record(self, trip: SentinelTrip, action: str, freeze_tx: str | None) -> None:
        detail = dict(trip.detail, payment=trip.payment, epoch=trip.epoch)
        with self.store.engine.begin() as connection:
            connection.execute(schema.sentinel_events.insert().values(
                channel_id=trip.channel_id, signer=trip.signer, kind=trip.reason,
                detail=json.dumps({**detail, "freezeTx": freeze_tx}), action=action, created_at_ms=trip.at_ms))
