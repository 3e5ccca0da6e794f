"""Settlement decisions: thresholds, age, urgent triggers, batching."""

import pytest
from protocolbanks.relayer.settlement_policy import ChannelDue, DueReason, SettlementPolicy, due_reason, next_batches

POLICY = SettlementPolicy(threshold=10, interval_ms=3_600_000, expiry_margin_s=600, max_batch=2)
NOW = 10_000_000


def chan(n: int, unsettled: int, age_ms: int = 0, **flags) -> ChannelDue:
    return ChannelDue(bytes([n]) * 32, unsettled, NOW - age_ms, **flags)


@pytest.mark.parametrize("channel, reason", [
    (chan(1, 0, age_ms=10**9, closing=True), None),  # nothing to settle
    (chan(1, 9), None),
    (chan(1, 10), DueReason.THRESHOLD),
    (chan(1, 1, age_ms=3_600_000), DueReason.AGE),
    (chan(1, 1, closing=True), DueReason.CLOSING),
    (chan(1, 1, signer_changed=True), DueReason.SIGNER_CHANGED),
    (chan(1, 1, frozen=True), DueReason.FROZEN),
    (chan(1, 1, valid_until_s=NOW // 1000 + 600), DueReason.EXPIRING),
    (chan(1, 1, valid_until_s=NOW // 1000 + 601), None),
])
def test_due_reason(channel, reason):
    assert due_reason(channel, POLICY, NOW) is reason


def test_batches__urgent_first_then_largest_and_capped():
    channels = [chan(1, 50), chan(2, 1, frozen=True), chan(3, 20), chan(4, 5), chan(5, 1, age_ms=4_000_000)]
    batches = next_batches(channels, POLICY, NOW)
    assert [[c.channel_id[0] for c in b] for b in batches] == [[2, 1], [3, 5]]


def test_policy__invalid_values__raise():
    with pytest.raises(ValueError):
        SettlementPolicy(threshold=0)
