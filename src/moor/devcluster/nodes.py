"""The fake Nodes kwok plays the kubelet for: taint-free, with room for plenty of Pods."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from moor.devcluster.components import KWOK_NODE_ANNOTATION

ALLOCATABLE = {"cpu": "32", "memory": "256Gi", "pods": "110", "ephemeral-storage": "1Ti"}


def node_names(count: int) -> tuple[str, ...]:
    return tuple(f"worker-{index}" for index in range(1, count + 1))


def fake_node(name: str) -> dict[str, Any]:
    """A Node object that kwok manages (it carries kwok's annotation); kwok fills in its status."""
    key, value = KWOK_NODE_ANNOTATION
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {key: value, "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok",
            },
        },
        "spec": {},
        "status": {"allocatable": dict(ALLOCATABLE), "capacity": dict(ALLOCATABLE)},
    }


def unready_nodes(node_list: dict[str, Any], expected: Sequence[str]) -> list[str]:
    """Which of `expected` are missing, not Ready, or still tainted (so not yet schedulable)."""
    by_name = {item["metadata"]["name"]: item for item in node_list.get("items", [])}
    waiting = []
    for name in expected:
        node = by_name.get(name)
        if node is None:
            waiting.append(name)
            continue
        conditions = (node.get("status") or {}).get("conditions") or []
        ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
        if not ready or (node.get("spec") or {}).get("taints"):
            waiting.append(name)
    return waiting
