"""Settlements in flight, until one of their transactions is mined and buried under N confirmations.

Each round, per sent settlement (one nonce, one or more transactions):
- a receipt of any of its transactions: once confirmed, the rows' outcomes are read from the receipt
  (`VouchersRedeemed`, `RedemptionSkipped`), classified and recorded; a reverted transaction fails the settlement
  and its channels wait a backoff;
- no receipt, and the account's nonce has moved past it: a transaction that is not ours took the nonce, so the
  settlement is dropped and its channels become due again (re-sending cumulative vouchers is harmless);
- no receipt, nonce still free: a transaction the node does not have (lost, or recorded before a crash cut the
  broadcast) is broadcast again; one older than `stuck_after_ms` is replaced with the same nonce and calldata and
  fees raised by at least `fee_bump_bps` (never above the cap: then it keeps waiting, logged once).
A reorg that takes a mined transaction away before its confirmations lands in the last case: the same signed
transaction is broadcast again.
"""

from __future__ import annotations

import logging
from typing import Any

from protocolbanks.relayer.fee_policy import MIN_BUMP_BPS, Fees, bumped_fees
from protocolbanks.relayer.revert_classifier import (
    Classified,
    FailureClass,
    classify_exception,
    classify_redemption,
)
from protocolbanks.relayer.row_verdicts import SentRow, judge_rows
from protocolbanks.relayer.settlement_context import SettlementContext, hex_of
from protocolbanks.relayer.settlement_receipts import read_redemptions
from protocolbanks.relayer.store.settlement_ledger import InFlightSettlement, SettlementTransaction

log = logging.getLogger("protocolbanks.relayer.settler")


