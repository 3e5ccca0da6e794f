"""Where the relayer says a channel stands: `GET /v1/channels/{0xid}` -> its accepted cumulative.

The gateway's channel book starts a channel it does not know (first request after a restart) from here, so a
restarted gateway neither asks the payer for vouchers the relayer already has nor accepts lower ones.
"""

from __future__ import annotations

import httpx


class RelayerUnavailable(RuntimeError):
    """The relayer did not answer with a usable channel state."""


class RelayerChannelLookup:
    """Callable `(channel_id) -> accepted cumulative | None` (None: the relayer does not know the channel)."""

    def __init__(self, relayer_url: str, *, timeout: float = 2.0, client: httpx.Client | None = None) -> None:
        self.relayer_url = relayer_url.rstrip("/")
        self._client = client or httpx.Client(timeout=timeout)
        self._owns_client = client is None

    def __call__(self, channel_id: bytes) -> int | None:
        url = f"{self.relayer_url}/v1/channels/0x{channel_id.hex()}"
        try:
            response = self._client.get(url)
        except httpx.HTTPError as exc:
            raise RelayerUnavailable(f"GET {url}: {exc}") from exc
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise RelayerUnavailable(f"GET {url}: HTTP {response.status_code}")
        try:
            value = response.json()["acceptedCumulative"]
            accepted = int(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else -1
        except (ValueError, KeyError, TypeError) as exc:
            raise RelayerUnavailable(f"GET {url}: unreadable answer") from exc
        if accepted < 0:
            raise RelayerUnavailable(f"GET {url}: acceptedCumulative is not an unsigned integer")
        return accepted

    def close(self) -> None:
        if self._owns_client:
            self._client.close()
