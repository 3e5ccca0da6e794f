"""ProtocolBanks SDK: sign and verify channel vouchers and session-key grants, without Ape.

The run-time pieces (payer client, provider middleware, metering, pricing) build on these primitives.
"""

from protocolbanks.sdk.lane_terms import LaneTerms
from protocolbanks.sdk.typed_data import (
    ChannelDomain,
    SessionKeyGrant,
    Voucher,
    channel_id_of,
    lane_id_of,
)
from protocolbanks.sdk.signing import CompactSignature, sign_digest, recover_digest

__all__ = [
    "ChannelDomain",
    "CompactSignature",
    "LaneTerms",
    "SessionKeyGrant",
    "Voucher",
    "channel_id_of",
    "lane_id_of",
    "recover_digest",
    "sign_digest",
]
