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
