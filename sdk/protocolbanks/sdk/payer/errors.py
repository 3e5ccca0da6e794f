"""Why the payer did not pay: typed errors with a machine-readable reason.

`PaymentRefused` derives from the x402 library's `PaymentError`, so code written against the library's httpx
client (`except PaymentError`) also catches our refusals.
"""

from __future__ import annotations

from enum import StrEnum

from x402.http.clients.httpx import PaymentError


class RefusalReason(StrEnum):
    """The payer's own reasons for not signing (the value is stable and safe to log)."""

    OVER_MAX_PER_REQUEST = "over_max_per_request"
    OVER_MAX_PER_MINUTE = "over_max_per_minute"
    OVER_MAX_PER_HOUR = "over_max_per_hour"
    OVER_PERIOD_CAP = "over_period_cap"
    OVER_SPEND_WINDOW = "over_spend_window"
    MERCHANT_NOT_ALLOWED = "merchant_not_allowed"
    HOST_NOT_ALLOWED = "host_not_allowed"
    RATE_NOT_PUBLISHED = "rate_not_published"
    PRICE_NOT_PUBLISHED_RATE = "price_not_published_rate"
    INVALID_REQUIREMENT = "invalid_requirement"
    NO_CHANNEL_FOR_PAYEE = "no_channel_for_payee"
    MERCHANT_BASE_ABOVE_SIGNED = "merchant_base_above_signed"
    MERCHANT_CHARGED_ABOVE_SIGNED = "merchant_charged_above_signed"


class PaymentRefused(PaymentError):
    """The client refused to sign (budget, policy, unknown merchant) or to follow the merchant (resync)."""

    def __init__(self, reason: RefusalReason, detail: str, *, amount: int | None = None,
                 recipient: str | None = None) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail
        self.amount = amount  # what the merchant asked, when known
        self.recipient = recipient


class BudgetExceeded(PaymentRefused):
    """The budget guard refused: the amount, the merchant or the price is outside the payer's policy."""


class ResyncRefused(PaymentRefused):
    """A merchant claimed a channel base (or a charge) above the highest cumulative this payer ever signed."""


class PaymentRequiredError(Exception):
    """A request that stayed unpaid: the merchant asked `amount` for `recipient` and the client could not or
    would not pay (`reason`: a RefusalReason value, or the merchant's 402 error code such as `exceeds_deposit`)."""

    def __init__(self, *, amount: int | None, recipient: str | None, reason: str, url: str = "") -> None:
        shown = f"{amount} base units to {recipient}" if amount is not None else "an unknown amount"
        super().__init__(f"payment of {shown} for {url or 'the request'} failed: {reason}")
        self.amount = amount
        self.recipient = recipient
        self.reason = reason
        self.url = url
