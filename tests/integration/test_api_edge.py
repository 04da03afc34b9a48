"""The API edge against a real API server that misbehaves (the fault proxy in front of it) and a real
peer that garbles its answers: every failure leaves the client as a MoorError of the class that names
it, requests safe to repeat are retried (after the server's Retry-After), the others are sent once,
and exec credential plugins authenticate `moor` as a ServiceAccount."""

from __future__ import annotations

import asyncio
import base64
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from moor import binaries
from moor.cluster.client import APPLY_PATCH, KubeClient
from moor.cluster.config import Credentials, load_kubeconfig
from moor.cluster.errors import (
    ApiTimeout,
    ApiUnreachable,
    MalformedResponse,
    NotFound,
    ServerError,
    TooManyRequests,
    Unauthorized,
)
from moor.devcluster import ClusterInfo
from moor.errors import MoorError
from moor.retry import RetryPolicy
from tests.support.cluster_fixtures import Kubectl
from tests.support.fault_proxy import FaultProxy
from tests.support.moor_fixtures import free_port, moor_cli

DEFAULT_NS = "/api/v1/namespaces/default"
CONFIGMAPS = "/api/v1/namespaces/default/configmaps"


@pytest.fixture
async def proxied(fault_proxy: FaultProxy) -> AsyncIterator[KubeClient]:
    """A client through the fault proxy, with a 1 s request limit so that stalls become timeouts quickly."""
    async with KubeClient(load_kubeconfig(fault_proxy.kubeconfig), request_timeout=1) as client:
        yield client


