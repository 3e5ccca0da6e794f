"""Durable storage of the relayer: SQLite by default, PostgreSQL by URL; schema migrations applied on start."""

from protocolbanks.relayer.store.schema import metadata
from protocolbanks.relayer.store.voucher_store import AcceptedVoucher, ChannelProgress, VoucherStore

__all__ = ["AcceptedVoucher", "ChannelProgress", "VoucherStore", "metadata"]
