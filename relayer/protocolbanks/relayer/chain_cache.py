"""The relayer's chain view lives in the SDK (the HTTP gateway uses it too): `protocolbanks.sdk.chain_view`."""

from protocolbanks.sdk.abi_files import stream_channels_abi
from protocolbanks.sdk.chain_view import ChainCache, ChainEvent

__all__ = ["ChainCache", "ChainEvent", "stream_channels_abi"]
