"""ProtocolBanks channel vouchers as an x402 payment scheme (`pb-channel`): the wire shared by payers and
merchants. The payer side is `protocolbanks.sdk.payer`, the merchant side `protocolbanks.sdk.gateway`."""

from protocolbanks.sdk.x402.wire import (
    SCHEME,
    ChannelStateExtra,
    VoucherPayload,
    WireError,
    chain_id_of,
    network_of,
    requirement_extra,
)

__all__ = ["SCHEME", "ChannelStateExtra", "VoucherPayload", "WireError", "chain_id_of", "network_of",
           "requirement_extra"]
