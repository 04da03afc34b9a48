"""The fault proxy that other fault tests rely on: it forwards to the real API server, and injects
exactly the faults asked for."""

from __future__ import annotations

import json
import subprocess
import time

from moor import binaries
from tests.support.cluster_fixtures import Kubectl
from tests.support.fault_proxy import FaultProxy


def proxied(fault_proxy: FaultProxy) -> Kubectl:
    return Kubectl(binaries.locate("kubectl"), fault_proxy.kubeconfig)


def test_requests_reach_the_real_api_server_through_the_proxy(fault_proxy: FaultProxy) -> None:
    kubectl = proxied(fault_proxy)
    namespaces = json.loads(kubectl("get", "namespaces", "-o", "json").stdout)
    assert "default" in {item["metadata"]["name"] for item in namespaces["items"]}
    assert fault_proxy.requests_to(r"^/api/v1/namespaces")


def test_an_injected_status_is_answered_instead_of_the_server(fault_proxy: FaultProxy) -> None:
    kubectl = proxied(fault_proxy)
    fault = fault_proxy.respond(403, r"^/api/v1/namespaces$", method="GET", times=1, message="no namespaces for you")
    refused = kubectl("get", "namespaces", check=False)
    assert refused.returncode != 0 and "no namespaces for you" in refused.stderr
    assert fault.hits == 1
    assert kubectl("get", "namespaces").returncode == 0  # `times=1`: the next one passes


def test_a_reset_connection_and_a_refusing_proxy_fail_the_client(fault_proxy: FaultProxy) -> None:
    kubectl = proxied(fault_proxy)
    fault_proxy.reset(r"^/api/v1/namespaces/default$")
    assert kubectl("get", "namespace", "default", "--request-timeout=5s", check=False).returncode != 0
    fault_proxy.clear()
    fault_proxy.refuse()
    refused = kubectl("get", "namespace", "default", "--request-timeout=5s", check=False)
    assert refused.returncode != 0 and "refused" in refused.stderr
    fault_proxy.accept()
    assert kubectl("get", "namespace", "default").returncode == 0


def test_stalls_and_freezes_hold_requests(fault_proxy: FaultProxy) -> None:
    kubectl = proxied(fault_proxy)
    fault_proxy.stall(r"^/api/v1/namespaces/default$", seconds=2, times=1)
    started = time.monotonic()
    kubectl("get", "namespace", "default")
    assert time.monotonic() - started >= 2
    fault_proxy.freeze()
    timed_out = kubectl("get", "namespace", "default", "--request-timeout=2s", check=False)
    assert timed_out.returncode != 0
    fault_proxy.thaw()
    assert kubectl("get", "namespace", "default").returncode == 0


def test_dropped_watch_streams_end(fault_proxy: FaultProxy) -> None:
    kubectl = proxied(fault_proxy)
    argv = [str(kubectl.binary), f"--kubeconfig={kubectl.kubeconfig}", "get", "namespaces", "--watch"]
    watch = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not fault_proxy.requests_to(r"watch=true") and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)
        assert fault_proxy.drop_watches() >= 1
        # kubectl's watch ends (or reconnects) once its stream is cut; either way a second watch arrives or it exits.
        deadline = time.monotonic() + 30
        while watch.poll() is None and len(fault_proxy.requests_to(r"watch=true")) < 2:
            assert time.monotonic() < deadline, "the watch was not cut"
            time.sleep(0.1)
    finally:
        watch.kill()
        watch.wait()
