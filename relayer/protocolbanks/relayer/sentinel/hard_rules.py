"""Hard spending rules per payer, key or merchant: max per payment, per minute, per hour, minimum balance.

Pure: the caller passes the time (milliseconds) and the remaining balance; amounts are token base units.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import StrEnum


class RuleViolation(StrEnum):
    """Why a payment breaks a hard rule; the value is the stable reason code used on the wire."""

    PER_PAYMENT = "sentinel_max_per_payment"
    PER_MINUTE = "sentinel_max_per_minute"
    PER_HOUR = "sentinel_max_per_hour"
    MIN_BALANCE = "sentinel_min_remaining_balance"


@dataclass(frozen=True)
class HardLimits:
    """Limits in base units; None disables a rule."""

    max_per_payment: int | None = None
    max_per_minute: int | None = None
    max_per_hour: int | None = None
    min_remaining_balance: int | None = None

    def __post_init__(self) -> None:
        for name in ("max_per_payment", "max_per_minute", "max_per_hour", "min_remaining_balance"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                raise ValueError(f"{name} must be a non-negative integer of base units or None, got {value!r}")


_MINUTE_MS = 60_000
_HOUR_MS = 3_600_000


class HardRuleBook:
    """Sliding one-minute and one-hour windows of one key's accepted payments, checked before each new one."""

    def __init__(self, limits: HardLimits) -> None:
        self.limits = limits
        self._payments: deque[tuple[int, int]] = deque()  # (time_ms, amount), oldest first, last hour only
        self._minute_total = 0
        self._hour_total = 0
        self._minute_start = 0  # index into _payments of the first payment inside the last minute

    def _expire(self, now_ms: int) -> None:
        while self._payments and self._payments[0][0] <= now_ms - _HOUR_MS:
            _, amount = self._payments.popleft()
            self._hour_total -= amount
            self._minute_start = max(0, self._minute_start - 1)
        while self._minute_start < len(self._payments) and self._payments[self._minute_start][0] <= now_ms - _MINUTE_MS:
            self._minute_total -= self._payments[self._minute_start][1]
            self._minute_start += 1

    def check(self, amount: int, now_ms: int, remaining_after: int) -> RuleViolation | None:
        """The first rule the payment would break, or None. Does not record it."""
        limits = self.limits
        if limits.max_per_payment is not None and amount > limits.max_per_payment:
            return RuleViolation.PER_PAYMENT
        self._expire(now_ms)
        if limits.max_per_minute is not None and self._minute_total + amount > limits.max_per_minute:
            return RuleViolation.PER_MINUTE
        if limits.max_per_hour is not None and self._hour_total + amount > limits.max_per_hour:
            return RuleViolation.PER_HOUR
        if limits.min_remaining_balance is not None and remaining_after < limits.min_remaining_balance:
            return RuleViolation.MIN_BALANCE
        return None

    def record(self, amount: int, now_ms: int) -> None:
        """Counts an accepted payment."""
        self._expire(now_ms)
        self._payments.append((now_ms, amount))
        self._minute_total += amount
        self._hour_total += amount

    @property
    def spent_last_minute(self) -> int:
        return self._minute_total

    @property
    def spent_last_hour(self) -> int:
        return self._hour_total
