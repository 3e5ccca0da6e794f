"""The payer side of ProtocolBanks over x402 (`pb-channel`): pay HTTP APIs per request or per minute, silently.

- `PBStreamClient` / `AsyncPBStreamClient`: open a channel, grant a session key, fetch paid URLs, remaining
  balance, settle, close; hooks for success / failure / low balance, automatic top-up.
- `PbChannelClientScheme`: the x402 scheme client (sign cumulative vouchers, confirm, resync) for any x402 client.
- `PBSyncTransport` / `PBAsyncTransport`: httpx transports with pre-emptive payment.
- `BudgetGuard` / `BudgetPolicy`: the client-side caps a merchant cannot talk the client out of.
- `ChannelLedger`: per-channel state, persisted atomically.
- `SessionKeyStore` / `SessionKey`: keys generated locally, stored as encrypted eth-account keystores.
- `MeteredSession`: DePIN billing per minute of actual use.
"""

from protocolbanks.sdk.payer.budget import BudgetGuard, BudgetPolicy, PaymentAsk, SpendWindow
from protocolbanks.sdk.payer.channel_account import (
    ChannelAccount,
    NoChannel,
    NoPayerAccount,
    PaymentEvent,
    PaymentFailure,
    session_policy,
)
from protocolbanks.sdk.payer.client_scheme import (
    AccountSigner,
    ChannelBinding,
    PaymentConfirmation,
    PbChannelClientScheme,
    VoucherSigner,
    paying_for,
)
from protocolbanks.sdk.payer.errors import (
    BudgetExceeded,
    PaymentRefused,
    PaymentRequiredError,
    RefusalReason,
    ResyncRefused,
)
from protocolbanks.sdk.payer.ledger import ChannelLedger, LedgerCorrupted, LedgerEntry
from protocolbanks.sdk.payer.metered_session import HttpMeteredMerchant, MeteredMerchant, MeteredSession, TickRecord
from protocolbanks.sdk.payer.requirement_cache import RequirementCache
from protocolbanks.sdk.payer.session_keys import (
    FAST_TEST_KDF,
    STANDARD_KDF,
    KdfParams,
    SessionKey,
    SessionKeyStore,
    WrongPassphrase,
    load_account_keystore,
    save_account_keystore,
)
from protocolbanks.sdk.payer.stream_client import AsyncPBStreamClient, PBStreamClient
from protocolbanks.sdk.payer.transports import UNITS_EXTENSION, PBAsyncTransport, PBSyncTransport

__all__ = [
    "FAST_TEST_KDF",
    "STANDARD_KDF",
    "UNITS_EXTENSION",
    "AccountSigner",
    "AsyncPBStreamClient",
    "BudgetExceeded",
    "BudgetGuard",
    "BudgetPolicy",
    "ChannelAccount",
    "ChannelBinding",
    "ChannelLedger",
    "HttpMeteredMerchant",
    "KdfParams",
    "LedgerCorrupted",
    "LedgerEntry",
    "MeteredMerchant",
    "MeteredSession",
    "NoChannel",
    "NoPayerAccount",
    "PBAsyncTransport",
    "PBStreamClient",
    "PBSyncTransport",
    "PaymentAsk",
    "PaymentConfirmation",
    "PaymentEvent",
    "PaymentFailure",
    "PaymentRefused",
    "PaymentRequiredError",
    "PbChannelClientScheme",
    "RefusalReason",
    "RequirementCache",
    "ResyncRefused",
    "SessionKey",
    "SessionKeyStore",
    "SpendWindow",
    "TickRecord",
    "VoucherSigner",
    "WrongPassphrase",
    "load_account_keystore",
    "paying_for",
    "save_account_keystore",
    "session_policy",
]
