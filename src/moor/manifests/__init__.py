"""The controller's in-cluster manifests (namespace, identity, RBAC, Deployment), shipped as package data.

`kubectl apply -k` works on this directory too; `moor install` reads the same files. With several
replicas (`moor install --with-controller --replicas N`) the Deployment runs `moor run --replicas`
with N replicas rolled one at a time and spread over nodes, and a PodDisruptionBudget (pdb.yaml) joins it.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import yaml

from moor.errors import MoorError

RBAC_FILES = ("namespace.yaml", "serviceaccount.yaml", "rbac-controller.yaml", "rbac-apply.yaml")
CONTROLLER_FILES = ("deployment.yaml",)
SCALED_OUT_FILES = ("pdb.yaml",)


class ReplicasWithoutController(MoorError):
    """Several replicas were asked for, but not the controller's Deployment."""


def load_manifests(*, with_controller: bool, replicas: int = 1) -> list[dict[str, Any]]:
    """The namespace, ServiceAccount and RBAC, plus the Deployment when `with_controller` (scaled out to
    `replicas`, with its PodDisruptionBudget, when more than one)."""
    if replicas > 1 and not with_controller:
        raise ReplicasWithoutController("--replicas needs --with-controller")
    names = RBAC_FILES + (CONTROLLER_FILES if with_controller else ()) + (SCALED_OUT_FILES if replicas > 1 else ())
    objects = [document for name in names for document in _documents(name)]
    if replicas > 1:
        for obj in objects:
            if obj["kind"] == "Deployment":
                scale_out(obj, replicas)
    return objects


def scale_out(deployment: dict[str, Any], replicas: int) -> None:
    """The controller's Deployment as `replicas` members of one shard table: each runs `moor run
    --replicas` under its pod name, pods are replaced one at a time (the others take over its objects)
    and preferably kept on different nodes."""
    spec = deployment["spec"]
    spec["replicas"] = replicas
    spec["strategy"] = {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}
    pod = spec["template"]["spec"]
    selector = spec["selector"]["matchLabels"]
    term = {"labelSelector": {"matchLabels": dict(selector)}, "topologyKey": "kubernetes.io/hostname"}
    pod["affinity"] = {
        "podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100, "podAffinityTerm": term}]
        }
    }
    container = pod["containers"][0]
    container["args"] = [*container["args"], "--replicas"]
    container["env"] = [
        *container["env"],
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
    ]


def _documents(name: str) -> list[dict[str, Any]]:
    text = resources.files(__name__).joinpath(name).read_text(encoding="utf-8")
    return [document for document in yaml.safe_load_all(text) if document]
