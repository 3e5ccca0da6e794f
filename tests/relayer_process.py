"""The relayer as a child process for the anvil-pass tests: its PB_RELAYER_* environment, starting it (with its
stderr in `relayer.log` under the test's tmp_path), waiting on it, and posting vouchers to its HTTP intake."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from conftest import UNIT
from protocolbanks.sdk import Voucher

T = TypeVar("T")
RELAYER_RUN = [sys.executable, "-m", "protocolbanks.relayer.cli", "relayer", "run"]


def relayer_env(chain: Any, channels: Any, payee: Any, tmp_path: Path, port: int, **settings: str) -> dict[str, str]:
    """The relayer's settings: this chain and contract, an SQLite store in `tmp_path`, settling for `payee` at a
    1 U threshold without waiting for confirmations; `settings` (PB_RELAYER_* names) add to or override them."""
    env = dict(os.environ)
    env.update(PB_RELAYER_RPC_URL=chain.provider.uri, PB_RELAYER_CONTRACT=channels.address,
               PB_RELAYER_PAYEE=payee.address, PB_RELAYER_DATABASE_URL=f"sqlite:///{tmp_path / 'relayer.db'}",
               PB_RELAYER_LISTEN_PORT=str(port), PB_RELAYER_POLL_INTERVAL_MS="100",
               PB_RELAYER_PAYEE_PRIVATE_KEY=payee.private_key, PB_RELAYER_SETTLEMENT__THRESHOLD=str(UNIT),
               PB_RELAYER_SETTLEMENT__CONFIRMATIONS="0")
    env.update(settings)
    return env


def spawn_relayer(env: dict[str, str], tmp_path: Path) -> subprocess.Popen[bytes]:
    """`protocolbanks relayer run` with `env`, its stderr appended to tmp_path/relayer.log; does not wait."""
    with open(tmp_path / "relayer.log", "ab") as log:
        return subprocess.Popen(RELAYER_RUN, env=env, stdout=subprocess.DEVNULL, stderr=log)


def start_relayer(chain: Any, channels: Any, payee: Any, tmp_path: Path, port: int,
                  **settings: str) -> subprocess.Popen[bytes]:
    """Spawns the relayer (`relayer_env` + `settings`) and waits until /healthz answers (20 s at most)."""
    process = spawn_relayer(relayer_env(chain, channels, payee, tmp_path, port, **settings), tmp_path)
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise AssertionError((tmp_path / "relayer.log").read_text())


def health(port: int) -> int | None:
    """The /healthz status code, or None when nothing answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def wait_for(predicate: Callable[[], T], timeout_s: float, what: str) -> T:
    """Polls `predicate` every 0.1 s until it returns something truthy, and returns that."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def post(port: int, payload: dict[str, Any]) -> tuple[int, Any]:
    """POSTs a voucher submission to the relayer's intake; returns (status, parsed answer)."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/vouchers", data=json.dumps(payload).encode(),
                                     headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def submission(channel: Any, key: bytes, amount: int) -> dict[str, str]:
    """The intake's JSON for a voucher of `amount` cumulative signed with `key` (requestId `req-<amount>`)."""
    sig = Voucher(channel.id, channel.terms.epoch, amount).sign(channel.domain, key)
    return {"channelId": "0x" + channel.id.hex(), "cumulativeAmount": str(amount), "terms": hex(channel.terms.pack()),
            "r": "0x" + sig.r.hex(), "vs": "0x" + sig.vs.hex(), "requestId": f"req-{amount}"}
