"""The payer's client-side budget guard: the last check before a voucher is signed.

It mirrors the on-chain caps of a session key so that a buggy or malicious merchant cannot make this client
sign more than its owner allowed, whatever the 402 asks:

- `max_per_request`: the amount of one payment;
- `max_per_minute` / `max_per_hour` (and any `SpendWindow`): sliding windows over what was *signed* — counted
  as the increase of the highest cumulative signed, so re-signing after a merchant's correction is not counted
  twice, and an unanswered voucher still counts (the merchant holds it);
- allowed merchants: `payTo` addresses and/or hosts of the request URL;
- the merchant's published rate: when the requirement's `extra["rate"]` is present the amount must equal the
  quote computed from it (`protocolbanks.sdk.pricing.verify_quote`). A merchant with a fixed price publishes no
  card; such asks are bounded by the caps alone, unless `require_published_rate=True` refuses them.

Domain logic only: no I/O; time comes from an injectable clock. Refusals raise `BudgetExceeded(reason, detail)`.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from protocolbanks.sdk.payer.errors import BudgetExceeded, RefusalReason
from protocolbanks.sdk.payer_channels import SessionKeyPolicy
from protocolbanks.sdk.pricing import verify_quote

QuoteVerifier = Callable[..., bool]  # verify_quote(published, units, amount, *, at, volume, skew_seconds)


@dataclass(frozen=True)
class SpendWindow:
    """At most `cap` base units signed within any `seconds`-long sliding window."""

    seconds: int
    cap: int
    reason: RefusalReason = RefusalReason.OVER_SPEND_WINDOW


@dataclass(frozen=True)
class BudgetPolicy:
    """What the payer allows; None = no limit of that kind. Amounts are token base units."""

    max_per_request: int | None = None
    max_per_minute: int | None = None
    max_per_hour: int | None = None
    windows: tuple[SpendWindow, ...] = ()
    allowed_payees: frozenset[str] | None = None
    allowed_hosts: frozenset[str] | None = None
    require_published_rate: bool = False  # True: refuse a requirement without extra["rate"]
    quote_skew_s: int = 60  # accept the quote of any instant within this many seconds of the client's clock

    def __post_init__(self) -> None:
        for name in ("max_per_request", "max_per_minute", "max_per_hour"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise TypeError(f"{name} must be an int of base units (or None), got {value!r}")
        if self.allowed_payees is not None:
            object.__setattr__(self, "allowed_payees", frozenset(p.lower() for p in self.allowed_payees))
        if self.allowed_hosts is not None:
            object.__setattr__(self, "allowed_hosts", frozenset(h.lower() for h in self.allowed_hosts))

    @classmethod
    def mirroring(cls, key_policy: SessionKeyPolicy, **overrides: Any) -> BudgetPolicy:
        """A client-side policy at least as strict as a session key's on-chain policy: its per-payment cap and
        its period cap (as a sliding window, which is stricter than the chain's aligned periods)."""
        windows = (SpendWindow(key_policy.period_length, key_policy.period_cap, RefusalReason.OVER_PERIOD_CAP),) \
            if key_policy.period_cap and key_policy.period_length else ()
        values: dict[str, Any] = {"max_per_request": key_policy.max_per_payment or None, "windows": windows}
        values.update(overrides)
        return cls(**values)

    def spend_windows(self) -> list[SpendWindow]:
        found = list(self.windows)
        if self.max_per_minute is not None:
            found.append(SpendWindow(60, self.max_per_minute, RefusalReason.OVER_MAX_PER_MINUTE))
        if self.max_per_hour is not None:
            found.append(SpendWindow(3600, self.max_per_hour, RefusalReason.OVER_MAX_PER_HOUR))
        return found


@dataclass(frozen=True)
class PaymentAsk:
    """What a merchant asks for one payment, as the client scheme sees it."""

    amount: int
    pay_to: str
    host: str | None = None  # host of the request URL as the client sent it (None: unknown)
    rate: dict[str, Any] | None = None  # the requirement's extra["rate"]
    units: int = 1
    volume: int = 0  # units this payer already paid on the channel (for volume tiers)
    client_priced: bool = False  # the client computed the amount itself from the published card (metered ticks)


@dataclass
class _Window:
    spec: SpendWindow
    buckets: deque[tuple[int, int]] = field(default_factory=deque)  # (unix second, amount signed in it)
    total: int = 0

    def expire(self, now: float) -> None:
        # a bucket [s, s+1) leaves the window only when all of it is older than `seconds`: conservative
        while self.buckets and self.buckets[0][0] + 1 + self.spec.seconds <= now:
            self.total -= self.buckets.popleft()[1]

    def add(self, now: float, amount: int) -> None:
        second = int(now)
        if self.buckets and self.buckets[-1][0] == second:
            self.buckets[-1] = (second, self.buckets[-1][1] + amount)
        else:
            self.buckets.append((second, amount))
        self.total += amount


class BudgetGuard:
    """Thread-safe. `authorize` checks an ask and records what will be signed, atomically."""

    def __init__(self, policy: BudgetPolicy, *, clock: Callable[[], float] = time.time,
                 quote_verifier: QuoteVerifier = verify_quote) -> None:
        self.policy = policy
        self._clock = clock
        self._verify_quote = quote_verifier
        self._windows = [_Window(spec) for spec in policy.spend_windows()]
        self._lock = threading.Lock()

    def check(self, ask: PaymentAsk, *, exposure: int | None = None) -> None:
        """Raises BudgetExceeded when the ask is outside the policy; records nothing."""
        with self._lock:
            self._check(ask, self._exposure(ask, exposure), self._clock())

    def authorize(self, ask: PaymentAsk, *, exposure: int | None = None) -> None:
        """Check, then count `exposure` (default: the amount) in the spend windows."""
        with self._lock:
            now = self._clock()
            counted = self._exposure(ask, exposure)
            self._check(ask, counted, now)
            for window in self._windows:
                window.add(now, counted)

    def spent(self, seconds: int) -> int:
        """What the windows hold for the window of that length (0 if there is none)."""
        with self._lock:
            now = self._clock()
            for window in self._windows:
                if window.spec.seconds == seconds:
                    window.expire(now)
                    return window.total
        return 0

    @staticmethod
    def _exposure(ask: PaymentAsk, exposure: int | None) -> int:
        return ask.amount if exposure is None else max(0, exposure)

    def _check(self, ask: PaymentAsk, counted: int, now: float) -> None:
        policy = self.policy
        if isinstance(ask.amount, bool) or not isinstance(ask.amount, int) or ask.amount <= 0:
            raise BudgetExceeded(RefusalReason.INVALID_REQUIREMENT, f"amount {ask.amount!r} is not a positive int")
        if policy.allowed_payees is not None and ask.pay_to.lower() not in policy.allowed_payees:
            raise BudgetExceeded(RefusalReason.MERCHANT_NOT_ALLOWED, f"payTo {ask.pay_to} is not an allowed merchant")
        if policy.allowed_hosts is not None and not _host_allowed(ask.host, policy.allowed_hosts):
            raise BudgetExceeded(RefusalReason.HOST_NOT_ALLOWED, f"host {ask.host!r} is not an allowed merchant")
        if policy.max_per_request is not None and ask.amount > policy.max_per_request:
            raise BudgetExceeded(RefusalReason.OVER_MAX_PER_REQUEST,
                                 f"{ask.amount} asked, at most {policy.max_per_request} per request")
        self._check_rate(ask, now)
        for window in self._windows:
            window.expire(now)
            if window.total + counted > window.spec.cap:
                raise BudgetExceeded(window.spec.reason,
                                     f"{window.total} signed in the last {window.spec.seconds} s + {counted} "
                                     f"would exceed {window.spec.cap}")

    def _check_rate(self, ask: PaymentAsk, now: float) -> None:
        if ask.client_priced:
            return
        if ask.rate is None:
            if self.policy.require_published_rate:
                raise BudgetExceeded(RefusalReason.RATE_NOT_PUBLISHED,
                                     "the requirement publishes no rate to check the amount against")
            return
        try:
            matches = self._verify_quote(ask.rate, ask.units, ask.amount, at=datetime.fromtimestamp(now, UTC),
                                         volume=ask.volume, skew_seconds=self.policy.quote_skew_s)
        except (ValueError, TypeError, KeyError) as exc:
            raise BudgetExceeded(RefusalReason.INVALID_REQUIREMENT, f"unreadable published rate: {exc}") from exc
        if not matches:
            raise BudgetExceeded(RefusalReason.PRICE_NOT_PUBLISHED_RATE,
                                 f"{ask.amount} asked for {ask.units} unit(s) is not the published rate's quote")


def _host_allowed(host: str | None, allowed: Iterable[str]) -> bool:
    if host is None:
        return False
    host = host.lower()
    bare = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return host in allowed or bare in allowed
