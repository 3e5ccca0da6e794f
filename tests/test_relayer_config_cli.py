"""The relayer's configuration and CLI: file plus environment, clear errors instead of tracebacks."""

from click.testing import CliRunner
from protocolbanks.relayer.cli import main

GOOD = 'contract = "0x5FbDB2315678afecb367f032d93F642f64180aa3"\npayee = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"\n'


def test_check_config__environment_overrides_file(tmp_path, monkeypatch):
    path = tmp_path / "relayer.toml"
    path.write_text(GOOD + "listen_port = 8000\n[settlement]\nthreshold = 5\n")
    monkeypatch.setenv("PB_RELAYER_LISTEN_PORT", "9001")
    monkeypatch.setenv("PB_RELAYER_SETTLEMENT__INTERVAL_S", "60")
    result = CliRunner().invoke(main, ["relayer", "check-config", "--config", str(path)])
    assert result.exit_code == 0, result.output
    assert '"listen_port": 9001' in result.output and '"threshold": 5' in result.output
    assert '"interval_s": 60' in result.output


def test_check_config__bad_values__one_clear_line(tmp_path):
    path = tmp_path / "relayer.toml"
    path.write_text('contract = "nope"\npayee = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"\n[settlement]\n'
                    'threshold = -1\n')
    result = CliRunner().invoke(main, ["relayer", "check-config", "--config", str(path)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "contract" in result.output and "settlement.threshold" in result.output


def test_check_config__not_toml__clear_error(tmp_path):
    path = tmp_path / "relayer.toml"
    path.write_text("this is = = not toml")
    result = CliRunner().invoke(main, ["relayer", "check-config", "--config", str(path)])
    assert result.exit_code == 1 and "cannot read configuration" in result.output


def test_run__unreachable_rpc__clear_error(tmp_path):
    path = tmp_path / "relayer.toml"
    path.write_text(GOOD + 'rpc_url = "http://127.0.0.1:9"\n')
    result = CliRunner().invoke(main, ["relayer", "run", "--config", str(path)])
    assert result.exit_code == 1 and "cannot reach the RPC at http://127.0.0.1:9" in result.output


def test_check_config__never_prints_secrets(tmp_path, monkeypatch):
    path = tmp_path / "relayer.toml"
    path.write_text(GOOD + '[notify_telegram]\nbot_token = "123:very-secret"\nchat_id = "5"\n')
    monkeypatch.setenv("PB_RELAYER_PAYEE_PRIVATE_KEY", "0x" + "ab" * 32)
    result = CliRunner().invoke(main, ["relayer", "check-config", "--config", str(path)])
    assert result.exit_code == 0 and "very-secret" not in result.output and "abab" not in result.output


def test_inspection_commands__show_channels_settlements_and_events(tmp_path):
    from protocolbanks.relayer.store import AcceptedVoucher, VoucherStore
    from protocolbanks.sdk.acceptance import PeriodUsage

    db = tmp_path / "relayer.db"
    store = VoucherStore(f"sqlite:///{db}")
    store.append([AcceptedVoucher(b"\x01" * 32, "0xPayer", "0xPayee", "0xToken", "0xKey", 1, 2_500_000, 2_500_000,
                                  0, b"\x00" * 32, b"\x00" * 32, 1_000, PeriodUsage())])
    store.close()
    path = tmp_path / "relayer.toml"
    path.write_text(GOOD + f'database_url = "sqlite:///{db}"\n')
    runner = CliRunner()
    result = runner.invoke(main, ["relayer", "channels", "--pending", "--config", str(path)])
    assert result.exit_code == 0 and '"unsettled": "2500000"' in result.output
    for command in ("settlements", "sentinel-events"):
        result = runner.invoke(main, ["relayer", command, "--config", str(path)])
        assert result.exit_code == 0 and result.output.strip() == "[]"
