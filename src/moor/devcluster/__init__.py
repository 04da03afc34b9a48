"""A real local Kubernetes control plane on loopback (etcd, API server, controller manager, scheduler,
and kwok playing the kubelet of fake nodes), for tests and demos: `moor cluster up|down|status`."""

from moor.devcluster.cluster import (
    ClusterInfo,
    ClusterStatus,
    ComponentStatus,
    cluster_status,
    restart_component,
    running_cluster,
    start_cluster,
    stop_cluster,
)
from moor.devcluster.errors import (
    ClusterAlreadyRunning,
    ClusterError,
    ComponentCrashed,
    ComponentNotReady,
    ComponentWontStop,
    MissingBinary,
    PortInUse,
    UnknownComponent,
)

NEVER_READY_LABEL = "moor.dev/never-ready"
"""Set to "true" on a Pod (template) to keep its Pods Running but never Ready (see docs/devcluster.md)."""

__all__ = [
    "NEVER_READY_LABEL",
    "ClusterAlreadyRunning",
    "ClusterError",
    "ClusterInfo",
    "ClusterStatus",
    "ComponentCrashed",
    "ComponentNotReady",
    "ComponentStatus",
    "ComponentWontStop",
    "MissingBinary",
    "PortInUse",
    "UnknownComponent",
    "cluster_status",
    "restart_component",
    "running_cluster",
    "start_cluster",
    "stop_cluster",
]
