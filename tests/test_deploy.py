"""The deploy script's core: deploys once, records, and reuses on the next run."""

import dataclasses

from protocolbanks.devtools.deploy import DeployPlan, deploy_contracts
from protocolbanks.sdk.deployments import DeploymentRecord


def test_deploy__records_then_reuses(tmp_path, deployer, chain):
    plan = DeployPlan(redeem_window=1234, with_mock_token=True, out_dir=tmp_path)
    lines: list[str] = []
    first = deploy_contracts(plan, account=deployer, ecosystem="ethereum", network="local", log=lines.append)
    path = DeploymentRecord.path_for(tmp_path, "ethereum", "local")
    saved = DeploymentRecord.load(path)
    assert saved.contracts["StreamChannels"].constructor_args == [1234]
    assert saved.chain_id == chain.chain_id and set(saved.contracts) == {"StreamChannels", "MockUSDC"}
    nonce = deployer.nonce
    second = deploy_contracts(plan, account=deployer, ecosystem="ethereum", network="local", log=lines.append)
    assert deployer.nonce == nonce  # nothing sent
    assert second.contracts == first.contracts
    assert any(line.startswith("reusing StreamChannels") for line in lines)


def test_deploy__changed_arguments__redeploys(tmp_path, deployer):
    deploy_contracts(DeployPlan(redeem_window=100, out_dir=tmp_path), account=deployer, ecosystem="ethereum",
                     network="local", log=lambda _: None)
    first = DeploymentRecord.load(DeploymentRecord.path_for(tmp_path, "ethereum", "local"))
    deploy_contracts(DeployPlan(redeem_window=200, out_dir=tmp_path), account=deployer, ecosystem="ethereum",
                     network="local", log=lambda _: None)
    second = DeploymentRecord.load(DeploymentRecord.path_for(tmp_path, "ethereum", "local"))
    assert first.address_of("StreamChannels") != second.address_of("StreamChannels")


def test_deploy__record_of_other_code__redeploys_and_says_why(tmp_path, deployer):
    plan = DeployPlan(redeem_window=100, out_dir=tmp_path)
    deploy_contracts(plan, account=deployer, ecosystem="ethereum", network="local", log=lambda _: None)
    path = DeploymentRecord.path_for(tmp_path, "ethereum", "local")
    first = DeploymentRecord.load(path)
    entry = first.contracts["StreamChannels"]
    assert entry.build_hash.startswith("0x") and len(entry.build_hash) == 66
    assert "1,000,000 runs" in entry.compiler and "via-IR" in entry.compiler  # what ape-config.yaml builds with
    # a record written by an older build (or before builds were recorded) is not reused for this one
    first.contracts["StreamChannels"] = dataclasses.replace(entry, build_hash="")
    first.save(path)
    lines: list[str] = []
    deploy_contracts(plan, account=deployer, ecosystem="ethereum", network="local", log=lines.append)
    second = DeploymentRecord.load(path)
    assert second.address_of("StreamChannels") != entry.address
    assert second.contracts["StreamChannels"].build_hash == entry.build_hash
    assert any("was built from other code (unrecorded)" in line for line in lines)


def test_deploy__dry_run__sends_and_writes_nothing(tmp_path, deployer):
    nonce = deployer.nonce
    record = deploy_contracts(DeployPlan(out_dir=tmp_path, dry_run=True), account=deployer, ecosystem="ethereum",
                              network="local", log=lambda _: None)
    assert record.contracts == {} and deployer.nonce == nonce and not list(tmp_path.iterdir())
