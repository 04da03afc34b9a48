"""Credentials from a kubeconfig, without a cluster: token files re-read at most once a minute, and exec
credential plugins (real scripts) run, cached until shortly before their credential expires, and
named clearly when they fail."""

from __future__ import annotations

import asyncio
import json
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from moor.cluster.config import ConfigError, ExecToken, IssuedCredential, TokenFile, load_kubeconfig

V1 = "client.authentication.k8s.io/v1"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_token_file_is_re_read_at_most_once_a_minute(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("first\n")
    clock = Clock()
    tokens = TokenFile(path, clock=clock)
    assert await tokens.token() == "first"
    path.write_text("rotated\n")
    clock.now += 59
    assert await tokens.token() == "first", "read less than a minute ago"
    clock.now += 1
    assert await tokens.token() == "rotated"
    path.write_text("rotated again\n")
    tokens.expire()
    assert await tokens.token() == "rotated again", "after a 401 the file is read at once"


async def test_an_unreadable_token_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot read the token file .*missing"):
        await TokenFile(tmp_path / "missing").token()


def kubeconfig_with(tmp_path: Path, user: dict[str, Any], name: str = "kubeconfig") -> Path:
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": "https://203.0.113.7:6443"}}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u", "namespace": "apps"}}],
    }
    path = tmp_path / name
    path.write_text(yaml.safe_dump(document))
    return path


def plugin_script(tmp_path: Path, status: str, *, exit_code: int = 0, stderr: str = "") -> Path:
    """An exec plugin: counts its runs in `runs`, keeps the KUBERNETES_EXEC_INFO it saw, prints `status`."""
    script = tmp_path / "plugin.py"
    script.write_text(
        f"#!{sys.executable}\n"
        + textwrap.dedent(
            f"""
            import datetime, json, os, pathlib, sys
            here = pathlib.Path({str(tmp_path)!r})
            with open(here / "runs", "a") as runs:
                runs.write("run\\n")
            (here / "exec-info.json").write_text(os.environ.get("KUBERNETES_EXEC_INFO", ""))
            soon = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=1)
            status = {status}
            if {stderr!r}:
                print({stderr!r}, file=sys.stderr)
            if {exit_code}:
                sys.exit({exit_code})
            print(json.dumps({{"apiVersion": "{V1}", "kind": "ExecCredential", "status": status}}))
            """
        )
    )
    script.chmod(0o755)
    return script


def runs(tmp_path: Path) -> int:
    path = tmp_path / "runs"
    return len(path.read_text().splitlines()) if path.exists() else 0


async def test_an_exec_plugin_runs_once_and_its_token_is_sent_until_it_expires(tmp_path: Path) -> None:
    plugin_script(tmp_path, '{"token": "exec-token", "expirationTimestamp": soon.isoformat()}')
    user = {"exec": {"apiVersion": V1, "command": "./plugin.py", "interactiveMode": "Never"}}
    credentials = load_kubeconfig(kubeconfig_with(tmp_path, user))
    assert runs(tmp_path) == 1, "run when the kubeconfig is loaded (a relative command is the kubeconfig's)"
    assert credentials.namespace == "apps"
    assert [await credentials.bearer_token() for _ in range(5)] == ["exec-token"] * 5
    assert runs(tmp_path) == 1, "cached while fresh"
    await asyncio.sleep(1.2)
    assert await credentials.bearer_token() == "exec-token"
    assert runs(tmp_path) == 2, "run again once the credential expired"
    info = json.loads((tmp_path / "exec-info.json").read_text())
    assert info == {"apiVersion": V1, "kind": "ExecCredential", "spec": {"interactive": False}}


def test_provide_cluster_info_tells_the_plugin_the_server(tmp_path: Path) -> None:
    script = plugin_script(tmp_path, '{"token": "t"}')
    load_kubeconfig(
        kubeconfig_with(tmp_path, {"exec": {"apiVersion": V1, "command": str(script), "provideClusterInfo": True}})
    )
    info = json.loads((tmp_path / "exec-info.json").read_text())
    assert info["spec"]["cluster"] == {"server": "https://203.0.113.7:6443"}


def test_the_plugin_gets_its_env_and_args(tmp_path: Path) -> None:
    script = tmp_path / "echo.py"
    script.write_text(
        f"#!{sys.executable}\nimport json, os, sys\n"
        f'print(json.dumps({{"apiVersion": "{V1}", "kind": "ExecCredential",'
        ' "status": {"token": os.environ["PROFILE"] + ":" + sys.argv[1]}}))\n'
    )
    script.chmod(0o755)
    section = {
        "apiVersion": V1,
        "command": str(script),
        "args": ["eu-west-1"],
        "env": [{"name": "PROFILE", "value": "prod"}],
    }
    credentials = load_kubeconfig(kubeconfig_with(tmp_path, {"exec": section}))
    assert asyncio.run(credentials.bearer_token()) == "prod:eu-west-1"


