"""`moor run`'s limits on renderers and API requests: documented, and checked before anything connects."""

from __future__ import annotations

from click.testing import CliRunner

from moor.cli.main import cli


def test_the_flags_are_documented_in_help() -> None:
    result = CliRunner().invoke(cli, ["run", "--help"])
    assert result.exit_code == 0
    for flag in ("--max-render-memory", "--max-concurrent-renders", "--request-timeout"):
        assert flag in result.output
    assert "[default: 1Gi]" in result.output


def test_a_memory_limit_that_is_not_a_size_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["run", "--max-render-memory", "lots"])
    assert result.exit_code == 2
    assert "Invalid value for --max-render-memory: 'lots' is not a size" in result.output


def test_no_renders_at_all_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["run"], env={"MOOR_MAX_CONCURRENT_RENDERS": "0"})
    assert result.exit_code == 2
    assert "--max-concurrent-renders" in result.output


def test_a_request_timeout_under_a_second_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["run", "--request-timeout", "0.1"])
    assert result.exit_code == 2
    assert "--request-timeout" in result.output


def test_the_dashboard_flags_are_documented_and_checked() -> None:
    result = CliRunner().invoke(cli, ["run", "--help"])
    assert "--ui-port" in result.output and "--ui-address" in result.output
    refused = CliRunner().invoke(cli, ["run", "--ui-port", "70000"])
    assert refused.exit_code == 2 and "--ui-port" in refused.output


def test_moor_ui_is_a_command_with_loopback_by_default() -> None:
    result = CliRunner().invoke(cli, ["ui", "--help"])
    assert result.exit_code == 0
    assert "127.0.0.1]" in result.output and "--open / --no-open" in result.output
