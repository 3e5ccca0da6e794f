"""Idempotent deployment of the contracts with Ape, recorded in deployments/<ecosystem>-<network>.json."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from protocolbanks.sdk.deployments import ContractDeployment, DeploymentError, DeploymentRecord

COMPILER = "solc 0.8.28 (solc-js), optimizer 200 runs, via-IR, evm cancun"


@dataclass(frozen=True)
class DeployPlan:
    redeem_window: int = 3600
    with_mock_token: bool = False
    out_dir: Path = Path("deployments")
    dry_run: bool = False


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, check=True).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _reusable(chain: Any, entry: ContractDeployment | None, args: list[Any]) -> bool:
    if entry is None or entry.constructor_args != args:
        return False
    return len(chain.provider.get_code(entry.address)) > 0


def deploy_contracts(plan: DeployPlan, *, account: Any, ecosystem: str, network: str,
                     log: Callable[[str], None] = print) -> DeploymentRecord:
    """Deploys what is missing, reuses what is recorded and live, and writes the record (unless dry-run)."""
    from ape import chain, project  # Ape is only needed here, at deploy time

    path = DeploymentRecord.path_for(plan.out_dir, ecosystem, network)
    try:
        record = DeploymentRecord.load(path)
        if record.chain_id != chain.chain_id:
            log(f"{path} is for chain {record.chain_id}, this is {chain.chain_id}: starting a new record")
            record = DeploymentRecord(ecosystem, network, chain.chain_id, git_commit())
    except DeploymentError:
        record = DeploymentRecord(ecosystem, network, chain.chain_id, git_commit())

    wanted: list[tuple[str, list[Any]]] = [("StreamChannels", [plan.redeem_window])]
    if plan.with_mock_token:
        wanted.append(("MockUSDC", []))
    changed = False
    for name, args in wanted:
        entry = record.contracts.get(name)
        if _reusable(chain, entry, args):
            log(f"reusing {name} at {entry.address}")  # type: ignore[union-attr,unused-ignore]
            continue
        if plan.dry_run:
            log(f"would deploy {name}({', '.join(map(str, args))}) from {account.address}")
            continue
        log(f"deploying {name}({', '.join(map(str, args))}) from {account.address} ...")
        instance = account.deploy(getattr(project, name), *args)
        receipt = instance.creation_metadata.receipt
        record.contracts[name] = ContractDeployment(
            address=instance.address, tx_hash=receipt.txn_hash, block=receipt.block_number,
            constructor_args=args, compiler=COMPILER,
        )
        log(f"deployed {name} at {instance.address} (block {receipt.block_number}, gas {receipt.gas_used:,})")
        changed = True
    if changed:
        record.git_commit = git_commit()
        record.save(path)
        log(f"wrote {path}")
    return record
