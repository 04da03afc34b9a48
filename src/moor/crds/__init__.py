"""Moor's CustomResourceDefinitions, shipped as package data so `moor install` needs no checkout."""

from __future__ import annotations

from importlib import resources
from typing import Any

import yaml

CRD_FILES = (
    "gitrepository.yaml",
    "ocirepository.yaml",
    "helmrepository.yaml",
    "imagerepository.yaml",
    "imagepolicy.yaml",
    "imageupdate.yaml",
    "sync.yaml",
    "syncrecord.yaml",
    "provider.yaml",
    "alert.yaml",
)


def load_crds() -> list[dict[str, Any]]:
    """The CRD objects, GitRepository first, ready to apply."""
    package = resources.files(__name__)
    crds: list[dict[str, Any]] = []
    for name in CRD_FILES:
        text = package.joinpath(name).read_text(encoding="utf-8")
        crds.extend(document for document in yaml.safe_load_all(text) if document)
    return crds
