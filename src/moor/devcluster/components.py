"""The command line of each control-plane program, in the order they start.

Flags follow what kwokctl and envtest pass for a loopback cluster, plus real TLS, Node,RBAC
authorization and a controller manager (so namespaces finish deleting and garbage collection runs).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import yaml

from moor.devcluster.errors import UnknownComponent
from moor.devcluster.layout import ClusterLayout
from moor.devcluster.pki import ClusterPKI

ETCD = "etcd"
APISERVER = "kube-apiserver"
CONTROLLER_MANAGER = "kube-controller-manager"
SCHEDULER = "kube-scheduler"
KWOK = "kwok"
ETCD_PEER = "etcd-peer"

COMPONENTS = (ETCD, APISERVER, CONTROLLER_MANAGER, SCHEDULER, KWOK)
"""Every program of the control plane, in start order."""

PORTS = (ETCD, ETCD_PEER, APISERVER, CONTROLLER_MANAGER, SCHEDULER)
"""The loopback ports a cluster listens on (kwok serves none)."""

SERVICE_CIDR = "10.96.0.0/16"
SERVICE_IP = "10.96.0.1"
POD_CIDR = "10.244.0.0/16"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
KWOK_NODE_ANNOTATION = ("kwok.x-k8s.io/node", "fake")
LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class ComponentPlan:
    """How to run one program: its argv, what to add to the environment, and the port it serves."""

    name: str
    argv: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    port: int | None = None


def pick_ports(fixed: Mapping[str, int] | None = None) -> dict[str, int]:
    """A distinct free loopback port for every name in PORTS, except those `fixed` by the caller."""
    ports = dict(fixed or {})
    with ExitStack() as stack:
        for name in PORTS:
            if name in ports:
                continue
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((LOOPBACK, 0))
            # Held open until every port is picked, so no two names get the same one.
            while sock.getsockname()[1] in ports.values():
                sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
                sock.bind((LOOPBACK, 0))
            ports[name] = sock.getsockname()[1]
    return {name: ports[name] for name in PORTS}


def check_overrides(ports: Mapping[str, int] | None, extra_args: Mapping[str, Sequence[str]] | None) -> None:
    """Refuses port or argument overrides for names that aren't part of the cluster."""
    unknown_ports = set(ports or {}) - set(PORTS)
    if unknown_ports:
        raise UnknownComponent("the port settings", unknown_ports, PORTS)
    unknown_components = set(extra_args or {}) - set(COMPONENTS)
    if unknown_components:
        raise UnknownComponent("the extra arguments", unknown_components, COMPONENTS)


