"""`ape run channel …` as an integrator runs it: processes against the test session's anvil, addresses from a
deployment record, a session key in an encrypted keystore, contract refusals named and never a traceback."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from pathlib import Path

import pytest
from conftest import UNIT
from protocolbanks.sdk.deployments import ContractDeployment, DeploymentRecord

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(os.environ.get("PB_ON_ANVIL") != "1",
                                reason="separate processes share the chain only on anvil: make test-anvil")


def test_open_grant_sign_redeem_status__and_refusals_named(tmp_path, chain, channels, token, payer, payee):
    record = DeploymentRecord("ethereum", "local", chain.chain_id, "test")
    for name, contract in (("StreamChannels", channels), ("MockUSDC", token)):
        record.contracts[name] = ContractDeployment(contract.address, "0x", 0, [], "test")
    record.save(DeploymentRecord.path_for(tmp_path, "ethereum", "local"))
    env = dict(os.environ, PB_DEPLOYMENTS_DIR=str(tmp_path), PB_KEY_PASSPHRASE="correct horse")

    def channel(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(["ape", "run", "channel", *args, "--network", "ethereum:local:foundry"], cwd=ROOT,
                              env=env, capture_output=True, text=True, timeout=180, check=False)
        assert "Traceback" not in done.stderr, done.stderr
        return done

    salt = "0x" + secrets.token_hex(8)
    named = ["--payee", payee.address, "--salt", salt]
    opened = channel("open", "--account", "TEST::1", "--amount", str(5 * UNIT), *named)
    assert opened.returncode == 0 and "opened with 5000000 base units" in opened.stdout, opened.stderr
    key_file = tmp_path / "agent.json"
    granted = channel("grant", "--account", "TEST::1", *named, "--key-file", str(key_file), "--total-cap",
                      str(3 * UNIT), "--period-cap", str(2 * UNIT), "--period", "3600")
    assert granted.returncode == 0 and key_file.exists(), granted.stderr
    vouchers = []
    for amount in (UNIT + UNIT // 2, 2 * UNIT + UNIT // 2):  # the second is past the per-hour cap
        out = tmp_path / f"voucher-{amount}.json"
        signed = channel("voucher", "--payer", payer.address, *named, "--key-file", str(key_file),
                         "--amount", str(amount), "--out", str(out))
        assert signed.returncode == 0 and json.loads(out.read_text())["cumulativeAmount"] == str(amount)
        vouchers.append(str(out))
    before = token.balanceOf(payee)
    redeemed = channel("redeem", "--account", "TEST::2", "--payee", payee.address, *vouchers)
    assert redeemed.returncode == 0, redeemed.stderr
    assert "PeriodCapExceeded" in redeemed.stdout and "redeemed 1500000 base units" in redeemed.stdout
    assert token.balanceOf(payee) - before == UNIT + UNIT // 2
    shown = channel("status", "--payer", payer.address, *named)
    state = json.loads(shown.stdout)
    assert (state["claimed"], state["remaining"], state["terms"]["periodCap"]) == ("1500000", "1500000", "2000000")

    broke = channel("open", "--account", "TEST::8", "--amount", str(UNIT), *named)  # holds no token
    assert broke.returncode == 1 and "the contract refused: ERC20InsufficientBalance" in broke.stderr
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    refused = channel("redeem", "--account", "TEST::2", "--payee", payee.address, str(bad))
    assert refused.returncode == 1 and "not a signed voucher document" in refused.stderr
