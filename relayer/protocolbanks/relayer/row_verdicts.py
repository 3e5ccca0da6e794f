"""From each row's fate in a batch (mined, or simulated) to what the ledger records: the row's outcome, and for a
channel that failed, a hold saying when (or whether) to send its voucher again. Pure: no I/O, no clock.

- moved money: `redeemed`; moved nothing without an error: `nothing_due` (both count as settled);
- `stale_terms` with fresher terms for the voucher's epoch in the chain cache: `skipped`, retried at once
  (the next batch carries the fresh terms); without fresher terms, `skipped` and retried after a backoff up to
  `STALE_TERMS_RETRIES` times — the chain cache follows events a poll behind the node that simulated or mined
  the batch (a freeze moving the lane a moment before the batch is the usual case) — then permanent: the lane is
  gone;
- `transient` (e.g. the period cap is spent): `skipped`, retried after a backoff that grows per failure;
- `permanent`: `failed`, never retried — unless a newer voucher for the channel arrives.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from protocolbanks.relayer.retry_backoff import Backoff
from protocolbanks.relayer.revert_classifier import Classified, FailureClass
from protocolbanks.relayer.store.settlement_ledger import ChannelHold, RowOutcome


@dataclass(frozen=True)
class SentRow:
    cumulative: int
    terms: int


@dataclass
class Verdicts:
    outcomes: dict[bytes, RowOutcome] = field(default_factory=dict)
    holds: list[ChannelHold] = field(default_factory=list)
    failures: list[Classified] = field(default_factory=list)  # one per row that did not settle (for metrics)


FresherTerms = Callable[[bytes, int], int | None]  # (channel id, terms sent) -> the cache's terms, if different

STALE_TERMS_RETRIES = 3


def judge_rows(settlement_id: int, rows: dict[bytes, SentRow], fates: dict[bytes, Classified | None],
               previous_holds: dict[bytes, ChannelHold], fresher_terms: FresherTerms, backoff: Backoff,
               now_ms: int) -> Verdicts:
    verdicts = Verdicts()
    for channel_id, row in sorted(rows.items()):
        fate = fates.get(channel_id)
        if fate is None:
            verdicts.outcomes[channel_id] = RowOutcome("redeemed")
            continue
        if fate.failure_class is FailureClass.NOTHING_DUE:
            verdicts.outcomes[channel_id] = RowOutcome("nothing_due", fate.detail)
            continue
        previous = previous_holds.get(channel_id)
        failures = previous.failures + 1 if previous is not None and previous.cumulative == row.cumulative else 1
        if fate.failure_class is FailureClass.STALE_TERMS and fresher_terms(channel_id, row.terms) is None:
            if failures > STALE_TERMS_RETRIES:
                fate = Classified(FailureClass.PERMANENT, fate.reason,
                                  f"{fate.detail}: no other lane terms known for the voucher's epoch")
            else:
                fate = Classified(FailureClass.TRANSIENT, fate.reason,
                                  f"{fate.detail}: no other lane terms known for the voucher's epoch yet "
                                  f"(look {failures} of {STALE_TERMS_RETRIES}: the chain view may be behind)")
        verdicts.failures.append(fate)
        if fate.failure_class is FailureClass.PERMANENT:
            verdicts.outcomes[channel_id] = RowOutcome("failed", fate.detail)
            retry_at: int | None = None
        else:
            verdicts.outcomes[channel_id] = RowOutcome("skipped", fate.detail)
            retry_at = now_ms if fate.failure_class is FailureClass.STALE_TERMS else backoff.retry_at_ms(failures,
                                                                                                         now_ms)
        verdicts.holds.append(ChannelHold(channel_id, row.cumulative, str(fate.failure_class), fate.detail,
                                          failures, retry_at, settlement_id))
    return verdicts
