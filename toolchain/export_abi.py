"""Copies the compiled ABIs the run-time code needs into the SDK package, so it never needs Ape.

Reads Ape's build manifest (.build/__local__.json) and writes sdk/protocolbanks/sdk/abi/<Contract>.json,
only when the content changed (so a clean tree stays clean).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ("StreamChannels", "MockUSDC")


def main() -> int:
    manifest_path = ROOT / ".build" / "__local__.json"
    if not manifest_path.exists():
        print("no build manifest: run `ape compile` first", file=sys.stderr)
        return 1
    types = json.loads(manifest_path.read_text())["contractTypes"]
    out_dir = ROOT / "sdk" / "protocolbanks" / "sdk" / "abi"
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in SHIPPED:
        if name not in types:
            print(f"{name} is missing from the build manifest", file=sys.stderr)
            return 1
        text = json.dumps(types[name]["abi"], indent=1, sort_keys=True) + "\n"
        target = out_dir / f"{name}.json"
        if not target.exists() or target.read_text() != text:
            target.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
