"""Relayer intake benchmark: durably accepted vouchers per second over loopback HTTP, latency, CPU per voucher.

The relayer's intake (aiohttp, signature recovery, acceptance rules, SQLite group commit) runs in its own process
with channel snapshots preloaded (the chain cache is off the hot path by design); wrk (C) drives it with
pre-signed vouchers over many channels so the load generator costs little CPU. Writes bench/results/relayer.json
and relayer.md.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from eth_account import Account
from protocolbanks.sdk import ChannelDomain, LaneTerms, Voucher

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
DOMAIN = ChannelDomain(31337, "0x5FbDB2315678afecb367f032d93F642f64180aa3")
TERMS = LaneTerms(2**80 - 1, 0, 0, 2**39, 1)
CHANNELS, PER_CHANNEL = 400, 150

SERVER = r'''
import json, sys
from aiohttp import web
from protocolbanks.relayer.http_api import build_app
from protocolbanks.relayer.intake import VoucherIntake
from protocolbanks.relayer.store import VoucherStore
from protocolbanks.sdk import ChannelDomain, LaneTerms
from protocolbanks.sdk.acceptance import ChannelSnapshot
meta = json.load(open(sys.argv[1]))
terms = LaneTerms.unpack(int(meta["terms"], 16))
snaps = {bytes.fromhex(c): ChannelSnapshot(bytes.fromhex(c), "0x" + "11" * 20, "0x" + "22" * 20, "0x" + "33" * 20,
         k, terms, deposit=10**15, claimed=0) for c, k in meta["channels"]}
store = VoucherStore(sys.argv[2])
web.run_app(build_app(VoucherIntake(store, snaps.get, ChannelDomain(31337, meta["contract"]))),
            host="127.0.0.1", port=int(sys.argv[3]), access_log=None, print=None)
'''

LUA = r'''
local bodies = {}
for line in io.lines(os.getenv("PB_BODIES")) do bodies[#bodies + 1] = line end
local i = 0
local pause = tonumber(os.getenv("PB_DELAY_MS") or "0")
request = function()
  i = i % #bodies + 1
  return wrk.format("POST", "/v1/vouchers", {["Content-Type"] = "application/json"}, bodies[i])
end
delay = function() return pause end
'''


def make_vouchers(work: Path) -> tuple[Path, Path, int]:
    keys = [(os.urandom(32), Account.create()) for _ in range(CHANNELS)]
    lines = []
    for n in range(1, PER_CHANNEL + 1):
        for cid, key in keys:
            sig = Voucher(cid, 1, n * 1000).sign(DOMAIN, key.key)
            lines.append(json.dumps({"channelId": "0x" + cid.hex(), "cumulativeAmount": str(n * 1000),
                                     "terms": hex(TERMS.pack()), "r": "0x" + sig.r.hex(), "vs": "0x" + sig.vs.hex()}))
    bodies, meta = work / "bodies.txt", work / "meta.json"
    bodies.write_text("\n".join(lines))
    meta.write_text(json.dumps({"terms": hex(TERMS.pack()), "contract": DOMAIN.verifying_contract,
                                "channels": [(c.hex(), k.address) for c, k in keys]}))
    return bodies, meta, len(lines)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_wrk(script: Path, bodies: Path, port: int, seconds: int, connections: int, delay_ms: int) -> dict:
    env = dict(os.environ, PB_BODIES=str(bodies), PB_DELAY_MS=str(delay_ms))
    proc = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script),
                           f"http://127.0.0.1:{port}/"], env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"wrk failed: {proc.stderr or proc.stdout}")
    out = proc.stdout
    def ms(label: str) -> float:
        value = re.search(rf"{label}\s+([\d.]+)(us|ms|s)", out)
        assert value, out
        number, unit = float(value.group(1)), value.group(2)
        return number / 1000 if unit == "us" else number * 1000 if unit == "s" else number
    return {"requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "p50_ms": ms("50%"), "p99_ms": ms("99%"), "non_2xx": int((re.search(r"Non-2xx.*?(\d+)", out) or [0, 0])[1])}


def main() -> int:
    if shutil.which("wrk") is None:
        print("wrk is needed (apt-get install wrk); bench/run installs it", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        print(f"signing {CHANNELS * PER_CHANNEL:,} vouchers over {CHANNELS} channels ...", file=sys.stderr)
        bodies, meta, total = make_vouchers(work)
        (work / "server.py").write_text(SERVER)
        (work / "post.lua").write_text(LUA)
        db = work / "relayer.db"
        port = 18791
        server = subprocess.Popen([sys.executable, str(work / "server.py"), str(meta), f"sqlite:///{db}", str(port)])
        try:
            time.sleep(3)
            cpu0 = cpu_seconds(server.pid)
            print("full load, 64 connections, 10 s ...", file=sys.stderr)
            full = run_wrk(work / "post.lua", bodies, port, 10, 64, 0)
            cpu1 = cpu_seconds(server.pid)
        finally:
            server.kill()
            server.wait()
        import sqlite3
        stored = sqlite3.connect(db).execute("select count(*) from channel_payments").fetchone()[0]
        # half load, on a fresh database and port: each of 8 connections paces itself
        port += 1
        server = subprocess.Popen([sys.executable, str(work / "server.py"), str(meta),
                                   f"sqlite:///{work / 'relayer-half.db'}", str(port)])
        try:
            time.sleep(3)
            delay = max(int(8 * 1000 / max(full["requests_per_s"] / 2, 1)), 1)
            print(f"half load: 8 connections, {delay} ms between requests, 10 s ...", file=sys.stderr)
            half = run_wrk(work / "post.lua", bodies, port, 10, 8, delay)
        finally:
            server.kill()
            server.wait()
    accepted_per_s = stored / 10
    result = {
        "accepted_per_s": round(accepted_per_s), "p50_ms": full["p50_ms"], "p99_ms": full["p99_ms"],
        "half_load": {"requests_per_s": half["requests_per_s"], "p50_ms": half["p50_ms"], "p99_ms": half["p99_ms"]},
        "cpu_ms_per_voucher": round((cpu1 - cpu0) * 1000 / max(stored, 1), 3),
        "answered_per_s": full["requests_per_s"], "durably_stored": stored, "signed_vouchers": total,
        "setup": "1 aiohttp process, SQLite WAL synchronous=FULL group commit, coincurve recovery, wrk on loopback",
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "relayer.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "relayer.md").write_text(
        "# Relayer intake benchmark\n\n"
        f"{result['setup']}; 2-core machine, load generator on the same machine.\n\n"
        "| measure | value | goal |\n|---|---:|---:|\n"
        f"| durably accepted vouchers/s (full load) | {result['accepted_per_s']:,} | >= 5,000 |\n"
        f"| p50 / p99 latency at full load (ms) | {full['p50_ms']:.1f} / {full['p99_ms']:.1f} | |\n"
        f"| p50 / p99 latency at half load (ms) | {half['p50_ms']:.1f} / {half['p99_ms']:.1f} | p99 < 10 |\n"
        f"| server CPU per voucher (ms) | {result['cpu_ms_per_voucher']} | |\n\n"
        "Peer: the x402 Python SDK's server cycle for its channel vouchers runs ~780/s on one core with coincurve.\n")
    print((RESULTS / "relayer.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
