"""Runs slither over contracts/ with the solc-js stand-in and fails on any high or medium finding that is not
triaged in docs/security.md (each triaged finding is listed there under its detector name with the reason).

Low and informational findings are printed as a summary only.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TRIAGE_DOC = ROOT / "docs" / "security.md"
SETTINGS = {"viaIR": True, "optimizer": {"enabled": True, "runs": 200}, "evmVersion": "cancun"}


def triaged_detectors() -> set[str]:
    """Detector names listed as `- slither:<detector>` in docs/security.md."""
    if not TRIAGE_DOC.exists():
        return set()
    return set(re.findall(r"slither:([a-z0-9-]+)", TRIAGE_DOC.read_text()))


def run() -> dict:
    env = dict(os.environ, PB_SOLC_EXTRA_SETTINGS=json.dumps(SETTINGS))
    with tempfile.TemporaryDirectory() as work:
        out = Path(work) / "slither.json"
        cmd = [
            "slither", str(ROOT / "contracts"),
            "--solc-standard-json", "--solc", str(ROOT / ".tools" / "bin" / "solc"),
            "--solc-remaps", f"@openzeppelin/contracts/={ROOT}/node_modules/@openzeppelin/contracts/",
            "--exclude-dependencies", "--filter-paths", r"node_modules|contracts/test|\.cache",
            "--json", str(out),
        ]
        proc = subprocess.run(cmd, check=False, cwd=work, env=env, capture_output=True, text=True)
        if not out.exists():
            sys.stderr.write(proc.stderr[-4000:])
            raise SystemExit("slither did not produce a report")
        return json.loads(out.read_text())


def main() -> int:
    report = run()
    if not report.get("success"):
        print(report.get("error"), file=sys.stderr)
        return 1
    findings = report.get("results", {}).get("detectors", [])
    triaged = triaged_detectors()
    serious = [f for f in findings if f["impact"] in ("High", "Medium")]
    untriaged = [f for f in serious if f["check"] not in triaged]
    counts = Counter(f["impact"] for f in findings)
    print(f"slither: {len(findings)} findings "
          f"({', '.join(f'{k}: {v}' for k, v in sorted(counts.items()))}); "
          f"high/medium triaged in docs/security.md: {len(serious) - len(untriaged)}, untriaged: {len(untriaged)}")
    for finding in untriaged:
        print(f"  UNTRIAGED {finding['impact']} {finding['check']}: {finding['description'].strip()}")
    return 1 if untriaged else 0


if __name__ == "__main__":
    sys.exit(main())
