"""Relayer configuration: a TOML file, overridden by environment variables (PB_RELAYER_<FIELD>, nested with __).

Example `relayer.toml`:

    rpc_url = "http://127.0.0.1:8545"
    contract = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
    payee = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
    database_url = "sqlite:///relayer.db"
    listen_port = 8790

    [settlement]
    threshold = 10000000        # base units: settle a channel once 10 U are unsettled
    interval_s = 3600

    [sentinel]
    max_per_payment = 10000000
    max_per_hour = 50000000

    [payers."0x70997970C51812dc3A010C7d01b50e0d17dc79C8"]   # one payer's contacts and own limits
    webhook_url = "https://agent.example/pb-hook"
    email = "ops@agent.example"
    max_per_hour = 20000000
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _check_address(value: str) -> str:
    if not (isinstance(value, str) and value.startswith("0x") and len(value) == 42):
        raise ValueError(f"{value!r} must be a 0x-prefixed 20-byte address")
    int(value, 16)
    return value


class SettlementConfig(BaseModel):
    threshold: int = Field(10_000_000, gt=0, description="Base units unsettled that trigger a settlement.")
    interval_s: int = Field(3_600, gt=0, description="Settle anything older than this many seconds.")
    max_batch: int = Field(100, gt=0, le=500)
    confirmations: int = Field(2, ge=0)
    stuck_after_s: int = Field(60, gt=0, description="Replace a settlement transaction not mined after this long "
                                                     "(same nonce and calldata, higher fees).")
    fee_bump_bps: int = Field(1_250, ge=1_250, le=100_000, description="Raise both fees of a replacement by at "
                                                                       "least this (basis points; 1250 = 12.5 %).")
    retry_initial_ms: int = Field(1_000, gt=0, description="First wait after a failed attempt (RPC down, refused).")
    retry_max_s: int = Field(300, gt=0, description="Longest wait between attempts (the backoff doubles up to it).")


class SentinelConfig(BaseModel):
    max_per_payment: int | None = Field(None, ge=0)
    max_per_minute: int | None = Field(None, ge=0)
    max_per_hour: int | None = Field(None, ge=0)
    min_remaining_balance: int | None = Field(None, ge=0)
    spike_ratio: int = Field(8, ge=2)
    spike_window_s: int = Field(5, ge=1)
    spike_floor_per_s: int = Field(500_000, ge=0)


class EmailConfig(BaseModel):
    host: str
    port: int = Field(587, ge=1, le=65535)
    sender: str
    recipient: str | None = Field(None, description="operator's address for every trip (payers' own: [payers])")
    starttls: bool = True
    username: str | None = None
    password: SecretStr | None = None


class TelegramConfig(BaseModel):
    bot_token: SecretStr
    chat_id: str | None = Field(None, description="operator's chat for every trip (payers' own: [payers])")
    api_base: str = "https://api.telegram.org"


class PayerConfig(BaseModel):
    """What one payer registered with this merchant: where to tell it about a Sentinel trip, and its own limits
    (each overrides the [sentinel] default when set)."""

    webhook_url: str | None = None
    email: str | None = None
    telegram_chat_id: str | None = None
    max_per_payment: int | None = Field(None, ge=0)
    max_per_minute: int | None = Field(None, ge=0)
    max_per_hour: int | None = Field(None, ge=0)
    min_remaining_balance: int | None = Field(None, ge=0)


class RelayerConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PB_RELAYER_", env_nested_delimiter="__", extra="forbid")

    rpc_url: str = "http://127.0.0.1:8545"
    contract: str
    payee: str
    chain_id: int | None = None
    database_url: str = "sqlite:///relayer.db"
    listen_host: str = "127.0.0.1"
    listen_port: int = Field(8790, ge=0, le=65535)
    workers: int = Field(1, ge=1, le=64, description="intake processes sharing the port (one per core)")
    poll_interval_ms: int = Field(500, ge=50)
    from_block: int = Field(0, ge=0, description="block to read the contract's events from (its deployment block)")
    reorg_depth: int = Field(12, ge=0, description="newest blocks whose events are re-read on every poll")
    max_chain_lag_s: float = Field(60.0, gt=0, description="refuse vouchers (503) when the chain view is older")
    payee_key_file: Path | None = Field(None, description="eth-account keystore of the payee (signs settlements)")
    payee_key_passphrase: SecretStr | None = Field(None, description="usually PB_RELAYER_PAYEE_KEY_PASSPHRASE")
    payee_private_key: SecretStr | None = Field(None, description="hex key, for local development only")
    max_fee_per_gas: int | None = Field(None, gt=0, description="refuse to settle above this fee (wei)")
    guardian_private_key: SecretStr | None = Field(None, description="when payers named this relayer guardian")
    notify_webhook_url: str | None = Field(None, description="POSTed a JSON document on every Sentinel trip")
    notify_email: EmailConfig | None = None
    notify_telegram: TelegramConfig | None = None
    settlement: SettlementConfig = Field(default_factory=SettlementConfig)
    sentinel: SentinelConfig = Field(default_factory=SentinelConfig)
    payers: dict[str, PayerConfig] = Field(default_factory=dict, description="per payer address (any case)")

    @field_validator("contract", "payee")
    @classmethod
    def _address(cls, value: str) -> str:
        return _check_address(value)

    @field_validator("payers")
    @classmethod
    def _payer_addresses(cls, value: dict[str, PayerConfig]) -> dict[str, PayerConfig]:
        for address in value:
            _check_address(address)
        return {address.lower(): contact for address, contact in value.items()}

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings,  # type: ignore[no-untyped-def]
                                   file_secret_settings):
        return (env_settings, init_settings)  # the environment overrides the file

    @classmethod
    def load(cls, path: Path | None) -> RelayerConfig:
        """Reads the file (if given), then lets PB_RELAYER_* environment variables override it."""
        data: dict[str, Any] = {}
        if path is not None:
            data = tomllib.loads(path.read_text())
        return cls(**data)
