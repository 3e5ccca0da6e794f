"""Session keys generated on the payer's machine and kept only as encrypted eth-account keystores (V3 JSON).

The private key never leaves a `SessionKey` object: it signs vouchers, its repr shows the address only, and
nothing here logs a key or a passphrase. The key-derivation cost is an option: `STANDARD_KDF` (scrypt n=2^18,
about a second per unlock) for real use, `FAST_TEST_KDF` for tests.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from eth_account import Account
from eth_account.signers.local import LocalAccount
from protocolbanks.sdk.payer.atomic_file import write_atomically
from protocolbanks.sdk.signing import CompactSignature
from protocolbanks.sdk.typed_data import ChannelDomain, Voucher
from web3 import Web3

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class KdfParams:
    """Keystore key derivation: `iterations` is scrypt's n or pbkdf2's c (None = eth-account's default)."""

    kdf: Literal["scrypt", "pbkdf2"] = "scrypt"
    iterations: int | None = None


STANDARD_KDF = KdfParams("scrypt", None)
FAST_TEST_KDF = KdfParams("scrypt", 2**10)  # milliseconds to unlock: tests only


class WrongPassphrase(ValueError):
    """The keystore did not decrypt with this passphrase (or the file is corrupted)."""


class SessionKey:
    """A voucher-signing key held in memory. Use `address` to grant it; the key itself is not exposed."""

    __slots__ = ("_account", "address")

    def __init__(self, account: LocalAccount) -> None:
        self._account = account
        self.address: str = account.address

    @classmethod
    def generate(cls) -> SessionKey:
        """A new key from the operating system's randomness."""
        return cls(Account.create())

    def sign_voucher(self, voucher: Voucher, domain: ChannelDomain) -> CompactSignature:
        return voucher.sign(domain, bytes(self._account.key))

    def encrypt(self, passphrase: str, kdf: KdfParams = STANDARD_KDF) -> dict[str, Any]:
        """The eth-account V3 keystore of this key."""
        return dict(Account.encrypt(self._account.key, passphrase, kdf=kdf.kdf, iterations=kdf.iterations))

    def __repr__(self) -> str:
        return f"SessionKey({self.address})"


def decrypt_keystore(keystore: dict[str, Any], passphrase: str) -> LocalAccount:
    try:
        key = Account.decrypt(keystore, passphrase)
    except ValueError as exc:  # eth-account: "MAC mismatch"
        raise WrongPassphrase("the keystore does not open with this passphrase") from exc
    account: LocalAccount = Account.from_key(key)
    return account


def load_account_keystore(path: Path | str, passphrase: str) -> LocalAccount:
    """An account (e.g. the payer's own key) from an eth-account keystore file."""
    return decrypt_keystore(json.loads(Path(path).read_text()), passphrase)


def save_account_keystore(path: Path | str, account: LocalAccount, passphrase: str,
                          kdf: KdfParams = STANDARD_KDF) -> Path:
    target = Path(path)
    write_atomically(target, json.dumps(SessionKey(account).encrypt(passphrase, kdf)).encode())
    return target


class SessionKeyStore:
    """A directory of encrypted session keys, one `<checksum address>.json` keystore (mode 0600) per key."""

    def __init__(self, directory: Path | str, *, kdf: KdfParams = STANDARD_KDF) -> None:
        self.directory = Path(directory)
        self.kdf = kdf

    def path_of(self, address: str) -> Path:
        return self.directory / f"{Web3.to_checksum_address(address)}.json"

    def generate(self, passphrase: str) -> SessionKey:
        """Creates a key locally, stores it encrypted and returns it unlocked."""
        key = SessionKey.generate()
        self.save(key, passphrase)
        return key

    def save(self, key: SessionKey, passphrase: str) -> Path:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = self.path_of(key.address)
        write_atomically(path, json.dumps(key.encrypt(passphrase, self.kdf)).encode())
        log.info("session key stored", extra={"address": key.address, "path": str(path), "kdf": self.kdf.kdf})
        return path

    def load(self, address: str, passphrase: str) -> SessionKey:
        path = self.path_of(address)
        if not path.exists():
            raise FileNotFoundError(f"no keystore for {address} in {self.directory}")
        account = decrypt_keystore(json.loads(path.read_text()), passphrase)
        if account.address != Web3.to_checksum_address(address):
            raise WrongPassphrase(f"keystore {path.name} holds another key")
        return SessionKey(account)

    def addresses(self) -> list[str]:
        if not self.directory.exists():
            return []
        return sorted(path.stem for path in self.directory.glob("0x*.json"))

    def forget(self, address: str) -> None:
        """Deletes a key's keystore (after it was revoked or rotated away)."""
        self.path_of(address).unlink(missing_ok=True)
