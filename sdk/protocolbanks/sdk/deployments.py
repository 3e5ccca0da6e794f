"""Deployment records under `deployments/<ecosystem>-<network>.json`: where the contracts live on a chain.

Written by `ape run deploy`, read by the SDK and the relayer (which never need Ape).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


class DeploymentError(Exception):
    """A deployment record is missing, unreadable or inconsistent."""


@dataclass(frozen=True)
class ContractDeployment:
    address: str
    tx_hash: str
    block: int
    constructor_args: list[Any]
    compiler: str
    build_hash: str = ""  # keccak256 of the creation bytecode deployed (without constructor arguments)


@dataclass
class DeploymentRecord:
    ecosystem: str
    network: str
    chain_id: int
    git_commit: str
    contracts: dict[str, ContractDeployment] = field(default_factory=dict)

    @staticmethod
    def path_for(directory: Path, ecosystem: str, network: str) -> Path:
        return directory / f"{ecosystem}-{network}.json"

    @classmethod
    def load(cls, path: Path) -> DeploymentRecord:
        try:
            raw = json.loads(path.read_text())
            contracts = {name: ContractDeployment(**entry) for name, entry in raw.pop("contracts").items()}
            return cls(contracts=contracts, **raw)
        except FileNotFoundError as exc:
            raise DeploymentError(f"no deployment record at {path}: run `ape run deploy` first") from exc
        except (KeyError, TypeError, ValueError) as exc:
            raise DeploymentError(f"deployment record {path} is malformed: {exc}") from exc

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")
        tmp.replace(path)  # atomic: a crash never leaves half a record

    def address_of(self, name: str) -> str:
        if name not in self.contracts:
            raise DeploymentError(f"{name} is not in the {self.ecosystem}-{self.network} deployment record")
        return self.contracts[name].address