def config_map(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default"}}


async def apply(client: KubeClient, name: str) -> Any:
    return await client.request(
        "apply",
        "PATCH",
        f"{CONFIGMAPS}/{name}",
        params={"fieldManager": "moor-test"},
        body=config_map(name),
        content_type=APPLY_PATCH,
    )


async def create(client: KubeClient, name: str) -> Any:
    return await client.request("create", "POST", CONFIGMAPS, body=config_map(name))


async def exists(client: KubeClient, name: str) -> bool:
    try:
        await client.request("get", "GET", f"{CONFIGMAPS}/{name}")
    except NotFound:
        return False
    return True


# Timeouts ---------------------------------------------------------------------------------------


async def test_a_stalled_read_is_tried_again_then_becomes_api_timeout(
    fault_proxy: FaultProxy, proxied: KubeClient
) -> None:
    stall = fault_proxy.stall(f"^{DEFAULT_NS}$", seconds=5)
    with pytest.raises(ApiTimeout) as caught:
        await proxied.request("get", "GET", DEFAULT_NS)
    assert str(caught.value) == (f"get {DEFAULT_NS}: no answer from the API server at {fault_proxy.url} within 1 s")
    assert caught.value.limit == 1
    assert stall.hits == proxied.retry.attempts == proxied.requests["get"] == 4


async def test_a_stalled_create_is_sent_once(fault_proxy: FaultProxy, proxied: KubeClient) -> None:
    """Its outcome is unknown (the server may have done it): sending it again could do it twice."""
    stall = fault_proxy.stall(f"^{CONFIGMAPS}$", seconds=2, method="POST")
    with pytest.raises(ApiTimeout):
        await create(proxied, "stalled-create")
    assert stall.hits == 1 and proxied.requests["create"] == 1


# Throttling and unavailability ------------------------------------------------------------------


async def test_429_is_retried_after_retry_after_then_succeeds(fault_proxy: FaultProxy, proxied: KubeClient) -> None:
    throttle = fault_proxy.respond(429, f"^{DEFAULT_NS}$", headers={"Retry-After": "2"}, times=1)
    started = time.monotonic()
    namespace = await proxied.request("get", "GET", DEFAULT_NS)
    waited = time.monotonic() - started
    assert namespace["metadata"]["name"] == "default"
    assert throttle.hits == 1 and proxied.requests["get"] == 2
    assert 2 <= waited < 20, f"waited {waited:.1f} s: the server's 2 s, not the policy's 0.2 s"


async def test_429_is_retried_even_for_a_create(fault_proxy: FaultProxy, proxied: KubeClient) -> None:
    throttle = fault_proxy.respond(429, f"^{CONFIGMAPS}$", method="POST", headers={"Retry-After": "1"}, times=1)
    created = await create(proxied, "throttled-create")
    assert created["metadata"]["name"] == "throttled-create"
    assert throttle.hits == 1 and proxied.requests["create"] == 2


async def test_503_is_retried_for_an_apply(fault_proxy: FaultProxy, proxied: KubeClient) -> None:
    unavailable = fault_proxy.respond(503, f"^{CONFIGMAPS}/applied$", method="PATCH", times=2)
    applied = await apply(proxied, "applied")
    assert applied["metadata"]["name"] == "applied"
    assert unavailable.hits == 2 and proxied.requests["apply"] == 3


async def test_503_that_lasts_becomes_server_error(fault_proxy: FaultProxy, proxied: KubeClient) -> None:
    unavailable = fault_proxy.respond(503, f"^{DEFAULT_NS}$", message="etcd is sulking")
    with pytest.raises(ServerError) as caught:
        await proxied.request("get", "GET", DEFAULT_NS)
    assert caught.value.status == 503 and str(caught.value) == "etcd is sulking"
    assert unavailable.hits == 4


async def test_a_429_that_lasts_becomes_too_many_requests(fault_proxy: FaultProxy, proxied: KubeClient) -> None:
    fault_proxy.respond(429, f"^{CONFIGMAPS}$", method="POST", headers={"Retry-After": "1"})
    with pytest.raises(TooManyRequests) as caught:
        await create(proxied, "never")
    assert caught.value.retry_after == 1


async def test_503_on_a_create_is_not_retried(fault_proxy: FaultProxy, proxied: KubeClient) -> None:
    unavailable = fault_proxy.respond(503, f"^{CONFIGMAPS}$", method="POST")
    with pytest.raises(ServerError):
        await create(proxied, "unavailable-create")
    assert unavailable.hits == 1


# Lost connections -------------------------------------------------------------------------------


async def test_a_reset_connection_is_retried_for_an_apply(fault_proxy: FaultProxy, proxied: KubeClient) -> None:
    reset = fault_proxy.reset(f"^{CONFIGMAPS}/after-reset$", method="PATCH", times=2)
    applied = await apply(proxied, "after-reset")
    assert applied["metadata"]["name"] == "after-reset"
    assert reset.hits == 2


async def test_a_reset_create_becomes_api_unreachable(fault_proxy: FaultProxy, proxied: KubeClient) -> None:
    reset = fault_proxy.reset(f"^{CONFIGMAPS}$", method="POST")
    with pytest.raises(ApiUnreachable) as caught:
        await create(proxied, "reset-create")
    assert not isinstance(caught.value, ApiTimeout)
    assert str(caught.value).startswith(f"create {CONFIGMAPS}: cannot reach the API server at {fault_proxy.url}")
    assert reset.hits == 1


async def test_refused_connections_become_api_unreachable(fault_proxy: FaultProxy, proxied: KubeClient) -> None:
    fault_proxy.refuse()
    with pytest.raises(ApiUnreachable, match="cannot reach the API server"):
        await proxied.request("get", "GET", DEFAULT_NS)
    assert proxied.requests["get"] == 4


async def test_a_read_recovers_as_soon_as_the_server_answers_again(fault_proxy: FaultProxy) -> None:
    patient = RetryPolicy(attempts=8, first_delay=0.5, max_delay=2, jitter=0.5, budget=60)
    async with KubeClient(load_kubeconfig(fault_proxy.kubeconfig), retry=patient) as client:
        fault_proxy.refuse()
        reading = asyncio.create_task(client.request("get", "GET", DEFAULT_NS))
        await asyncio.sleep(0.5)
        await asyncio.to_thread(fault_proxy.accept)
        namespace = await reading
    assert namespace["metadata"]["name"] == "default"
    assert client.requests["get"] >= 2


# Watches ----------------------------------------------------------------------------------------


async def test_a_dropped_watch_ends_or_raises_api_unreachable(fault_proxy: FaultProxy, proxied: KubeClient) -> None:
    listed = await proxied.request("list", "GET", "/api/v1/namespaces")
    params = {"watch": "true", "resourceVersion": "0", "timeoutSeconds": "5"}
    events = proxied.stream("/api/v1/namespaces", params)
    first = await anext(events)
    assert first["type"] == "ADDED" and listed["items"]
    assert await asyncio.to_thread(fault_proxy.drop_watches) == 1
    try:
        async for _ in events:
            pass
    except ApiUnreachable as error:
        assert str(error).startswith(f"watch /api/v1/namespaces: cannot reach the API server at {fault_proxy.url}")


async def test_a_refused_watch_is_translated(fault_proxy: FaultProxy, proxied: KubeClient) -> None:
    fault_proxy.respond(503, "^/api/v1/namespaces$", watch=True)
    with pytest.raises(ServerError):
        await anext(proxied.stream("/api/v1/namespaces", {"watch": "true"}))
    fault_proxy.refuse()
    with pytest.raises(ApiUnreachable):
        await anext(proxied.stream("/api/v1/namespaces", {"watch": "true"}))


# A peer that garbles its answers ----------------------------------------------------------------


@pytest.fixture
async def garbling_peer() -> AsyncIterator[str]:
    async def garbled(request: web.Request) -> web.StreamResponse:
        if request.query.get("watch") == "true":
            response = web.StreamResponse()
            await response.prepare(request)
            await response.write(b'{"type": "ADDED", "object": {}}\n{"type": "MODIF\n')
            await response.write_eof()
            return response
        return web.Response(body=b'{"kind": "Namespace", "metadata": {"na', content_type="application/json")

    app = web.Application()
    app.router.add_get("/{tail:.*}", garbled)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def test_a_garbled_body_becomes_malformed_response(garbling_peer: str) -> None:
    async with KubeClient(Credentials(server=garbling_peer)) as client:
        with pytest.raises(MalformedResponse) as caught:
            await client.request("get", "GET", DEFAULT_NS)
        assert caught.value.status == 200
        assert str(caught.value).startswith(f"get {DEFAULT_NS}: the API server's answer is not valid JSON")
        events = client.stream("/api/v1/namespaces", {"watch": "true"})
        assert (await anext(events))["type"] == "ADDED"
        with pytest.raises(MalformedResponse):
            await anext(events)


@pytest.mark.parametrize("fault", ["stall", "reset", "500", "freeze", "refuse"])
async def test_nothing_but_moor_errors_leave_the_client(
    fault_proxy: FaultProxy, proxied: KubeClient, fault: str
) -> None:
    """Each way the network fails raises a MoorError (never an aiohttp, asyncio or socket exception)."""
    inject = {
        "stall": lambda: fault_proxy.stall(".", seconds=3),
        "reset": lambda: fault_proxy.reset("."),
        "500": lambda: fault_proxy.respond(500, "."),
        "freeze": fault_proxy.freeze,
        "refuse": fault_proxy.refuse,
    }
    inject[fault]()
    try:
        with pytest.raises(MoorError):
            await proxied.request("list", "GET", "/api/v1/namespaces")
        with pytest.raises(MoorError):
            await create(proxied, f"never-{fault}")
        with pytest.raises(MoorError):
            await anext(proxied.stream("/api/v1/namespaces", {"watch": "true", "timeoutSeconds": "2"}))
    finally:
        fault_proxy.thaw()


# Exec credential plugins ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def service_account_token(private_cluster: ClusterInfo) -> str:
    kubectl = Kubectl(binaries.locate("kubectl"), private_cluster.kubeconfig)
    kubectl("create", "serviceaccount", "exec-user", "-n", "default")
    kubectl(
        "create",
        "clusterrolebinding",
        "exec-user-admin",
        "--clusterrole=cluster-admin",
        "--serviceaccount=default:exec-user",
    )
    return kubectl("create", "token", "exec-user", "-n", "default", "--duration=1h").stdout.strip()


def exec_kubeconfig(cluster: ClusterInfo, directory: Path, script: str) -> Path:
    """A kubeconfig whose user is the exec plugin `script` (Python, run by this interpreter)."""
    plugin = directory / "plugin.py"
    plugin.write_text(textwrap.dedent(script))
    admin = load_kubeconfig(cluster.kubeconfig)
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "exec",
        "clusters": [
            {
                "name": "local",
                "cluster": {
                    "server": admin.server,
                    "certificate-authority-data": base64.b64encode(admin.ca_pem or b"").decode(),
                },
            }
        ],
        "users": [
            {
                "name": "sa",
                "user": {
                    "exec": {
                        "apiVersion": "client.authentication.k8s.io/v1",
                        "command": sys.executable,
                        "args": [str(plugin)],
                        "interactiveMode": "Never",
                        "installHint": "the plugin is written by the test",
                    }
                },
            }
        ],
        "contexts": [{"name": "exec", "context": {"cluster": "local", "user": "sa"}}],
    }
    path = directory / "kubeconfig"
    path.write_text(yaml.safe_dump(document))
    return path


