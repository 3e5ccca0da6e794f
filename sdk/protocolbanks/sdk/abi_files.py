"""The contracts' ABIs shipped inside the package (exported from the build; a test checks they match it)."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any


@cache
def _load(name: str) -> tuple[dict[str, Any], ...]:
    text = resources.files("protocolbanks.sdk").joinpath(f"abi/{name}.json").read_text()
    return tuple(json.loads(text))


def stream_channels_abi() -> list[dict[str, Any]]:
    """StreamChannels' ABI (a fresh list each call; the entries are shared, do not mutate them)."""
    return list(_load("StreamChannels"))
