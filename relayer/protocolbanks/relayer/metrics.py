"""Prometheus metrics of one relayer process (its own registry, so several can live in one test process)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class RelayerMetrics:
    def __init__(self, unsettled: Callable[[], int] | None = None) -> None:
        self.registry = CollectorRegistry()
        self.vouchers = Counter("pb_vouchers_total", "Vouchers answered, by status and reason",
                                ["status", "reason"], registry=self.registry)
        self.sentinel_trips = Counter("pb_sentinel_trips_total", "Sentinel trips by rule", ["reason"],
                                      registry=self.registry)
        self.settlements = Counter("pb_settlements_total", "Settlement transactions by outcome", ["outcome"],
                                   registry=self.registry)
        self.gas_used = Counter("pb_settlement_gas_used_total", "Gas used by confirmed settlements",
                                registry=self.registry)
        self.settlement_failures = Counter(
            "pb_settlement_failures_total", "Settlement failures (RPC, refused transactions, skipped rows) by class "
            "(transient, stale_terms, nothing_due, permanent) and reason", ["class", "reason"], registry=self.registry)
        self.settlement_replacements = Counter("pb_settlement_replacements_total",
                                               "Same-nonce fee-bumped replacements of stuck settlement transactions",
                                               registry=self.registry)
        self.settlement_latency = Histogram(
            "pb_settlement_latency_seconds", "From a channel's first unsettled payment to its confirmed redemption",
            buckets=(1, 5, 15, 60, 300, 900, 3600, 7200, 21600), registry=self.registry)
        self.unsettled = Gauge("pb_unsettled_base_units", "Accepted but not yet redeemed, all channels",
                               registry=self.registry)
        if unsettled is not None:
            self.unsettled.set_function(lambda: float(unsettled()))

    def render(self) -> bytes:
        return bytes(generate_latest(self.registry))
