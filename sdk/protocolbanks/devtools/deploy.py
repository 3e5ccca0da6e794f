"""Idempotent deployment of the contracts with Ape, recorded in deployments/<ecosystem>-<network>.json."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_utils import keccak
from protocolbanks.sdk.deployments import ContractDeployment, DeploymentError, DeploymentRecord


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


def compiler_settings(project: Any) -> str:
    """The compiler and settings the project builds with (ape-config.yaml), as recorded with a deployment."""
    solidity = project.config.get_config("solidity")
    optimizer = f"optimizer {solidity.optimization_runs:,} runs" if solidity.optimize else "optimizer off"
    return (f"solc {solidity.version} (solc-js), {optimizer}, {'via-IR' if solidity.via_ir else 'legacy'}, "
            f"evm {solidity.evm_version}")


def build_hash(contract_type: Any) -> str:
    """keccak256 of a contract's creation bytecode: the same build deploys the same code."""
    return "0x" + keccak(hexstr=contract_type.deployment_bytecode.bytecode).hex()


def _why_not_reusable(chain: Any, entry: ContractDeployment | None, args: list[Any], build: str) -> str | None:
    """None if the recorded deployment can be reused; else why it cannot."""
    if entry is None:
        return "not deployed yet"
    if entry.constructor_args != args:
        return f"recorded with constructor arguments {entry.constructor_args}, now {args}"
    if len(chain.provider.get_code(entry.address)) == 0:
        return f"no code at the recorded address {entry.address}"
    if entry.build_hash != build:
        return f"the contract at {entry.address} was built from other code ({entry.build_hash or 'unrecorded'})"
    return None


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
    compiler = compiler_settings(project)
    for name, args in wanted:
        entry = record.contracts.get(name)
        container = getattr(project, name)
        build = build_hash(container.contract_type)
        reason = _why_not_reusable(chain, entry, args, build)
        if reason is None:
            log(f"reusing {name} at {entry.address}")  # type: ignore[union-attr,unused-ignore]
            continue
        if entry is not None:
            log(f"{name}: {reason}")
        if plan.dry_run:
            log(f"would deploy {name}({', '.join(map(str, args))}) from {account.address}")
            continue
        log(f"deploying {name}({', '.join(map(str, args))}) from {account.address} ...")
        instance = account.deploy(container, *args)
        receipt = instance.creation_metadata.receipt
        record.contracts[name] = ContractDeployment(
            address=instance.address, tx_hash=receipt.txn_hash, block=receipt.block_number,
            constructor_args=args, compiler=compiler, build_hash=build,
        )
        log(f"deployed {name} at {instance.address} (block {receipt.block_number}, gas {receipt.gas_used:,})")
        changed = True
    if changed:
        record.git_commit = git_commit()
        record.save(path)
        log(f"wrote {path}")
    return record
