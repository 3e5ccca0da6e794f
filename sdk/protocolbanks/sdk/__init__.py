"""ProtocolBanks SDK: sign and verify channel vouchers and session-key grants, without Ape.

The run-time pieces (payer client, provider middleware, metering, pricing) build on these primitives.
"""

from protocolbanks.sdk.batch_rows import pack_redemption_rows, unpack_redemption_rows
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
    "pack_redemption_rows",
    "recover_digest",
    "sign_digest",
    "unpack_redemption_rows",
]
