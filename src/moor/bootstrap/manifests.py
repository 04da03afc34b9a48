"""What `moor bootstrap` writes into the repository and into the cluster (pure: no I/O).

Under `<path>/moor-system/` of the repository:
- `components.yaml`: Moor's CRDs, namespace, ServiceAccount and RBAC, and (unless left out) the
  controller's Deployment: the same objects `moor install --with-controller` applies;
- `sync.yaml`: the GitRepository of the repository and the Sync of `<path>` that keep it all in sync,
  themselves included, so that Moor's own upgrades are commits like any other.
Everything else under `<path>` (other Syncs, their sources, plain manifests) is the user's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from moor.bootstrap.install import installation_objects
from moor.resources import API_VERSION
from moor.resources.kinds import GITREPOSITORY, SYNC

MOOR_NAMESPACE = "moor-system"
BOOTSTRAP_NAME = "moor-system"
DIRECTORY = "moor-system"
COMPONENTS_FILE = "components.yaml"
SYNC_FILE = "sync.yaml"
_HEADER = "# Written by `moor bootstrap`; rerun it (or edit and commit) to change.\n"


@dataclass(frozen=True)
class BootstrapSpec:
    """The repository, branch and path a cluster is bootstrapped from, and how."""

    url: str
    branch: str
    path: str
    secret_ref: str | None = None
    interval: str = "1m"
    with_controller: bool = True
    adopt: bool = False

    @property
    def directory(self) -> str:
        """`<path>/moor-system`, relative to the repository root."""
        return f"{self.path.strip('/')}/{DIRECTORY}"


def source_object(spec: BootstrapSpec) -> dict[str, Any]:
    """The GitRepository of the bootstrap repository and branch."""
    body: dict[str, Any] = {"url": spec.url, "ref": {"branch": spec.branch}, "interval": spec.interval}
    if spec.secret_ref:
        body["secretRef"] = {"name": spec.secret_ref}
    return {
        "apiVersion": API_VERSION,
        "kind": GITREPOSITORY.kind,
        "metadata": {"name": BOOTSTRAP_NAME, "namespace": MOOR_NAMESPACE},
        "spec": body,
    }


def sync_object(spec: BootstrapSpec) -> dict[str, Any]:
    """The Sync of the bootstrap path (Moor's own manifests and everything beside them); with `adopt`,
    it takes over the fields it declares from whoever holds them (`force`).

    It waits for the health of what it declares but itself and the other Syncs (no pass waits for a
    Sync); the Syncs it declares wait for their own objects, and `moor bootstrap` waits for every Sync."""
    body: dict[str, Any] = {
        "sourceRef": {"kind": GITREPOSITORY.kind, "name": BOOTSTRAP_NAME},
        "path": f"./{spec.path.strip('/')}",
        "interval": spec.interval,
        "prune": True,
    }
    if spec.adopt:
        body["force"] = True
    return {
        "apiVersion": API_VERSION,
        "kind": SYNC.kind,
        "metadata": {"name": BOOTSTRAP_NAME, "namespace": MOOR_NAMESPACE},
        "spec": body,
    }


def repository_files(spec: BootstrapSpec) -> dict[str, str]:
    """The files bootstrap keeps in the repository, by path relative to its root."""
    components = installation_objects(with_controller=spec.with_controller)
    return {
        f"{spec.directory}/{COMPONENTS_FILE}": _documents(components),
        f"{spec.directory}/{SYNC_FILE}": _documents([source_object(spec), sync_object(spec)]),
    }


def _documents(objects: list[dict[str, Any]]) -> str:
    return _HEADER + yaml.safe_dump_all(objects, sort_keys=False, explicit_start=True)
