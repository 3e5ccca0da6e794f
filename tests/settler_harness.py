"""Helpers shared by the settler tests: channels with session keys, vouchers through the real intake, vouchers
forged straight into the store, and a settler with a clock the test moves."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conftest import UNIT
from eth_account import Account
from protocolbanks.relayer.intake import VoucherIntake
from protocolbanks.relayer.retry_backoff import Backoff
from protocolbanks.relayer.settlement_policy import SettlementPolicy
from protocolbanks.relayer.settler import Settler
from protocolbanks.relayer.store import AcceptedVoucher, VoucherStore
from protocolbanks.relayer.wire import parse_submission
from protocolbanks.sdk import Voucher
from protocolbanks.sdk.acceptance import PeriodUsage
from protocolbanks.sdk.chain_view import ChainCache


def submit_all(intake: VoucherIntake, items: list[dict[str, Any]]) -> list[Any]:
    async def main() -> list[Any]:
        await intake.start()
        results = [await intake.submit(parse_submission(json.dumps(item).encode())) for item in items]
        await intake.stop()
        return results
    return asyncio.run(main())


def submission(channel: Any, key: bytes, amount: int) -> dict[str, Any]:
    sig = Voucher(channel.id, channel.terms.epoch, amount).sign(channel.domain, key)
    return {"channelId": "0x" + channel.id.hex(), "cumulativeAmount": str(amount),
            "terms": hex(channel.terms.pack()), "r": "0x" + sig.r.hex(), "vs": "0x" + sig.vs.hex()}


def forge_into_store(store: VoucherStore, channel: Any, cumulative: int, *, r: bytes, vs: bytes,
                     terms: int | None = None, at_ms: int = 1_000) -> None:
    """Writes a voucher the intake never checked straight into the store (as a bug or a corrupted row would)."""
    store.append([AcceptedVoucher(channel.id, channel.payer.address, channel.payee.address, channel.token.address,
                                  "0x" + "00" * 20, channel.terms.epoch, cumulative, cumulative,
                                  channel.terms.pack() if terms is None else terms, r, vs, at_ms,
                                  PeriodUsage(0, cumulative))])


class Clock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Rig:
    w3: Any
    cache: ChainCache
    store: VoucherStore
    intake: VoucherIntake
    clock: Clock

    @classmethod
    def fresh(cls, chain: Any, channels: Any, payee: Any, domain: Any, tmp_path: Path) -> Rig:
        """A chain cache from the current block, an SQLite store in `tmp_path`, an intake for `payee`, a clock."""
        w3 = chain.provider.web3
        cache = ChainCache(w3, channels.address, from_block=chain.blocks.head.number)
        store = VoucherStore(f"sqlite:///{tmp_path / 'relayer.db'}")
        return cls(w3, cache, store, VoucherIntake(store, cache.get, domain, payee=payee.address), Clock())

    def settler(self, payee: Any, contract: str, **options: Any) -> Settler:
        options.setdefault("confirmations", 0)
        options.setdefault("clock", self.clock)
        options.setdefault("backoff", Backoff(1_000, 60_000))
        policy = options.pop("policy", SettlementPolicy(threshold=UNIT, interval_ms=10**9))
        return Settler(self.w3, contract, Account.from_key(payee.private_key), self.store, self.cache.get, policy,
                       **options)


def open_keyed(chain: Any, open_channel: Any, deposit: int = 10 * UNIT, cap: int = 8 * UNIT) -> tuple[Any, bytes]:
    channel = open_channel(deposit)
    key = Account.create().key
    channel.grant(key, total_cap=cap, now=chain.pending_timestamp)
    return channel, key
