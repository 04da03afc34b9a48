"""`moor run`'s webhook flags: checked before anything connects, with one clear sentence when wrong."""

from __future__ import annotations

from click.testing import CliRunner

from moor.cli.main import cli


def test_the_flags_are_documented_in_help() -> None:
    result = CliRunner().invoke(cli, ["run", "--help"])
    assert result.exit_code == 0
    for flag in ("--webhook-port", "--webhook-address", "--webhook-secret"):
        assert flag in result.output


def test_a_secret_that_is_not_namespace_slash_name_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["run", "--webhook-port", "9292", "--webhook-secret", "a/b/c"])
    assert result.exit_code == 2
    assert "Invalid value for --webhook-secret: 'a/b/c' is not NAMESPACE/NAME or NAME of a Secret" in result.output


def test_a_port_out_of_range_from_the_environment_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["run"], env={"MOOR_WEBHOOK_PORT": "70000"})
    assert result.exit_code == 2
    assert "--webhook-port" in result.output
