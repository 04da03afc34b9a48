"""`cluster.json`: what `up` started (pids, command lines, ports), so `down` and `status` find it later."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from moor.devcluster.processes import RunningProcess

FORMAT_VERSION = 1


@dataclass(frozen=True)
class ClusterState:
    """Written after each component starts, so even an interrupted `up` can be taken down."""

    server: str
    kubeconfig: Path
    ca_cert: Path
    started_at: datetime
    ports: dict[str, int]
    nodes: tuple[str, ...] = ()
    ready: bool = False
    processes: tuple[RunningProcess, ...] = field(default=())

    def with_process(self, process: RunningProcess) -> ClusterState:
        return replace(self, processes=(*self.processes, process))

    def to_json(self) -> dict[str, Any]:
        return {
            "version": FORMAT_VERSION,
            "server": self.server,
            "kubeconfig": str(self.kubeconfig),
            "caCert": str(self.ca_cert),
            "startedAt": self.started_at.isoformat(),
            "ready": self.ready,
            "ports": self.ports,
            "nodes": list(self.nodes),
            "components": [
                {"name": p.name, "pid": p.pid, "argv": list(p.argv), "log": str(p.log)} for p in self.processes
            ],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ClusterState:
        return cls(
            server=str(data["server"]),
            kubeconfig=Path(data["kubeconfig"]),
            ca_cert=Path(data["caCert"]),
            started_at=datetime.fromisoformat(data["startedAt"]),
            ready=bool(data.get("ready", False)),
            ports={str(k): int(v) for k, v in data["ports"].items()},
            nodes=tuple(data.get("nodes", ())),
            processes=tuple(
                RunningProcess(name=str(c["name"]), pid=int(c["pid"]), argv=tuple(c["argv"]), log=Path(c["log"]))
                for c in data["components"]
            ),
        )


def save_state(path: Path, state: ClusterState) -> None:
    """Replaces the file atomically, so a reader never sees half of it."""
    partial = path.with_suffix(".json.tmp")
    partial.write_text(json.dumps(state.to_json(), indent=2) + "\n")
    partial.replace(path)


def load_state(path: Path) -> ClusterState | None:
    """The recorded state, or None if there is none (or it is unreadable, e.g. from another version)."""
    try:
        return ClusterState.from_json(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        return None