TOKEN_PLUGIN = """
    import json, pathlib
    here = pathlib.Path(__file__).parent
    with open(here / "runs", "a") as runs:
        runs.write("run\\n")
    token = (here / "token").read_text().strip()
    print(json.dumps({"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
                      "status": {"token": token, "expirationTimestamp": "2099-01-01T00:00:00Z"}}))
"""


def plugin_runs(directory: Path) -> int:
    path = directory / "runs"
    return len(path.read_text().splitlines()) if path.exists() else 0


@pytest.fixture
def exec_directory(tmp_path: Path, service_account_token: str) -> Iterator[Path]:
    (tmp_path / "token").write_text(service_account_token)
    yield tmp_path


def test_moor_get_works_with_an_exec_plugin_that_runs_once(private_cluster: ClusterInfo, exec_directory: Path) -> None:
    kubeconfig = exec_kubeconfig(private_cluster, exec_directory, TOKEN_PLUGIN)
    result = moor_cli(kubeconfig, "get", "-A")
    assert result.returncode == 0, result.stderr
    assert plugin_runs(exec_directory) == 1


def test_a_client_certificate_from_an_exec_plugin_authenticates(private_cluster: ClusterInfo, tmp_path: Path) -> None:
    certificate_plugin = f"""
        import json, pathlib
        status = {{"clientCertificateData": pathlib.Path({str(private_cluster.admin_cert)!r}).read_text(),
                  "clientKeyData": pathlib.Path({str(private_cluster.admin_key)!r}).read_text()}}
        kind = {{"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential"}}
        print(json.dumps({{**kind, "status": status}}))
    """
    kubeconfig = exec_kubeconfig(private_cluster, tmp_path, certificate_plugin)
    result = moor_cli(kubeconfig, "get", "-A")
    assert result.returncode == 0, result.stderr


