"""Puts due channels on-chain: one `redeemBatch` per token, simulated, signed locally, then confirmed after N blocks.

Nothing is paid twice and nothing is lost:
- a transaction is recorded (with its signed bytes) before it is broadcast, so a crash never leaves one the
  ledger does not know; a recorded transaction the node lost is broadcast again, with the same nonce;
- a transaction not mined after `stuck_after_ms` is replaced by one with the same nonce and calldata and fees
  raised by at least 12.5 % (never above the fee cap); whichever of them is mined confirms the settlement;
- if a transaction that is not ours takes the nonce, the settlement is dropped and its channels are sent again —
  harmless, because a cumulative voucher already redeemed moves nothing (`nothing_due`);
- RPC failures while building or sending are retried with exponential backoff, the attempt count in the ledger;
- rows the contract refuses are skipped on-chain (`RedemptionSkipped`) and classified (`revert_classifier`):
  retried after a backoff, retried with fresh lane terms, or marked failed for good without blocking the others.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from eth_account.signers.local import LocalAccount
from protocolbanks.relayer.config import RelayerConfig
from protocolbanks.relayer.fee_policy import MIN_BUMP_BPS, initial_fees
from protocolbanks.relayer.metrics import RelayerMetrics
from protocolbanks.relayer.retry_backoff import Backoff
from protocolbanks.relayer.revert_classifier import (
    RPC_UNAVAILABLE,
    Classified,
    FailureClass,
    classify_exception,
    classify_redemption,
    classify_revert_data,
    revert_data_of,
)
from protocolbanks.relayer.row_verdicts import SentRow, Verdicts, judge_rows
from protocolbanks.relayer.settlement_chain import Row, SettlementChain
from protocolbanks.relayer.settlement_context import SettlementContext, hex_of
from protocolbanks.relayer.settlement_policy import ChannelDue, SettlementPolicy, next_batches
from protocolbanks.relayer.settlement_tracker import SentSettlementTracker
from protocolbanks.relayer.store import VoucherStore
from protocolbanks.relayer.store.settlement_ledger import SettlementItem, SettlementLedger
from protocolbanks.sdk.abi_files import stream_channels_abi
from protocolbanks.sdk.acceptance import ChannelSnapshot
from web3 import Web3

log = logging.getLogger("protocolbanks.relayer.settler")


@dataclass(frozen=True)
class SettlementOutcome:
    settlement_id: int
    tx_hash: str
    channels: int


@dataclass(frozen=True)
class RoundReport:
    sent: list[SettlementOutcome] = field(default_factory=list)
    confirmed: int = 0


class Settler:
    def __init__(self, w3: Web3, contract_address: str, account: LocalAccount, store: VoucherStore,
                 snapshots: Callable[[bytes], ChannelSnapshot | None], policy: SettlementPolicy, *,
                 confirmations: int = 2, max_fee_per_gas: int | None = None,
                 clock: Callable[[], float] = time.time, metrics: RelayerMetrics | None = None,
                 stuck_after_ms: int = 60_000, fee_bump_bps: int = MIN_BUMP_BPS,
                 backoff: Backoff | None = None) -> None:
        contract = w3.eth.contract(address=Web3.to_checksum_address(contract_address), abi=stream_channels_abi())
        self.chain = SettlementChain(w3, contract, account)
        self.store = store
        self.ledger = SettlementLedger(store)
        self.policy = policy
        self.context = SettlementContext(self.chain, self.ledger, snapshots, backoff or Backoff(), max_fee_per_gas,
                                         clock, metrics)
        self.tracker = SentSettlementTracker(self.context, confirmations=confirmations,
                                             stuck_after_ms=stuck_after_ms, fee_bump_bps=fee_bump_bps)
        self._round_failures = 0  # consecutive rounds the RPC failed (in memory: the ledger keeps per-settlement state)
        self._round_retry_at_ms = 0

    # ------------------------------------------------------------------ one round

    def run_round(self) -> RoundReport:
        """Confirms and looks after what is in flight, then sends what is due. After an RPC failure, rounds are
        skipped with exponential backoff (no busy loop against a node that is down)."""
        now_ms = self.context.now_ms()
        if now_ms < self._round_retry_at_ms:
            return RoundReport()
        try:
            confirmed = self.confirm_sent()
            sent = self.settle_due()
        except Exception as exc:
            failure = classify_exception(exc)
            if failure.failure_class is not FailureClass.TRANSIENT:
                raise
            self._round_failures += 1
            self._round_retry_at_ms = self.context.backoff.retry_at_ms(self._round_failures, now_ms)
            self.context.count_failure(failure)
            log.warning("settlement round failed (%s, %s in a row), next at %s ms: %s", failure.reason,
                        self._round_failures, self._round_retry_at_ms, failure.detail,
                        extra={"reason": failure.reason, "failures": self._round_failures})
            return RoundReport()
        self._round_failures = 0
        return RoundReport(sent, confirmed)

    # ------------------------------------------------------------------ what is due

    def due_channels(self) -> list[ChannelDue]:
        """Channels with unsettled money, no settlement queued or in flight, and no hold on their newest voucher."""
        now_ms = self.context.now_ms()
        in_flight = self.ledger.in_flight()
        holds = self.ledger.holds()
        due = []
        for channel_id, progress in self.store.progress(unsettled_only=True).items():
            if progress.unsettled <= 0 or channel_id in in_flight:
                continue
            hold = holds.get(channel_id)
            if hold is not None and hold.blocks(progress.accepted_cumulative, now_ms):
                continue
            snapshot = self.context.snapshots(channel_id)
            due.append(ChannelDue(
                channel_id, progress.unsettled, progress.first_unsettled_at_ms or now_ms,
                closing=bool(snapshot and snapshot.closing), frozen=bool(snapshot and snapshot.frozen),
                signer_changed=bool(snapshot and snapshot.terms.epoch != progress.epoch),
                valid_until_s=snapshot.terms.valid_until if snapshot else None,
            ))
        return due

    def settle_due(self) -> list[SettlementOutcome]:
        """Retries queued settlements whose backoff has passed, then sends one transaction per token for every
        batch of due channels."""
        now_ms = self.context.now_ms()
        outcomes = []
        for queued in self.ledger.queued(now_ms):
            unsettled = self.store.progress(unsettled_only=True)
            items = [item for channel_id, item in self.ledger.newest_vouchers(list(queued.channel_ids)).items()
                     if channel_id in unsettled and item.cumulative > unsettled[channel_id].settled_cumulative]
            if not items:
                self.ledger.fail(queued.settlement_id, "nothing left to settle", now_ms, status="skipped")
                continue
            self.ledger.replace_items(queued.settlement_id, items)
            outcomes += self._attempt(queued.settlement_id, queued.token, items, queued.attempts)
        for batch in next_batches(self.due_channels(), self.policy, now_ms):
            by_token: dict[str, list[SettlementItem]] = defaultdict(list)
            for item in self.ledger.newest_vouchers([c.channel_id for c in batch]).values():
                by_token[item.token].append(item)
            for token, items in by_token.items():
                settlement_id = self.ledger.queue(items, token, now_ms)
                outcomes += self._attempt(settlement_id, token, items, 0)
        return outcomes

    # ------------------------------------------------------------------ sending

    def _row(self, item: SettlementItem) -> Row:
        terms = self.context.fresher_terms(item.channel_id, item.terms) or item.terms
        return (item.channel_id, item.cumulative, terms, item.r, item.vs)

    def _attempt(self, settlement_id: int, token: str, items: list[SettlementItem],
                 attempts: int) -> list[SettlementOutcome]:
        now_ms = self.context.now_ms()
        rows = [self._row(item) for item in items]
        try:
            if self.chain.simulate(token, rows) == 0:
                verdicts = self._simulated_verdicts(settlement_id, token, rows)
                if verdicts is not None:
                    self.ledger.fail(settlement_id, "simulated: no row would move money; nothing sent", now_ms,
                                     status="skipped", outcomes=verdicts.outcomes, holds=verdicts.holds)
                    for failure in verdicts.failures:
                        self.context.count_failure(failure)
                    return []
            gas = self.chain.gas_limit(token, rows)
            base_fee, tip = self.chain.market()
            fees = initial_fees(base_fee, tip, self.context.max_fee_per_gas)
            if fees is None:
                raise FeeAboveCap(f"base fee {base_fee} wei is above the cap {self.context.max_fee_per_gas}")
            nonce = max(self.chain.nonce("pending"), self.ledger.next_nonce_floor())
            signed = self.chain.sign(nonce=nonce, data=self.chain.calldata(token, rows), gas=gas, fees=fees)
        except Exception as exc:
            self._attempt_failed(settlement_id, items, exc, attempts, now_ms)
            return []
        refused = self.context.record_and_broadcast(settlement_id, signed, now_ms)
        if refused is not None and refused.reason == RPC_UNAVAILABLE:  # fate unknown: it is broadcast again
            log.warning("settlement %s: broadcast of %s failed (%s); will broadcast it again", settlement_id,
                        hex_of(signed.tx_hash), refused.detail, extra={"settlement": settlement_id})
        elif refused is not None:  # refused by the node: it can never be mined
            self.ledger.retry_later(settlement_id, error_class=str(refused.failure_class), error=refused.detail,
                                    retry_at_ms=self.context.backoff.retry_at_ms(attempts + 1, now_ms))
            log.warning("settlement %s: node refused %s: %s", settlement_id, hex_of(signed.tx_hash),
                        refused.detail, extra={"settlement": settlement_id, "reason": refused.reason})
            return []
        log.info("settlement %s sent: %s channels, nonce %s, tx %s", settlement_id, len(items), nonce,
                 hex_of(signed.tx_hash), extra={"settlement": settlement_id, "nonce": nonce})
        return [SettlementOutcome(settlement_id, hex_of(signed.tx_hash), len(items))]

    def _attempt_failed(self, settlement_id: int, items: list[SettlementItem], exc: Exception, attempts: int,
                        now_ms: int) -> None:
        failure = (Classified(FailureClass.TRANSIENT, "fee_above_cap", str(exc)) if isinstance(exc, FeeAboveCap)
                   else classify_exception(exc))
        self.context.count_failure(failure)
        if failure.failure_class is FailureClass.TRANSIENT:
            retry_at = self.context.backoff.retry_at_ms(attempts + 1, now_ms)
            self.ledger.retry_later(settlement_id, error_class=str(failure.failure_class), error=failure.detail,
                                    retry_at_ms=retry_at)
            log.warning("settlement %s not sent (%s, attempt %s), retry at %s ms: %s", settlement_id, failure.reason,
                        attempts + 1, retry_at, failure.detail,
                        extra={"settlement": settlement_id, "reason": failure.reason})
            return
        # The batch as a whole would revert: no row is to blame (rows are skipped, never reverted), so the
        # settlement fails and its channels wait a backoff before they are batched again.
        holds = self.context.backoff_holds(settlement_id, {i.channel_id: i.cumulative for i in items},
                                           failure.detail, now_ms)
        self.ledger.fail(settlement_id, failure.detail, now_ms, error_class=str(failure.failure_class), holds=holds)
        log.error("settlement %s: the batch would revert: %s", settlement_id, failure.detail,
                  extra={"settlement": settlement_id, "reason": failure.reason})

    def _simulated_verdicts(self, settlement_id: int, token: str, rows: list[Row]) -> Verdicts | None:
        """Why a batch would pay nothing, row by row (the strict `redeem`, simulated); None if some row would pay
        after all (then the batch is sent)."""
        fates: dict[bytes, Classified | None] = {}
        for row in rows:
            try:
                fates[row[0]] = classify_redemption(self.chain.simulate_row(token, row) > 0, None)
            except Exception as exc:
                data = revert_data_of(exc)
                if data is None:
                    raise  # the RPC, not the row: the attempt is retried
                fates[row[0]] = classify_revert_data(data)
            if fates[row[0]] is None:
                return None
        sent = {row[0]: SentRow(row[1], row[2]) for row in rows}
        return judge_rows(settlement_id, sent, fates, self.ledger.holds(), self.context.fresher_terms,
                          self.context.backoff, self.context.now_ms())

    # ------------------------------------------------------------------ in flight

    def confirm_sent(self) -> int:
        """Confirms settlements buried under `confirmations` blocks, and looks after the unmined ones (broadcast
        again, replaced with higher fees, or dropped when their nonce was taken). Returns how many confirmed."""
        return self.tracker.follow()


def settler_options(config: RelayerConfig) -> dict[str, Any]:
    """The Settler's keyword arguments from the relayer's configuration."""
    settlement = config.settlement
    return {"confirmations": settlement.confirmations, "max_fee_per_gas": config.max_fee_per_gas,
            "stuck_after_ms": settlement.stuck_after_s * 1000, "fee_bump_bps": settlement.fee_bump_bps,
            "backoff": Backoff(settlement.retry_initial_ms,
                               max(settlement.retry_max_s * 1000, settlement.retry_initial_ms))}


class FeeAboveCap(Exception):
    """The network's base fee is above the operator's fee cap: wait (a transient condition)."""
