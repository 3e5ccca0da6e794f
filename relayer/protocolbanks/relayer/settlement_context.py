"""What the settler's sending side and its in-flight tracker share: the chain, the ledger, the chain cache, the
backoff schedule, the fee cap, the clock and the metrics — and the few decisions both make the same way."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from protocolbanks.relayer.metrics import RelayerMetrics
from protocolbanks.relayer.retry_backoff import Backoff
from protocolbanks.relayer.revert_classifier import RPC_UNAVAILABLE, Classified, FailureClass, classify_exception
from protocolbanks.relayer.settlement_chain import SettlementChain, SignedSettlementTx
from protocolbanks.relayer.store.settlement_ledger import ChannelHold, SettlementLedger
from protocolbanks.sdk.acceptance import ChannelSnapshot
from protocolbanks.sdk.lane_terms import LaneTerms


@dataclass
class SettlementContext:
    chain: SettlementChain
    ledger: SettlementLedger
    snapshots: Callable[[bytes], ChannelSnapshot | None]
    backoff: Backoff = field(default_factory=Backoff)
    max_fee_per_gas: int | None = None
    clock: Callable[[], float] = time.time
    metrics: RelayerMetrics | None = None

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def fresher_terms(self, channel_id: bytes, terms: int) -> int | None:
        """The chain cache's lane terms for the voucher's epoch when they differ from `terms` (the signature covers
        the epoch, not the terms, so the voucher redeems under the lane's real terms)."""
        snapshot = self.snapshots(channel_id)
        if snapshot is None or snapshot.terms.epoch != LaneTerms.unpack(terms).epoch:
            return None
        current = snapshot.terms.pack()
        return current if current != terms else None

    def backoff_holds(self, settlement_id: int, cumulative: dict[bytes, int], error: str,
                      now_ms: int) -> list[ChannelHold]:
        """Holds keeping a failed settlement's channels out of the next batches for a growing while."""
        previous = self.ledger.holds()
        holds = []
        for channel_id, amount in cumulative.items():
            old = previous.get(channel_id)
            failures = old.failures + 1 if old is not None and old.cumulative == amount else 1
            holds.append(ChannelHold(channel_id, amount, str(FailureClass.TRANSIENT), error, failures,
                                     self.backoff.retry_at_ms(failures, now_ms), settlement_id))
        return holds

    def record_and_broadcast(self, settlement_id: int, signed: SignedSettlementTx, now_ms: int) -> Classified | None:
        """Records `signed` before it leaves (a crash can never lose a transaction the node may mine), then
        broadcasts it. Returns None when the node took it, else the classified failure (counted): a refused
        transaction is marked rejected — it can never be mined — while one whose fate is unknown (the RPC was
        unreachable) stays recorded and is broadcast again."""
        self.ledger.record_signed(settlement_id, tx_hash=signed.tx_hash, nonce=signed.nonce,
                                  max_fee_per_gas=signed.fees.max_fee_per_gas,
                                  max_priority_fee_per_gas=signed.fees.max_priority_fee_per_gas, raw=signed.raw,
                                  now_ms=now_ms)
        try:
            self.chain.broadcast(signed.raw)
        except Exception as exc:
            failure = classify_exception(exc)
            self.count_failure(failure)
            if failure.reason != RPC_UNAVAILABLE:
                self.ledger.reject(signed.tx_hash)
            return failure
        self.ledger.mark_broadcast(signed.tx_hash, now_ms)
        return None

    def count_failure(self, failure: Classified) -> None:
        if self.metrics is not None:
            self.metrics.settlement_failures.labels(str(failure.failure_class), failure.reason).inc()

    def count_settlement(self, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.settlements.labels(outcome).inc()


def hex_of(value: bytes) -> str:
    return "0x" + value.hex()
