"""The relayer with two workers on one port (anvil): every voucher counted once whichever worker answers, metrics
summed over workers, a dead worker restarted, settle-now requests honoured by the settling worker."""

import json
import os
import re
import signal
import threading
import urllib.request
from pathlib import Path

import pytest
from conftest import UNIT
from eth_account import Account
from local_servers import free_port
from relayer_process import health, post, relayer_env, spawn_relayer, submission, wait_for

pytestmark = pytest.mark.skipif(os.environ.get("PB_ON_ANVIL") != "1", reason="needs anvil: make test-anvil")


def children(pid):
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def accepted_total(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return sum(float(v) for v in re.findall(r'pb_vouchers_total\{[^}]*status="accepted"[^}]*\} ([0-9.e+]+)', text))


def test_two_workers__one_count_per_voucher_metrics_summed_restart_and_settle_now(chain, channels, open_channel,
                                                                                   payee, tmp_path):
    keyed = []
    for _ in range(3):
        channel = open_channel(10 * UNIT)
        key = Account.create().key
        channel.grant(key, total_cap=8 * UNIT, now=chain.pending_timestamp)
        keyed.append((channel, key))
    port = free_port()
    env = relayer_env(chain, channels, payee, tmp_path, port, PB_RELAYER_WORKERS="2",
                      PB_RELAYER_SETTLEMENT__THRESHOLD=str(100 * UNIT))
    supervisor = spawn_relayer(env, tmp_path)
    try:
        wait_for(lambda: len(children(supervisor.pid)) == 2 and health(port) == 200, 30, "two workers")
        # 40 vouchers of one channel posted concurrently, each on its own connection (so both workers get some)
        channel, key = keyed[0]
        answers = []
        lock = threading.Lock()

        def send(amount):
            answer = post(port, submission(channel, key, amount))[1]
            with lock:
                answers.append(answer)

        threads = [threading.Thread(target=send, args=(n * UNIT // 10,)) for n in range(1, 41)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        paid = [int(a["payment"]) for a in answers if a["status"] == "accepted"]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/channels/0x{channel.id.hex()}") as r:
            held = json.loads(r.read())
        assert sum(paid) == int(held["acceptedCumulative"])  # no payment counted twice across workers
        assert all(a["status"] in ("accepted", "stale") or a.get("reason") == "channel_busy" for a in answers)
        for other, other_key in keyed[1:]:
            body = dict(submission(other, other_key, UNIT), requestId=f"other-{other.id.hex()[:8]}")
            assert post(port, body)[1]["status"] == "accepted"
        expected = len(paid) + 2
        for _ in range(4):  # whichever worker answers the scrape, the count is the sum over both
            assert accepted_total(port) == expected

        victim = children(supervisor.pid)[1]
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: victim not in children(supervisor.pid) and len(children(supervisor.pid)) == 2, 30,
                 "the dead worker to be replaced")
        wait_for(lambda: health(port) == 200, 30, "health after the restart")

        before = channel.state().claimed
        with urllib.request.urlopen(urllib.request.Request(
                f"http://127.0.0.1:{port}/v1/channels/0x{channel.id.hex()}/settle", method="POST")) as r:
            assert r.status == 202
        wait_for(lambda: channel.state().claimed == int(held["acceptedCumulative"]), 30, "the requested settlement")
        assert before == 0
    finally:
        supervisor.send_signal(signal.SIGTERM)
        supervisor.wait(timeout=30)
    assert supervisor.returncode == 0
    assert "Traceback" not in (tmp_path / "relayer.log").read_text()
