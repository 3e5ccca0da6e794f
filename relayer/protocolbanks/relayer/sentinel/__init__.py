"""Sentinel: risk control over a session key's spending (hard rules and spike detection), free of I/O."""

from protocolbanks.relayer.sentinel.guard import SentinelGuard, SentinelPolicy, SentinelTrip
from protocolbanks.relayer.sentinel.hard_rules import HardLimits, HardRuleBook, RuleViolation
from protocolbanks.relayer.sentinel.spike_detector import SpikeDetector, SpikeSettings

__all__ = ["HardLimits", "HardRuleBook", "RuleViolation", "SentinelGuard", "SentinelPolicy", "SentinelTrip",
           "SpikeDetector", "SpikeSettings"]