async def test_an_exec_token_serves_many_requests(private_cluster: ClusterInfo, exec_directory: Path) -> None:
    kubeconfig = exec_kubeconfig(private_cluster, exec_directory, TOKEN_PLUGIN)
    async with KubeClient(load_kubeconfig(kubeconfig)) as client:
        for _ in range(5):
            await client.request("get", "GET", DEFAULT_NS)
        assert plugin_runs(exec_directory) == 1
        review = await client.request(
            "create",
            "POST",
            "/apis/authentication.k8s.io/v1/selfsubjectreviews",
            body={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
        )
        assert review["status"]["userInfo"]["username"] == "system:serviceaccount:default:exec-user"
    load_kubeconfig(kubeconfig)
    assert plugin_runs(exec_directory) == 1, "a second load of the same kubeconfig reuses the fresh credential"


async def test_a_revoked_exec_token_is_fetched_again(
    private_cluster: ClusterInfo, tmp_path: Path, service_account_token: str
) -> None:
    """The plugin's cached token is refused (401): the plugin runs again and the request is retried once."""
    kubectl = Kubectl(binaries.locate("kubectl"), private_cluster.kubeconfig)
    (tmp_path / "token").write_text("revoked-token")
    kubeconfig = exec_kubeconfig(private_cluster, tmp_path, TOKEN_PLUGIN)
    credentials = load_kubeconfig(kubeconfig)
    assert plugin_runs(tmp_path) == 1
    (tmp_path / "token").write_text(kubectl("create", "token", "exec-user", "-n", "default").stdout.strip())
    async with KubeClient(credentials) as client:
        namespace = await client.request("get", "GET", DEFAULT_NS)
    assert namespace["metadata"]["name"] == "default"
    assert plugin_runs(tmp_path) == 2


async def test_a_watch_refused_with_401_gets_a_fresh_token_next_time(
    private_cluster: ClusterInfo, tmp_path: Path, service_account_token: str
) -> None:
    (tmp_path / "token").write_text("revoked-token")
    credentials = load_kubeconfig(exec_kubeconfig(private_cluster, tmp_path, TOKEN_PLUGIN))
    (tmp_path / "token").write_text(service_account_token)
    params = {"watch": "true", "timeoutSeconds": "1"}
    async with KubeClient(credentials) as client:
        with pytest.raises(Unauthorized):
            await anext(client.stream("/api/v1/namespaces", params))
        assert (await anext(client.stream("/api/v1/namespaces", params)))["type"] == "ADDED"
    assert plugin_runs(tmp_path) == 2


def test_a_failing_exec_plugin_is_a_user_error(private_cluster: ClusterInfo, tmp_path: Path) -> None:
    failing = """
        import sys
        print("the SSO session has expired; run `aws sso login`", file=sys.stderr)
        sys.exit(3)
    """
    kubeconfig = exec_kubeconfig(private_cluster, tmp_path, failing)
    result = moor_cli(kubeconfig, "get", "-A")
    assert result.returncode == 2
    executable = Path(sys.executable).name
    assert result.stderr.strip() == (
        f"error: kubeconfig {kubeconfig}: exec plugin `{executable}` failed: exit 3: "
        "the SSO session has expired; run `aws sso login`"
    )


# Connections ------------------------------------------------------------------------------------


async def test_open_watches_leave_connections_for_requests(private_cluster: ClusterInfo) -> None:
    """Each watch holds its connection for minutes: more watched kinds than the pool's connections must not
    starve every other request."""
    async with KubeClient(load_kubeconfig(private_cluster.kubeconfig), max_connections=2, request_timeout=5) as client:

        async def watch(path: str) -> None:
            async for _ in client.stream(path, {"watch": "true", "timeoutSeconds": "60"}):
                pass

        paths = ["/api/v1/configmaps", "/api/v1/secrets", "/api/v1/services", "/api/v1/serviceaccounts"]
        watches = [asyncio.create_task(watch(path)) for path in paths]
        try:
            await asyncio.sleep(1)
            namespace = await client.request("get", "GET", DEFAULT_NS)
            assert namespace["metadata"]["name"] == "default"
        finally:
            for task in watches:
                task.cancel()
            await asyncio.gather(*watches, return_exceptions=True)
