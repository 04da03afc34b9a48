"""The controller's in-cluster manifests (namespace, identity, RBAC, Deployment), shipped as package data.

`kubectl apply -k` works on this directory too; `moor install` reads the same files.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import yaml

RBAC_FILES = ("namespace.yaml", "serviceaccount.yaml", "rbac-controller.yaml", "rbac-apply.yaml")
CONTROLLER_FILES = ("deployment.yaml",)


def load_manifests(*, with_controller: bool) -> list[dict[str, Any]]:
    """The namespace, ServiceAccount and RBAC, plus the Deployment when `with_controller`."""
    package = resources.files(__name__)
    names = RBAC_FILES + (CONTROLLER_FILES if with_controller else ())
    objects: list[dict[str, Any]] = []
    for name in names:
        text = package.joinpath(name).read_text(encoding="utf-8")
        objects.extend(document for document in yaml.safe_load_all(text) if document)
    return objects
