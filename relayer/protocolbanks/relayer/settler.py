"""Puts due channels on-chain: one `redeemBatch` per token, signed locally, then confirmed after N blocks.

Double submission is harmless by construction (a cumulative voucher already redeemed moves nothing), so a
settlement whose fate is unknown after a crash is simply sent again.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from protocolbanks.relayer.chain_cache import stream_channels_abi
from protocolbanks.relayer.metrics import RelayerMetrics
from protocolbanks.relayer.settlement_policy import ChannelDue, SettlementPolicy, next_batches
from protocolbanks.relayer.store import VoucherStore
from protocolbanks.relayer.store.voucher_store import SettlementItem, SettlementLedger
from protocolbanks.sdk.acceptance import ChannelSnapshot
from web3 import Web3
from web3.exceptions import TransactionNotFound

log = logging.getLogger("protocolbanks.relayer.settler")


@dataclass(frozen=True)
class SettlementOutcome:
    settlement_id: int
    tx_hash: str
    channels: int


class Settler:
    def __init__(self, w3: Web3, contract_address: str, account: LocalAccount, store: VoucherStore,
                 snapshots: Callable[[bytes], ChannelSnapshot | None], policy: SettlementPolicy, *,
                 confirmations: int = 2, max_fee_per_gas: int | None = None,
                 clock: Callable[[], float] = time.time, metrics: RelayerMetrics | None = None,
                 resend_after_ms: int = 120_000) -> None:
        self.metrics = metrics
        self.resend_after_ms = resend_after_ms
        self.w3 = w3
        self.contract = w3.eth.contract(address=Web3.to_checksum_address(contract_address), abi=stream_channels_abi())
        self.account = account
        self.store = store
        self.ledger = SettlementLedger(store)
        self.snapshots = snapshots
        self.policy = policy
        self.confirmations = confirmations
        self.max_fee_per_gas = max_fee_per_gas
        self.clock = clock

    def due_channels(self) -> list[ChannelDue]:
        """Channels with unsettled money and no settlement in flight (one not mined within `resend_after_ms`
        is given up and its channels become due again: re-sending a cumulative voucher is harmless)."""
        now_ms = int(self.clock() * 1000)
        in_flight = self.ledger.in_flight()
        due = []
        for channel_id, progress in self.store.progress(unsettled_only=True).items():
            if progress.unsettled <= 0:
                continue
            if channel_id in in_flight:
                settlement_id, sent_at_ms = in_flight[channel_id]
                if now_ms - sent_at_ms < self.resend_after_ms:
                    continue
                self.ledger.mark_replaced(settlement_id, now_ms)
            snapshot = self.snapshots(channel_id)
            due.append(ChannelDue(
                channel_id, progress.unsettled, progress.first_unsettled_at_ms or int(self.clock() * 1000),
                closing=bool(snapshot and snapshot.closing), frozen=bool(snapshot and snapshot.frozen),
                signer_changed=bool(snapshot and snapshot.terms.epoch != progress.epoch),
                valid_until_s=snapshot.terms.valid_until if snapshot else None,
            ))
        return due

    def settle_due(self) -> list[SettlementOutcome]:
        """Sends one transaction per token for every batch of due channels."""
        now_ms = int(self.clock() * 1000)
        outcomes = []
        for batch in next_batches(self.due_channels(), self.policy, now_ms):
            vouchers = self.ledger.newest_vouchers([c.channel_id for c in batch])
            by_token: dict[str, list[SettlementItem]] = defaultdict(list)
            for item in vouchers.values():
                by_token[item.token].append(item)
            for token, items in by_token.items():
                outcomes.append(self._send(token, items, now_ms))
        return outcomes

    def _send(self, token: str, items: list[SettlementItem], now_ms: int) -> SettlementOutcome:
        rows = [(i.channel_id, i.cumulative, i.terms, i.r, i.vs) for i in items]
        call = self.contract.functions.redeemBatch(self.account.address, Web3.to_checksum_address(token), rows)
        nonce = self.w3.eth.get_transaction_count(self.account.address, "pending")
        tx: dict[str, Any] = dict(call.build_transaction({"from": self.account.address, "nonce": nonce}))
        if self.max_fee_per_gas is not None and int(tx.get("maxFeePerGas", 0)) > self.max_fee_per_gas:
            raise RuntimeError(f"fee {tx['maxFeePerGas']} above the cap {self.max_fee_per_gas}; not sending")
        signed = self.account.sign_transaction(tx)
        tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
        settlement_id = self.ledger.record_sent(items, bytes(tx_hash), nonce, now_ms)
        log.info("settlement %s sent: %s channels, tx %s", settlement_id, len(items), tx_hash.hex())
        return SettlementOutcome(settlement_id, "0x" + bytes(tx_hash).hex(), len(items))

    def confirm_sent(self) -> int:
        """Confirms settlements buried under `confirmations` blocks; returns how many were confirmed."""
        head = self.w3.eth.block_number
        done = 0
        for settlement_id, tx_hash, _nonce, sent_at_ms in self.ledger.sent():
            try:
                receipt = self.w3.eth.get_transaction_receipt(HexBytes(tx_hash))
            except TransactionNotFound:
                continue  # still pending (or dropped: a later round sends the same vouchers again)
            if head - receipt["blockNumber"] < self.confirmations:
                continue
            now_ms = int(self.clock() * 1000)
            if receipt["status"] != 1:
                self.ledger.fail(settlement_id, "transaction reverted", now_ms)
                if self.metrics is not None:
                    self.metrics.settlements.labels("failed").inc()
                continue
            total = 0
            for event in self.contract.events.VouchersRedeemed().process_receipt(receipt):
                total += int(event["args"]["total"])
            self.ledger.confirm(settlement_id, total=total, block_number=receipt["blockNumber"],
                                gas_used=receipt["gasUsed"], now_ms=now_ms)
            if self.metrics is not None:
                self.metrics.settlements.labels("confirmed").inc()
                self.metrics.gas_used.inc(receipt["gasUsed"])
                self.metrics.settlement_latency.observe(max(now_ms - sent_at_ms, 0) / 1000)
            done += 1
        return done
