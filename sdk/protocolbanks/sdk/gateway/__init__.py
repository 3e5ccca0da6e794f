"""The merchant side of ProtocolBanks payments over HTTP 402 (x402 scheme `pb-channel`): a "silent payment
gateway" that verifies a voucher locally, lets the request through at once and leaves settlement to the relayer.

Core (framework-free): `GatewayChannelBook` (local verification, reservations, commit/release/credit),
`ChainFollower` (keeps the chain view current), `RelayerForwarder` (committed vouchers to the relayer, off the
request path), `RelayerChannelLookup` (where a channel stands after a restart),
`PbChannelServerScheme` / `PbChannelFacilitatorScheme` (the x402 plug-ins), `MerchantGateway` (shared settings),
`Paywall` (request -> 402 or verified payment), `RateDesk` (the merchant's pricing API),
`MeteredService` (start / tick / stop sessions billed per unit of time).

Frameworks (import the one you use): `protocolbanks.sdk.gateway.fastapi` (`paid` dependency,
`install_payment_middleware`, `rate_router`, `metered_router`), `protocolbanks.sdk.gateway.flask` (`@paid`
decorator, `rate_blueprint`), `protocolbanks.sdk.gateway.django` (`PBDjangoPaymentMiddleware`).
"""

from protocolbanks.sdk.gateway.chain_follower import ChainFollower
from protocolbanks.sdk.gateway.channel_book import (
    GatewayChannelBook,
    PaymentReceipt,
    Reservation,
    VoucherRefused,
    payment_id_of,
)
from protocolbanks.sdk.gateway.forwarder import ForwarderStats, RelayerForwarder
from protocolbanks.sdk.gateway.merchant import MerchantGateway, PaymentFailure, PricedRoute
from protocolbanks.sdk.gateway.metered import MeteredService, MeteredSession, MeterError
from protocolbanks.sdk.gateway.paywall import PaidRequest, PaymentDemand, Paywall
from protocolbanks.sdk.gateway.prices import Quote, RoutePrice, to_amount
from protocolbanks.sdk.gateway.rate_api import RateDesk
from protocolbanks.sdk.gateway.relayer_lookup import RelayerChannelLookup, RelayerUnavailable
from protocolbanks.sdk.gateway.server_scheme import PbChannelFacilitatorScheme, PbChannelServerScheme

__all__ = [
    "ChainFollower",
    "ForwarderStats",
    "GatewayChannelBook",
    "MerchantGateway",
    "MeterError",
    "MeteredService",
    "MeteredSession",
    "PaidRequest",
    "PaymentDemand",
    "PaymentFailure",
    "PaymentReceipt",
    "Paywall",
    "PbChannelFacilitatorScheme",
    "PbChannelServerScheme",
    "PricedRoute",
    "Quote",
    "RateDesk",
    "RelayerChannelLookup",
    "RelayerForwarder",
    "RelayerUnavailable",
    "Reservation",
    "RoutePrice",
    "VoucherRefused",
    "payment_id_of",
    "to_amount",
]