class SentSettlementTracker:
    def __init__(self, context: SettlementContext, *, confirmations: int, stuck_after_ms: int,
                 fee_bump_bps: int = MIN_BUMP_BPS) -> None:
        self.context = context
        self.chain = context.chain
        self.ledger = context.ledger
        self.confirmations = confirmations
        self.stuck_after_ms = stuck_after_ms
        self.fee_bump_bps = fee_bump_bps
        self._capped: set[bytes] = set()  # transactions whose replacement the fee cap stopped (logged once)

    def follow(self) -> int:
        """One pass over the sent settlements; returns how many were confirmed."""
        in_flight = self.ledger.sent()
        if not in_flight:
            return 0
        head = self.chain.head()
        latest_nonce: int | None = None
        done = 0
        for settlement in in_flight:
            mined = self._mined(settlement)
            if mined is None:
                if latest_nonce is None:
                    latest_nonce = self.chain.nonce("latest")
                self._look_after(settlement, latest_nonce)
            elif head - int(mined[1]["blockNumber"]) >= self.confirmations:
                self._finish(settlement, *mined)
                done += 1
        return done

    def _mined(self, settlement: InFlightSettlement) -> tuple[SettlementTransaction, Any] | None:
        for tx in reversed(settlement.transactions):  # the newest is the likeliest
            receipt = self.chain.receipt(tx.tx_hash)
            if receipt is not None:
                return tx, receipt
        return None

    def _look_after(self, settlement: InFlightSettlement, latest_nonce: int) -> None:
        now_ms = self.context.now_ms()
        sid = settlement.settlement_id
        if latest_nonce > settlement.nonce:
            if self._mined(settlement) is None:  # mined between the two reads? otherwise the nonce is not ours
                self.ledger.mark_dropped(sid, f"nonce {settlement.nonce} was used by a transaction that is not "
                                              "ours; its vouchers are sent again", now_ms)
                self.context.count_settlement("dropped")
                log.warning("settlement %s dropped: its nonce %s was taken", sid, settlement.nonce,
                            extra={"settlement": sid, "nonce": settlement.nonce})
            return
        if not settlement.transactions or (settlement.newest.raw is None
                                           and not self.chain.known(settlement.newest.tx_hash)):
            # recorded without its signed bytes (before schema v2) and lost by the node: it cannot be mined
            self.ledger.mark_dropped(sid, "transaction lost and not re-broadcastable; its vouchers are sent again",
                                     now_ms)
            self.context.count_settlement("dropped")
            return
        newest = settlement.newest
        if newest.raw is not None and (newest.status == "signed" or not self.chain.known(newest.tx_hash)):
            try:
                self.chain.broadcast(newest.raw)
                self.ledger.mark_broadcast(newest.tx_hash, now_ms)
                log.info("settlement %s: broadcast %s again (the node did not have it)", sid, hex_of(newest.tx_hash),
                         extra={"settlement": sid})
            except Exception as exc:  # e.g. underpriced by now: the replacement below deals with it
                failure = classify_exception(exc)
                self.context.count_failure(failure)
                log.warning("settlement %s: broadcasting %s again failed: %s", sid, hex_of(newest.tx_hash),
                            failure.detail, extra={"settlement": sid, "reason": failure.reason})
        if now_ms - newest.signed_at_ms >= self.stuck_after_ms:
            self._replace(settlement, newest, now_ms)

    def _replace(self, settlement: InFlightSettlement, newest: SettlementTransaction, now_ms: int) -> None:
        """A same-nonce replacement of the stuck `newest` with higher fees (never above the cap)."""
        sid = settlement.settlement_id
        if newest.raw is None:
            return
        base_fee, tip = self.chain.market()
        fees = bumped_fees(Fees(newest.max_fee_per_gas, newest.max_priority_fee_per_gas), base_fee, tip,
                           self.context.max_fee_per_gas, self.fee_bump_bps)
        if fees is None:
            if newest.tx_hash not in self._capped:
                self._capped.add(newest.tx_hash)
                log.warning("settlement %s stuck at %s wei/gas; the fee cap %s leaves no room for a replacement: "
                            "waiting", sid, newest.max_fee_per_gas, self.context.max_fee_per_gas,
                            extra={"settlement": sid, "nonce": settlement.nonce})
            return
        signed = self.chain.resign(newest.raw, fees)
        failure = self.context.record_and_broadcast(sid, signed, now_ms)
        if failure is not None:  # a refusal (e.g. the original was mined meanwhile) is marked rejected
            log.warning("settlement %s: replacement %s not accepted: %s", sid, hex_of(signed.tx_hash),
                        failure.detail, extra={"settlement": sid, "reason": failure.reason})
            return
        if self.context.metrics is not None:
            self.context.metrics.settlement_replacements.inc()
        log.warning("settlement %s: stuck tx %s replaced by %s (nonce %s, max fee %s -> %s wei/gas)", sid,
                    hex_of(newest.tx_hash), hex_of(signed.tx_hash), settlement.nonce, newest.max_fee_per_gas,
                    fees.max_fee_per_gas, extra={"settlement": sid, "nonce": settlement.nonce})

    def _finish(self, settlement: InFlightSettlement, tx: SettlementTransaction, receipt: Any) -> None:
        now_ms = self.context.now_ms()
        sid = settlement.settlement_id
        cumulative = self.ledger.items(sid)
        if int(receipt["status"]) != 1:
            self.ledger.fail(sid, f"transaction {hex_of(tx.tx_hash)} reverted", now_ms,
                             error_class=str(FailureClass.TRANSIENT),
                             holds=self.context.backoff_holds(sid, cumulative, "transaction reverted", now_ms))
            self.context.count_failure(Classified(FailureClass.TRANSIENT, "reverted", "transaction reverted"))
            self.context.count_settlement("failed")
            return
        report = read_redemptions(self.chain.contract, receipt)
        fates = {cid: classify_redemption(cid in report.redeemed, report.skipped.get(cid)) for cid in cumulative}
        terms = self.chain.sent_terms(tx.raw) if tx.raw is not None else {}
        sent = {cid: SentRow(amount, terms.get(cid, 0)) for cid, amount in cumulative.items()}
        verdicts = judge_rows(sid, sent, fates, self.ledger.holds(), self.context.fresher_terms,
                              self.context.backoff, now_ms)
        self.ledger.confirm(sid, total=report.total, block_number=int(receipt["blockNumber"]),
                            gas_used=int(receipt["gasUsed"]), now_ms=now_ms, mined_tx_hash=tx.tx_hash,
                            outcomes=verdicts.outcomes, holds=verdicts.holds)
        for failure in verdicts.failures:
            self.context.count_failure(failure)
        for channel_id, outcome in verdicts.outcomes.items():
            if outcome.outcome in ("skipped", "failed"):
                log.warning("settlement %s: channel %s %s: %s", sid, hex_of(channel_id), outcome.outcome,
                            outcome.error, extra={"settlement": sid, "channel": hex_of(channel_id)})
        log.info("settlement %s confirmed: tx %s paid %s in block %s", sid, hex_of(tx.tx_hash), report.total,
                 receipt["blockNumber"], extra={"settlement": sid})
        self.context.count_settlement("confirmed")
        if self.context.metrics is not None:
            self.context.metrics.gas_used.inc(int(receipt["gasUsed"]))
            self.context.metrics.settlement_latency.observe(max(now_ms - settlement.created_at_ms, 0) / 1000)