def install_stages(directory: Path) -> list[Path]:
    """Copies the kwok Stage definitions shipped with Moor into `directory`; kwok reads them there."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    shipped = resources.files("moor.devcluster").joinpath("stages")
    for entry in sorted(shipped.iterdir(), key=lambda item: item.name):
        if entry.name.endswith(".yaml"):
            target = directory / entry.name
            target.write_bytes(entry.read_bytes())
            written.append(target)
    return written


def _env_without(prefixes: Sequence[str]) -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if not key.startswith(tuple(prefixes))}


def etcd(binary: Path, layout: ClusterLayout, ports: Mapping[str, int]) -> ComponentPlan:
    client = f"http://{LOOPBACK}:{ports[ETCD]}"
    peer = f"http://{LOOPBACK}:{ports[ETCD_PEER]}"
    return ComponentPlan(
        name=ETCD,
        argv=(
            str(binary),
            "--name=moor",
            f"--data-dir={layout.etcd_data}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=moor={peer}",
            "--unsafe-no-fsync=true",
        ),
        port=ports[ETCD],
    )


def kube_apiserver(binary: Path, layout: ClusterLayout, pki: ClusterPKI, ports: Mapping[str, int]) -> ComponentPlan:
    return ComponentPlan(
        name=APISERVER,
        argv=(
            str(binary),
            f"--etcd-servers=http://{LOOPBACK}:{ports[ETCD]}",
            f"--advertise-address={LOOPBACK}",
            f"--bind-address={LOOPBACK}",
            f"--secure-port={ports[APISERVER]}",
            f"--tls-cert-file={pki.apiserver.cert}",
            f"--tls-private-key-file={pki.apiserver.key}",
            f"--client-ca-file={pki.ca.cert}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
            f"--service-account-key-file={pki.service_account_public_key}",
            f"--service-account-signing-key-file={pki.service_account_key}",
            "--authorization-mode=Node,RBAC",
            "--allow-privileged=true",
            "--endpoint-reconciler-type=none",
            "--profiling=false",
        ),
        port=ports[APISERVER],
    )


def kube_controller_manager(
    binary: Path, layout: ClusterLayout, pki: ClusterPKI, ports: Mapping[str, int]
) -> ComponentPlan:
    serving = pki.serving[CONTROLLER_MANAGER]
    return ComponentPlan(
        name=CONTROLLER_MANAGER,
        argv=(
            str(binary),
            f"--kubeconfig={layout.component_kubeconfig(CONTROLLER_MANAGER)}",
            "--leader-elect=false",
            f"--bind-address={LOOPBACK}",
            f"--secure-port={ports[CONTROLLER_MANAGER]}",
            f"--tls-cert-file={serving.cert}",
            f"--tls-private-key-file={serving.key}",
            "--use-service-account-credentials=true",
            f"--service-account-private-key-file={pki.service_account_key}",
            f"--root-ca-file={pki.ca.cert}",
            f"--cluster-signing-cert-file={pki.ca.cert}",
            f"--cluster-signing-key-file={pki.ca.key}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--kube-api-qps=100",
            "--kube-api-burst=200",
            "--profiling=false",
        ),
        port=ports[CONTROLLER_MANAGER],
    )


def write_scheduler_config(layout: ClusterLayout) -> Path:
    """kube-scheduler takes its client settings from a config file (its --kubeconfig flag is deprecated)."""
    path = layout.component_kubeconfigs / "kube-scheduler-config.yaml"
    config = {
        "apiVersion": "kubescheduler.config.k8s.io/v1",
        "kind": "KubeSchedulerConfiguration",
        "clientConnection": {
            "kubeconfig": str(layout.component_kubeconfig(SCHEDULER)),
            "qps": 100,
            "burst": 200,
        },
        "leaderElection": {"leaderElect": False},
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def kube_scheduler(binary: Path, layout: ClusterLayout, pki: ClusterPKI, ports: Mapping[str, int]) -> ComponentPlan:
    serving = pki.serving[SCHEDULER]
    return ComponentPlan(
        name=SCHEDULER,
        argv=(
            str(binary),
            f"--config={write_scheduler_config(layout)}",
            f"--bind-address={LOOPBACK}",
            f"--secure-port={ports[SCHEDULER]}",
            f"--tls-cert-file={serving.cert}",
            f"--tls-private-key-file={serving.key}",
            "--profiling=false",
        ),
        port=ports[SCHEDULER],
    )


def kwok(binary: Path, layout: ClusterLayout) -> ComponentPlan:
    stages = install_stages(layout.kwok / "stages")
    key, value = KWOK_NODE_ANNOTATION
    return ComponentPlan(
        name=KWOK,
        argv=(
            str(binary),
            f"--kubeconfig={layout.component_kubeconfig(KWOK)}",
            f"--manage-nodes-with-annotation-selector={key}={value}",
            f"--cidr={POD_CIDR}",
            "--node-lease-duration-seconds=40",
            *(f"--config={stage}" for stage in stages),
        ),
        # kwok also reads $KWOK_WORKDIR/kwok.yaml (default ~/.kwok): keep each cluster's to itself.
        env={"KWOK_WORKDIR": str(layout.kwok)},
    )


def plan_components(
    binaries: Mapping[str, Path],
    layout: ClusterLayout,
    pki: ClusterPKI,
    ports: Mapping[str, int],
    extra_args: Mapping[str, Sequence[str]] | None = None,
) -> list[ComponentPlan]:
    """Every program's command line, in start order; `extra_args` are appended per component."""
    plans = [
        etcd(binaries[ETCD], layout, ports),
        kube_apiserver(binaries[APISERVER], layout, pki, ports),
        kube_controller_manager(binaries[CONTROLLER_MANAGER], layout, pki, ports),
        kube_scheduler(binaries[SCHEDULER], layout, pki, ports),
        kwok(binaries[KWOK], layout),
    ]
    extra = dict(extra_args or {})
    return [ComponentPlan(plan.name, (*plan.argv, *extra.get(plan.name, ())), plan.env, plan.port) for plan in plans]


def inherited_environment() -> dict[str, str]:
    """The environment without variables that would reconfigure etcd or kwok."""
    return _env_without(("ETCD_", "KWOK_"))


def component_environment(plan: ComponentPlan) -> dict[str, str]:
    """The inherited environment plus the plan's own variables."""
    return {**inherited_environment(), **plan.env}
