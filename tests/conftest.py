"""Shared fixtures: roles, tokens, the channels contract, and a harness that opens channels and signs vouchers.

Ape's pytest plugin reverts the chain after every test, so session-scoped deployments start each test fresh.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import pytest
from eth_account import Account
from postgres_server import postgres_server, postgres_url, store_url  # noqa: F401 (fixtures)
from protocolbanks.sdk import ChannelDomain, LaneTerms, SessionKeyGrant, Voucher, channel_id_of

REDEEM_WINDOW = 3600
UNIT = 10**6  # one "U" of the 6-decimal mock stablecoin
HOUR = 3600


@pytest.fixture(scope="session")
def deployer(accounts):
    return accounts[0]


@pytest.fixture(scope="session")
def payer(accounts):
    return accounts[1]


@pytest.fixture(scope="session")
def payee(accounts):
    return accounts[2]


@pytest.fixture(scope="session")
def guardian(accounts):
    return accounts[3]


@pytest.fixture(scope="session")
def stranger(accounts):
    return accounts[4]


@pytest.fixture(scope="session")
def token(project, deployer, payer, stranger):
    usdc = deployer.deploy(project.MockUSDC)
    for holder in (payer, stranger):
        usdc.mint(holder, 1_000_000 * UNIT, sender=deployer)
    return usdc


@pytest.fixture(scope="session")
def channels(project, deployer, token, payer, stranger):
    contract = deployer.deploy(project.StreamChannels, REDEEM_WINDOW)
    for holder in (payer, stranger):
        token.approve(contract, 2**256 - 1, sender=holder)
    return contract


@pytest.fixture(scope="session")
def domain(chain, channels) -> ChannelDomain:
    return ChannelDomain(chain_id=chain.chain_id, verifying_contract=channels.address)


@dataclass
class Channel:
    """A channel opened in a test, with what the test needs to sign for it and talk to the contract."""

    contract: Any
    domain: ChannelDomain
    payer: Any
    payee: Any
    token: Any
    salt: bytes
    signer_key: bytes  # private key of whoever currently signs vouchers
    terms: LaneTerms = field(default_factory=LaneTerms.for_payer)

    @property
    def config(self) -> tuple[str, str, str, bytes]:
        return (self.payer.address, self.payee.address, self.token.address, self.salt)

    @property
    def id(self) -> bytes:
        return channel_id_of(self.payer.address, self.payee.address, self.token.address, self.salt)

    def voucher(self, cumulative: int, *, key: bytes | None = None, terms: LaneTerms | None = None,
                channel_id: bytes | None = None, domain: ChannelDomain | None = None) -> tuple:
        """A `Redemption` row signed by the current signer (or `key`) under the current terms (or `terms`)."""
        terms = terms or self.terms
        cid = channel_id or self.id
        sig = Voucher(cid, terms.epoch, cumulative).sign(domain or self.domain, key or self.signer_key)
        return (cid, cumulative, terms.pack(), sig.r, sig.vs)

    def state(self):
        return self.contract.channelState(self.config)

    def refresh_terms(self) -> LaneTerms:
        self.terms = LaneTerms.unpack(self.state().terms)
        return self.terms

    def grant(self, key: bytes, *, total_cap: int, period_cap: int = 0, period_length: int = 0,
              valid_for: int = 24 * HOUR, max_per_payment: int = 0, now: int) -> Any:
        policy = (total_cap, period_cap, period_length, now + valid_for, max_per_payment)
        receipt = self.contract.grantSessionKey(self.config, Account.from_key(key).address, policy, sender=self.payer)
        self.signer_key = key
        self.refresh_terms()
        return receipt

    def signed_grant(self, key_address: str, *, total_cap: int, period_cap: int = 0, period_length: int = 0,
                     valid_until: int, max_per_payment: int = 0, deadline: int,
                     epoch: int | None = None, payer_key: bytes | str | None = None) -> tuple[SessionKeyGrant, bytes]:
        grant = SessionKeyGrant(
            channel_id=self.id, key=key_address, total_cap=total_cap, period_cap=period_cap,
            period_length=period_length, valid_until=valid_until, max_per_payment=max_per_payment,
            epoch=self.terms.epoch + 1 if epoch is None else epoch, deadline=deadline,
        )
        return grant, grant.sign(self.domain, payer_key or self.payer.private_key)


@pytest.fixture
def open_channel(channels, domain, payer, payee, token):
    """Factory: opens a channel from `payer` to `payee` with `deposit` and returns its handle."""
    counter = iter(range(1, 10**9))

    def _open(deposit: int = 10 * UNIT, *, salt: bytes | None = None, from_=None, to=None, with_token=None,
              sender_key: bytes | None = None) -> Channel:
        salt = salt or next(counter).to_bytes(32, "big")
        who, whom, tok = from_ or payer, to or payee, with_token or token
        channels.open(whom, tok, salt, deposit, sender=who)
        return Channel(channels, domain, who, whom, tok, salt, sender_key or who.private_key)

    return _open


@pytest.fixture
def wallet_channel(project, accounts, channels, domain, token, payee, deployer):
    """A channel whose payer is an ERC-1271 smart wallet owned by accounts[6]; returns (channel, owner)."""
    owner = accounts[6]
    wallet = deployer.deploy(project.MockSmartWallet, owner)
    token.mint(wallet, 100 * UNIT, sender=deployer)
    wallet.execute(token, token.approve.encode_input(channels, 2**256 - 1), sender=owner)
    salt = b"\x11" * 32
    wallet.execute(channels, channels.open.encode_input(payee, token, salt, 10 * UNIT), sender=owner)
    return Channel(channels, domain, wallet, payee, token, salt, owner.private_key), owner


@pytest.fixture
def agent(deployer, token):
    """A fresh payer account (the payer clients' tests) holding ether and 100 U, with no approval given to anyone."""
    account = Account.create()
    deployer.transfer(account.address, 10**18)
    token.mint(account.address, 100 * UNIT, sender=deployer)
    return account


@pytest.fixture
def new_key():
    """Factory: a fresh session key (private key bytes)."""
    return lambda: Account.create().key


def pytest_collection_modifyitems(config, items):
    """The `long` invariant runs are opt-in (`make test-long` sets PB_LONG=1)."""
    if os.environ.get("PB_LONG") == "1":
        return
    skip = pytest.mark.skip(reason="long run: set PB_LONG=1 (make test-long)")
    for item in items:
        if "long" in item.keywords:
            item.add_marker(skip)
