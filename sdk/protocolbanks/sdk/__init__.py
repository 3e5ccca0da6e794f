"""ProtocolBanks SDK: sign and verify channel vouchers and session-key grants, without Ape.

The run-time pieces (payer client, provider middleware, metering, pricing) build on these primitives.
"""

from protocolbanks.sdk.lane_terms import LaneTerms
from protocolbanks.sdk.signing import CompactSignature, recover_digest, sign_digest
from protocolbanks.sdk.typed_data import (
    ChannelDomain,
    SessionKeyGrant,
    Voucher,
    channel_id_of,
    lane_id_of,
)

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