def test_a_client_certificate_from_a_plugin_feeds_tls(tmp_path: Path) -> None:
    status = '{"clientCertificateData": "-----BEGIN CERTIFICATE-----", "clientKeyData": "-----BEGIN KEY-----"}'
    script = plugin_script(tmp_path, status)
    credentials = load_kubeconfig(kubeconfig_with(tmp_path, {"exec": {"apiVersion": V1, "command": str(script)}}))
    assert credentials.client_cert_pem == b"-----BEGIN CERTIFICATE-----"
    assert credentials.client_key_pem == b"-----BEGIN KEY-----"
    assert credentials.token_source is None


def test_a_failing_plugin_is_named_with_its_stderr(tmp_path: Path) -> None:
    script = plugin_script(tmp_path, "{}", exit_code=1, stderr="the SSO session has expired; run aws sso login")
    path = kubeconfig_with(tmp_path, {"exec": {"apiVersion": V1, "command": str(script)}})
    with pytest.raises(ConfigError) as caught:
        load_kubeconfig(path)
    assert str(caught.value) == (
        f"kubeconfig {path}: exec plugin `plugin.py` failed: exit 1: the SSO session has expired; run aws sso login"
    )


@pytest.mark.parametrize(
    ("status", "problem"),
    [
        ("{}", "printed neither a token nor a client certificate"),
        ('{"clientCertificateData": "c"}', "a client certificate without its key"),
        ('{"token": "t", "expirationTimestamp": "tomorrow"}', "a bad expirationTimestamp"),
    ],
)
def test_a_plugins_bad_answer_is_named(tmp_path: Path, status: str, problem: str) -> None:
    script = plugin_script(tmp_path, status)
    with pytest.raises(ConfigError, match=f"exec plugin `plugin.py` failed: .*{problem}"):
        load_kubeconfig(kubeconfig_with(tmp_path, {"exec": {"apiVersion": V1, "command": str(script)}}))


def test_a_missing_plugin_shows_its_install_hint(tmp_path: Path) -> None:
    section = {"apiVersion": V1, "command": "moor-no-such-plugin", "installHint": "install it from example.com"}
    with pytest.raises(ConfigError, match="exec plugin `moor-no-such-plugin` failed: not found: install it from"):
        load_kubeconfig(kubeconfig_with(tmp_path, {"exec": section}))


@pytest.mark.parametrize(
    ("user", "problem"),
    [
        ({"exec": {"apiVersion": "client.authentication.k8s.io/v1alpha1", "command": "x"}}, "apiVersion"),
        ({"exec": {"apiVersion": V1, "command": "x", "interactiveMode": "Always"}}, "needs a terminal"),
        ({"exec": {"apiVersion": V1}}, "names no command"),
        ({"exec": {"apiVersion": V1, "command": "x", "env": [{"value": "v"}]}}, "env must be a list of name/value"),
        ({"auth-provider": {"name": "gcp"}}, "auth-provider plugin, which is not supported"),
    ],
)
def test_what_moor_cannot_run_is_refused_before_running_anything(
    tmp_path: Path, user: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ConfigError, match=problem):
        load_kubeconfig(kubeconfig_with(tmp_path, user))


def test_a_credential_is_refreshed_a_little_before_it_expires() -> None:
    issued = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
    hour = IssuedCredential("t", None, None, issued=issued, expires=issued + timedelta(hours=1))
    assert hour.fresh(issued + timedelta(minutes=58, seconds=59))
    assert not hour.fresh(issued + timedelta(minutes=59)), "a minute before the end"
    short = IssuedCredential("t", None, None, issued=issued, expires=issued + timedelta(seconds=100))
    assert short.fresh(issued + timedelta(seconds=79)) and not short.fresh(issued + timedelta(seconds=80))
    assert IssuedCredential("t", None, None, issued=issued).fresh(issued + timedelta(days=365))


async def test_expire_makes_the_next_request_run_the_plugin(tmp_path: Path) -> None:
    script = plugin_script(tmp_path, '{"token": "t"}')
    credentials = load_kubeconfig(kubeconfig_with(tmp_path, {"exec": {"apiVersion": V1, "command": str(script)}}))
    assert isinstance(credentials.token_source, ExecToken)
    credentials.token_source.expire()
    assert await credentials.bearer_token() == "t"
    assert runs(tmp_path) == 2
