"""Payer state at rest: session keys as encrypted keystores, and the per-channel ledger surviving a restart."""

import json
import logging
import stat

import pytest
from eth_account import Account
from protocolbanks.sdk.payer import (
    FAST_TEST_KDF,
    ChannelLedger,
    KdfParams,
    LedgerCorrupted,
    RefusalReason,
    ResyncRefused,
    SessionKey,
    SessionKeyStore,
    WrongPassphrase,
    load_account_keystore,
    save_account_keystore,
)
from protocolbanks.sdk.typed_data import ChannelDomain, Voucher

DOMAIN = ChannelDomain(31337, "0x" + "cd" * 20)
CHANNEL = b"\x07" * 32


def test_keystore_round_trip__encrypted_at_rest_and_signs_after_reload(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    store = SessionKeyStore(tmp_path / "keys", kdf=FAST_TEST_KDF)
    key = store.generate("correct horse")
    path = store.path_of(key.address)
    assert store.addresses() == [key.address]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    keystore = json.loads(path.read_text())
    assert keystore["crypto"]["kdf"] == "scrypt" and keystore["crypto"]["kdfparams"]["n"] == 2**10

    reloaded = store.load(key.address, "correct horse")
    voucher = Voucher(CHANNEL, 1, 250_000)
    signature = reloaded.sign_voucher(voucher, DOMAIN)
    assert voucher.recover(DOMAIN, signature) == key.address == reloaded.address

    private_hex = bytes(reloaded._account.key).hex()  # the test may look; nothing else shows it
    assert private_hex not in path.read_text()
    assert private_hex not in repr(reloaded) and key.address in repr(reloaded)
    assert private_hex not in caplog.text and "correct horse" not in caplog.text


def test_keystore_wrong_passphrase_is_refused(tmp_path):
    store = SessionKeyStore(tmp_path, kdf=KdfParams("pbkdf2", 1000))
    key = store.generate("right")
    with pytest.raises(WrongPassphrase):
        store.load(key.address, "wrong")
    with pytest.raises(FileNotFoundError):
        store.load(Account.create().address, "right")
    store.forget(key.address)
    assert store.addresses() == []


def test_payer_account_keystore(tmp_path):
    account = Account.create()
    path = save_account_keystore(tmp_path / "payer.json", account, "pw", FAST_TEST_KDF)
    assert load_account_keystore(path, "pw").address == account.address
    with pytest.raises(WrongPassphrase):
        load_account_keystore(path, "nope")


def test_fresh_keys_differ():
    assert SessionKey.generate().address != SessionKey.generate().address


def _payload(cumulative: int) -> dict:
    return {"type": "voucher", "cumulativeAmount": str(cumulative)}


def test_ledger_survives_a_restart__base_and_signed_maximum(tmp_path):
    path = tmp_path / "ledger.json"
    ledger = ChannelLedger(path)
    for cumulative in (100_000, 200_000, 300_000):
        ledger.record_signed(CHANNEL, cumulative, _payload(cumulative))
        ledger.confirm(CHANNEL, cumulative, units=1)
    ledger.record_signed(CHANNEL, 400_000, _payload(400_000))  # sent, then the process died before the answer

    restarted = ChannelLedger(path)
    entry = restarted.entry(CHANNEL)
    assert (entry.charged, entry.signed_max, entry.units) == (300_000, 400_000, 3)
    assert entry.last_payload == _payload(400_000)
    assert [p.name for p in tmp_path.iterdir()] == ["ledger.json"]  # no temporary file left behind

    # the merchant got the unanswered voucher: its corrective base (<= signed max) is followed
    assert restarted.resync(CHANNEL, 400_000).charged == 400_000
    # a base above anything ever signed is refused, and nothing changes
    with pytest.raises(ResyncRefused) as refused:
        restarted.resync(CHANNEL, 10_000_000)
    assert refused.value.reason is RefusalReason.MERCHANT_BASE_ABOVE_SIGNED
    with pytest.raises(ResyncRefused):
        restarted.confirm(CHANNEL, 400_001)
    assert ChannelLedger(path).entry(CHANNEL).charged == 400_000


def test_ledger_confirmations_are_written_with_the_next_voucher_or_a_flush(tmp_path):
    path = tmp_path / "ledger.json"
    ledger = ChannelLedger(path)
    ledger.record_signed(CHANNEL, 100, _payload(100))
    ledger.confirm(CHANNEL, 100, units=1)
    assert ChannelLedger(path).entry(CHANNEL).charged == 0  # not on disk yet: a crash costs one corrective 402
    ledger.flush()
    assert ChannelLedger(path).entry(CHANNEL).charged == 100


def test_ledger_confirmations_never_lower_the_base(tmp_path):
    ledger = ChannelLedger(tmp_path / "l.json")
    ledger.record_signed(CHANNEL, 500, _payload(500))
    ledger.confirm(CHANNEL, 500)
    ledger.confirm(CHANNEL, 200)  # a late, older confirmation
    assert ledger.entry(CHANNEL).charged == 500


def test_ledger_refuses_a_corrupted_file_instead_of_starting_from_zero(tmp_path):
    path = tmp_path / "ledger.json"
    path.write_text("{not json")
    with pytest.raises(LedgerCorrupted):
        ChannelLedger(path)


def test_in_memory_ledger_keeps_channels_apart():
    ledger = ChannelLedger()
    ledger.record_signed(CHANNEL, 10, _payload(10))
    assert ledger.entry(b"\x08" * 32).signed_max == 0 and ledger.channels() == [CHANNEL]
