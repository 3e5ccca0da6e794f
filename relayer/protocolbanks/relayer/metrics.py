"""Prometheus metrics of the relayer (its own registry, so several can live in one test process).

With several workers (`workers > 1`), counters and histograms are written to PROMETHEUS_MULTIPROC_DIR by every
worker and /metrics (whichever worker answers) sums them (prometheus_client's multiprocess mode). The unsettled
amount is read from the database at scrape time, so it is the same from every worker."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector


class UnsettledCollector(Collector):
    """`pb_unsettled_base_units`, computed when scraped."""

    def __init__(self, read: Callable[[], int]) -> None:
        self.read = read

    def collect(self) -> Iterable[Metric]:
        yield GaugeMetricFamily("pb_unsettled_base_units", "Accepted but not yet redeemed, all channels",
                                value=float(self.read()))


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
        self._read_unsettled: Callable[[], int] = unsettled or (lambda: 0)
        self.unsettled = UnsettledCollector(self._unsettled_now)
        self.registry.register(self.unsettled)

    def _unsettled_now(self) -> int:
        return self._read_unsettled()

    def set_unsettled_source(self, read: Callable[[], int]) -> None:
        self._read_unsettled = read

    def render(self) -> bytes:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            registry.register(self.unsettled)
            return bytes(generate_latest(registry))
        return bytes(generate_latest(self.registry))
