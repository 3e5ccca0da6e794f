"""EIP-712 typed data of the protocol: vouchers and session-key grants.

Mirrors `contracts/libraries/PaymentTypedData.sol`; digests are computed directly (no JSON round trip), which is
what lets a gateway verify thousands of vouchers a second.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from eth_abi import encode
from eth_utils import keccak, to_checksum_address
from protocolbanks.sdk.keccak import keccak256
from protocolbanks.sdk.signing import CompactSignature, recover_digest, sign_digest

DOMAIN_NAME = "ProtocolBanks StreamChannels"
DOMAIN_VERSION = "1"

_DOMAIN_TYPEHASH = keccak(
    b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
VOUCHER_TYPE = "Voucher(bytes32 channelId,uint256 epoch,uint256 cumulativeAmount)"
VOUCHER_TYPEHASH = keccak(VOUCHER_TYPE.encode())
GRANT_TYPE = (
    "SessionKeyGrant(bytes32 channelId,address key,uint256 totalCap,uint256 periodCap,uint256 periodLength,"
    "uint256 validUntil,uint256 maxPerPayment,uint256 epoch,uint256 deadline)"
)
GRANT_TYPEHASH = keccak(GRANT_TYPE.encode())


@dataclass(frozen=True)
class ChannelDomain:
    """The EIP-712 domain of one deployed StreamChannels contract."""

    chain_id: int
    verifying_contract: str

    @cached_property
    def separator(self) -> bytes:
        return keccak(
            encode(
                ["bytes32", "bytes32", "bytes32", "uint256", "address"],
                [
                    _DOMAIN_TYPEHASH,
                    keccak(DOMAIN_NAME.encode()),
                    keccak(DOMAIN_VERSION.encode()),
                    self.chain_id,
                    to_checksum_address(self.verifying_contract),
                ],
            )
        )

    @cached_property
    def _prefix(self) -> bytes:
        return b"\x19\x01" + self.separator

    def digest(self, struct_hash: bytes) -> bytes:
        return keccak256(self._prefix + struct_hash)


@dataclass(frozen=True)
class Voucher:
    """A signer's statement that the channel's payee may have received `cumulative_amount` in total."""

    channel_id: bytes
    epoch: int
    cumulative_amount: int

    def struct_hash(self) -> bytes:
        # abi.encode of four static words, written out: this sits on the gateway's per-request path.
        if len(self.channel_id) != 32:
            raise ValueError("channel_id must be 32 bytes")
        if not 0 <= self.epoch < 1 << 256 or not 0 <= self.cumulative_amount < 1 << 256:
            raise ValueError("epoch and cumulative_amount must be unsigned 256-bit integers")
        return keccak256(
            VOUCHER_TYPEHASH + self.channel_id + self.epoch.to_bytes(32, "big")
            + self.cumulative_amount.to_bytes(32, "big")
        )

    def digest(self, domain: ChannelDomain) -> bytes:
        return domain.digest(self.struct_hash())

    def sign(self, domain: ChannelDomain, private_key: bytes | str) -> CompactSignature:
        return sign_digest(private_key, self.digest(domain))

    def recover(self, domain: ChannelDomain, signature: CompactSignature) -> str:
        return str(recover_digest(self.digest(domain), signature))


@dataclass(frozen=True)
class SessionKeyGrant:
    """A payer's signed permission for a session key (the gas-free "Subscribe" button)."""

    channel_id: bytes
    key: str
    total_cap: int
    period_cap: int
    period_length: int
    valid_until: int
    max_per_payment: int
    epoch: int
    deadline: int

    def struct_hash(self) -> bytes:
        return keccak(
            encode(
                ["bytes32", "bytes32", "address", "uint256", "uint256", "uint256", "uint256", "uint256", "uint256",
                 "uint256"],
                [
                    GRANT_TYPEHASH,
                    self.channel_id,
                    to_checksum_address(self.key),
                    self.total_cap,
                    self.period_cap,
                    self.period_length,
                    self.valid_until,
                    self.max_per_payment,
                    self.epoch,
                    self.deadline,
                ],
            )
        )

    def digest(self, domain: ChannelDomain) -> bytes:
        return domain.digest(self.struct_hash())

    def sign(self, domain: ChannelDomain, private_key: bytes | str) -> bytes:
        """65-byte signature, as `grantSessionKeyBySig` takes it."""
        return bytes(sign_digest(private_key, self.digest(domain)).to_bytes())

    def policy(self) -> tuple[int, int, int, int, int]:
        """The `SessionKeyPolicy` tuple for the contract call."""
        return (self.total_cap, self.period_cap, self.period_length, self.valid_until, self.max_per_payment)


def _address_word(address: str) -> bytes:
    """An address as its 32-byte ABI word (left-padded), from 0x-hex of any case."""
    if not isinstance(address, str) or len(address) != 42 or not address.startswith(("0x", "0X")):
        raise ValueError(f"{address!r} is not a 0x-prefixed 20-byte address")
    return bytes(12) + bytes.fromhex(address[2:])


def channel_id_of(payer: str, payee: str, token: str, salt: bytes) -> bytes:
    """`keccak256(abi.encode(ChannelConfig(payer, payee, token, salt)))`, encoded directly (it is on every paid
    request's path: four static words)."""
    if len(salt) != 32:
        raise ValueError("salt must be 32 bytes")
    return keccak256(_address_word(payer) + _address_word(payee) + _address_word(token) + bytes(salt))


def lane_id_of(channel_id: bytes, payee: str, token: str, signer: str, terms: int) -> bytes:
    """Storage location of a lane: `keccak256(abi.encode(channelId, payee, token, signer, terms))`."""
    return keccak(
        encode(
            ["bytes32", "address", "address", "address", "uint256"],
            [channel_id, to_checksum_address(payee), to_checksum_address(token), to_checksum_address(signer), terms],
        )
    )
