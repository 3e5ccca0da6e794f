"""Relayer intake benchmark: durably accepted vouchers per second over loopback HTTP, latency, CPU per voucher.

The relayer's intake (aiohttp, signature recovery, acceptance rules, SQLite group commit, WAL + synchronous=FULL)
runs as `WORKERS` processes sharing the port (SO_REUSEPORT) and one database, as `relayer run` does with
`workers = 2`; channel snapshots are preloaded (the chain cache is off the hot path by design). wrk (C) drives it
with pre-signed vouchers, one wrk thread per connection, each connection owning its channels (as an agent keeps its
channel on its keep-alive connection). Two ways in:
- single: one voucher per request (an agent posting to the relayer itself);
- batched: POST /v1/vouchers/batch with one voucher of each of the connection's channels per request (a merchant
  gateway forwarding what it accepted locally, which is how the SDK's gateway talks to the relayer).
Each at full load, then paced at half of what full load achieved. Writes bench/results/relayer.json and .md.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
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
CHANNELS, PER_CHANNEL = 400, 300
WORKERS = int(os.environ.get("PB_BENCH_WORKERS", "2"))
SECONDS = 8

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
            host="127.0.0.1", port=int(sys.argv[3]), access_log=None, print=None, reuse_port=True)
'''

LUA = r'''
-- One wrk thread per connection, each owning its own channels (as an agent keeps its channel on its keep-alive
-- connection): a channel's vouchers go out in order on one connection.
local counter = 0
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end
function init(args)
  bodies = {}
  for line in io.lines(os.getenv("PB_BODIES") .. "." .. id) do bodies[#bodies + 1] = line end
  i = 0
  local pause = tonumber(os.getenv("PB_DELAY_MS") or "0")
  if pause > 0 then delay = function() return pause end end  -- a delay hook slows wrk even when it returns 0
end
request = function()
  i = i % #bodies + 1
  return wrk.format("POST", os.getenv("PB_PATH"), {["Content-Type"] = "application/json"}, bodies[i])
end
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


def split_bodies(bodies: Path, connections: int, batched: bool) -> Path:
    """Per-connection request files: channel c belongs to connection c % connections; in order of cumulative."""
    lines = bodies.read_text().splitlines()
    base = bodies.with_name(f"req-{'batch' if batched else 'single'}-{connections}")
    for thread in range(connections):
        mine = [line for index, line in enumerate(lines) if (index % CHANNELS) % connections == thread]
        if batched:
            per_round = len([c for c in range(CHANNELS) if c % connections == thread])
            mine = ['{"vouchers": [' + ",".join(mine[k:k + per_round]) + "]}" for k in range(0, len(mine), per_round)]
        Path(f"{base}.{thread}").write_text("\n".join(mine) + "\n")
    return base


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_wrk(script: Path, requests: Path, path: str, port: int, connections: int, delay_ms: int) -> dict:
    env = dict(os.environ, PB_BODIES=str(requests), PB_DELAY_MS=str(delay_ms), PB_PATH=path)
    proc = subprocess.run(["wrk", f"-t{connections}", f"-c{connections}", f"-d{SECONDS}s", "--latency", "-s",
                           str(script), f"http://127.0.0.1:{port}/"], env=env, capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        raise SystemExit(f"wrk failed: {proc.stderr or proc.stdout}")
    out = proc.stdout

    def ms(label: str) -> float:
        value = re.search(rf"{label}\s+([\d.]+)(us|ms|s)", out)
        assert value, out
        number, unit = float(value.group(1)), value.group(2)
        return number / 1000 if unit == "us" else number * 1000 if unit == "s" else number
    return {"requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
            "p50_ms": ms("50%"), "p99_ms": ms("99%"),
            "non_2xx": int((re.search(r"Non-2xx.*?(\d+)", out) or [0, 0])[1])}


def scenario(work: Path, meta: Path, requests: Path, path: str, connections: int, delay_ms: int, tag: str) -> dict:
    """Starts WORKERS intake processes on a fresh database, drives them with wrk, counts what became durable."""
    db = work / f"{tag}.db"
    migrate = f"from protocolbanks.relayer.store import VoucherStore; VoucherStore('sqlite:///{db}')"
    subprocess.run([sys.executable, "-c", migrate], check=True)  # the schema, once, as the supervisor does
    port = 18791 + len(tag)
    servers = [subprocess.Popen([sys.executable, str(work / "server.py"), str(meta), f"sqlite:///{db}", str(port)])
               for _ in range(WORKERS)]
    try:
        time.sleep(3)
        cpu0 = sum(cpu_seconds(s.pid) for s in servers)
        result = run_wrk(work / "post.lua", requests, path, port, connections, delay_ms)
        cpu1 = sum(cpu_seconds(s.pid) for s in servers)
    finally:
        for server in servers:
            server.kill()
            server.wait()
    stored = sqlite3.connect(db).execute("select count(*) from channel_payments").fetchone()[0]
    return dict(result, accepted_per_s=round(stored / SECONDS), durably_stored=stored,
                cpu_ms_per_voucher=round((cpu1 - cpu0) * 1000 / max(stored, 1), 3))


def half_load(work: Path, meta: Path, requests: Path, path: str, connections: int, full_requests_per_s: float,
              tag: str) -> dict:
    """Paced at half of what full load achieved: each connection pauses between requests; the pause is set from
    a first run's measured latency (rate = connections / (latency + pause)) and the second run is reported."""
    target = full_requests_per_s / 2
    delay = max(round(connections * 1000 / target), 1)
    first = scenario(work, meta, requests, path, connections, delay, f"{tag}-probe")
    latency_ms = max(connections * 1000 / max(first["requests_per_s"], 1) - delay, 0)
    delay = max(round(connections * 1000 / target - latency_ms), 1)
    print(f"  half load: {delay} ms between requests per connection", file=sys.stderr)
    return dict(scenario(work, meta, requests, path, connections, delay, tag), pause_ms=delay,
                target_requests_per_s=round(target))


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
        runs = {}
        for mode, path, connections in (("single", "/v1/vouchers", 64), ("batched", "/v1/vouchers/batch", 16)):
            requests = split_bodies(bodies, connections, mode == "batched")
            print(f"{mode}: full load, {connections} connections, {WORKERS} workers, {SECONDS} s ...",
                  file=sys.stderr)
            full = scenario(work, meta, requests, path, connections, 0, f"{mode}-full")
            half_connections = 16 if mode == "single" else connections
            half_requests = split_bodies(bodies, half_connections, mode == "batched")
            print(f"{mode}: half load, {half_connections} connections ...", file=sys.stderr)
            half = half_load(work, meta, half_requests, path, half_connections, full["requests_per_s"], f"{mode}-half")
            runs[mode] = {"full": full, "half": half, "connections": connections, "half_connections": half_connections,
                          "vouchers_per_request": 1 if mode == "single" else CHANNELS // connections}
    single, batched = runs["single"], runs["batched"]
    result = {
        "accepted_per_s": single["full"]["accepted_per_s"],
        "p50_ms": single["full"]["p50_ms"], "p99_ms": single["full"]["p99_ms"],
        "cpu_ms_per_voucher": single["full"]["cpu_ms_per_voucher"],
        "half_load": {k: single["half"][k] for k in ("accepted_per_s", "p50_ms", "p99_ms")},
        "batched": {"accepted_per_s": batched["full"]["accepted_per_s"], "p50_ms": batched["full"]["p50_ms"],
                    "p99_ms": batched["full"]["p99_ms"], "cpu_ms_per_voucher": batched["full"]["cpu_ms_per_voucher"],
                    "vouchers_per_request": batched["vouchers_per_request"],
                    "half_load": {k: batched["half"][k] for k in ("accepted_per_s", "p50_ms", "p99_ms")}},
        "workers": WORKERS, "signed_vouchers": total, "runs": runs,
        "setup": f"{WORKERS} intake processes (SO_REUSEPORT) on one SQLite database (WAL, synchronous=FULL, group "
                 "commit), coincurve recovery, wrk on loopback on the same 2-core machine",
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "relayer.json").write_text(json.dumps(result, indent=2) + "\n")
    rows = []
    for mode, label in (("single", "one voucher per request"), ("batched", "batched, gateway forwarding")):
        full, half = runs[mode]["full"], runs[mode]["half"]
        rows.append(f"| {label} ({runs[mode]['vouchers_per_request']}/request, {runs[mode]['connections']} "
                    f"connections) | {full['accepted_per_s']:,} | {full['p50_ms']:.1f} / {full['p99_ms']:.1f} | "
                    f"{half['accepted_per_s']:,} | {half['p50_ms']:.1f} / {half['p99_ms']:.1f} | "
                    f"{full['cpu_ms_per_voucher']} |")
    (RESULTS / "relayer.md").write_text(
        "# Relayer intake benchmark\n\n"
        f"{result['setup']}. Latency is per HTTP request. Goal: >= 5,000 durably accepted vouchers/s, p99 < 10 ms "
        "at half load.\n\n"
        "| way in | durable vouchers/s (full load) | p50 / p99 ms (full) | vouchers/s (half load) | p50 / p99 ms "
        "(half) | server CPU ms per voucher |\n|---|---:|---:|---:|---:|---:|\n" + "\n".join(rows) + "\n\n"
        "Peer: the x402 Python SDK's server cycle for its channel vouchers runs ~780/s on one core with coincurve.\n")
    print((RESULTS / "relayer.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
