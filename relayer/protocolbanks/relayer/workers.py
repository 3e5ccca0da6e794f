"""`relayer run` with `workers = N > 1`: N copies of the relayer share one port (SO_REUSEPORT; the kernel spreads
connections over them), so the intake uses every core.

What keeps them correct together:
- the database decides: a voucher is stored only if its channel still holds what the deciding worker assumed
  (`VoucherStore.append` → CONFLICT → that worker reloads the channel and decides again), so no payment is
  counted twice, whichever worker a request reaches;
- Sentinel trips and lifts are replayed from the database into every worker (`SentinelTripFeed`);
- worker 0 alone settles and records payers' freeze decisions; every worker follows the chain;
- Prometheus counters are aggregated over the workers (prometheus_client's multiprocess mode).
Per-key hard limits (per minute / hour) are counted by each worker over the payments it sees: an agent on one
keep-alive connection stays on one worker; spread over N connections, a key may spend up to N times a
per-minute limit before every worker has tripped (the on-chain caps still bound it).

The supervisor restarts a worker that dies and stops them all on SIGTERM / SIGINT.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from types import FrameType

log = logging.getLogger("protocolbanks.relayer.workers")

WORKER_INDEX_ENV = "PB_RELAYER_WORKER_INDEX"
WORKER_COUNT_ENV = "PB_RELAYER_WORKER_COUNT"
METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"


def worker_index() -> int | None:
    """This process's worker number, or None when it is not a supervised worker."""
    value = os.environ.get(WORKER_INDEX_ENV)
    return int(value) if value is not None and value.isdigit() else None


class WorkerSupervisor:
    def __init__(self, command: Sequence[str], workers: int, *, env: Mapping[str, str] | None = None,
                 restart_delay_s: float = 1.0) -> None:
        if workers < 2:
            raise ValueError("a supervisor runs 2 or more workers")
        self.command = list(command)
        self.workers = workers
        self.env = dict(os.environ if env is None else env)
        self.restart_delay_s = restart_delay_s
        self._stopping = False
        self._children: list[subprocess.Popen[bytes] | None] = [None] * workers

    def _start(self, index: int, metrics_dir: str) -> subprocess.Popen[bytes]:
        env = dict(self.env, **{WORKER_INDEX_ENV: str(index), WORKER_COUNT_ENV: str(self.workers),
                                METRICS_DIR_ENV: metrics_dir})
        child = subprocess.Popen(self.command, env=env)
        log.info("worker %s started (pid %s)", index, child.pid)
        return child

    def _stop(self, signum: int, _frame: FrameType | None) -> None:
        self._stopping = True

    def run(self) -> int:
        metrics_dir = tempfile.mkdtemp(prefix="pb-relayer-metrics-")
        previous = {sig: signal.signal(sig, self._stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            for index in range(self.workers):
                self._children[index] = self._start(index, metrics_dir)
            while not self._stopping:
                time.sleep(0.2)
                for index, child in enumerate(self._children):
                    if child is not None and child.poll() is not None and not self._stopping:
                        log.error("worker %s exited with %s; restarting it", index, child.returncode)
                        time.sleep(self.restart_delay_s)
                        self._children[index] = self._start(index, metrics_dir)
        finally:
            for child in self._children:
                if child is not None and child.poll() is None:
                    child.terminate()
            deadline = time.time() + 10
            for child in self._children:
                if child is not None:
                    try:
                        child.wait(timeout=max(deadline - time.time(), 0.1))
                    except subprocess.TimeoutExpired:
                        child.kill()
                        child.wait()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            shutil.rmtree(metrics_dir, ignore_errors=True)
        return 0


def worker_command() -> list[str]:
    """The command line that started this process, to start each worker with the same arguments."""
    return [sys.executable, "-m", "protocolbanks.relayer.cli", *sys.argv[1:]]
