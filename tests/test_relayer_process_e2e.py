"""The relayer as a real process against anvil: follows the chain, accepts over HTTP, survives SIGKILL.

Runs in the anvil pass of the suite (`make test-anvil`, part of `make test`); the in-process EVM has no RPC URL
for a second process to reach.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from conftest import UNIT
from eth_account import Account
from protocolbanks.sdk import Voucher

pytestmark = pytest.mark.skipif(os.environ.get("PB_ON_ANVIL") != "1", reason="needs anvil: make test-anvil")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def relayer_env(chain, channels, payee, tmp_path, port):
    return dict(os.environ, PB_RELAYER_RPC_URL=chain.provider.uri, PB_RELAYER_CONTRACT=channels.address,
               PB_RELAYER_PAYEE=payee.address, PB_RELAYER_DATABASE_URL=f"sqlite:///{tmp_path / 'relayer.db'}",
               PB_RELAYER_LISTEN_PORT=str(port), PB_RELAYER_POLL_INTERVAL_MS="100",
               PB_RELAYER_PAYEE_PRIVATE_KEY=payee.private_key, PB_RELAYER_SETTLEMENT__THRESHOLD=str(UNIT),
               PB_RELAYER_SETTLEMENT__CONFIRMATIONS="0")


def start_relayer(chain, channels, payee, tmp_path, port):
    env = relayer_env(chain, channels, payee, tmp_path, port)
    process = subprocess.Popen([sys.executable, "-m", "protocolbanks.relayer.cli", "relayer", "run"], env=env,
                               stdout=subprocess.DEVNULL, stderr=open(tmp_path / "relayer.log", "ab"))
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise AssertionError((tmp_path / "relayer.log").read_text())


def post(port, payload):
    request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/vouchers", data=json.dumps(payload).encode(),
                                     headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def submission(channel, key, amount):
    sig = Voucher(channel.id, channel.terms.epoch, amount).sign(channel.domain, key)
    return {"channelId": "0x" + channel.id.hex(), "cumulativeAmount": str(amount), "terms": hex(channel.terms.pack()),
            "r": "0x" + sig.r.hex(), "vs": "0x" + sig.vs.hex(), "requestId": f"req-{amount}"}


def test_relayer_process__accepts_and_survives_sigkill(chain, channels, open_channel, payee, token, tmp_path):
    channel = open_channel(10 * UNIT)
    key = Account.create().key
    channel.grant(key, total_cap=5 * UNIT, max_per_payment=UNIT, now=chain.pending_timestamp)
    chain.mine()
    port = free_port()
    relayer = start_relayer(chain, channels, payee, tmp_path, port)
    try:
        deadline = time.time() + 10
        status, answer = post(port, submission(channel, key, UNIT // 2))
        while answer.get("reason") == "unknown_channel" and time.time() < deadline:  # the follower catches up
            time.sleep(0.2)
            status, answer = post(port, submission(channel, key, UNIT // 2))
        assert (status, answer["status"]) == (200, "accepted")
        assert post(port, submission(channel, key, 3 * UNIT))[1]["reason"] == "exceeds_max_per_payment"
        relayer.send_signal(signal.SIGKILL)  # no shutdown hook runs: only what was committed survives
        relayer.wait(timeout=10)
        relayer = start_relayer(chain, channels, payee, tmp_path, port)
        status, answer = post(port, submission(channel, key, UNIT // 2))
        while answer.get("reason") == "unknown_channel" and time.time() < deadline + 10:
            time.sleep(0.2)
            status, answer = post(port, submission(channel, key, UNIT // 2))
        assert answer["status"] == "duplicate"  # the acknowledged voucher is still there after SIGKILL
        before = token.balanceOf(payee)
        assert post(port, submission(channel, key, UNIT))[1]["payment"] == str(UNIT // 2)
        # 1 U unsettled reaches the threshold: the relayer settles it on-chain by itself.
        while channel.state().claimed < UNIT and time.time() < deadline + 30:
            time.sleep(0.2)
        assert channel.state().claimed == UNIT and token.balanceOf(payee) - before == UNIT
        # Below the threshold nothing moves by itself; the operator's manual settle does it at once.
        assert post(port, submission(channel, key, UNIT + UNIT // 4))[1]["status"] == "accepted"
    finally:
        relayer.kill()
        relayer.wait(timeout=10)
    env = relayer_env(chain, channels, payee, tmp_path, port)
    settled = subprocess.run([sys.executable, "-m", "protocolbanks.relayer.cli", "relayer", "settle"], env=env,
                             capture_output=True, text=True, timeout=120, check=False)
    assert settled.returncode == 0, settled.stderr
    assert "1 channels" in settled.stdout and channel.state().claimed == UNIT + UNIT // 4
