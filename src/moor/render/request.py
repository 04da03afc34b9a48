"""What to render and within which limits: the values a Sync hands to `render`."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MIB = 1024 * 1024


MAX_VALUES_LAYER_BYTES = 1 * MIB
"""The largest ConfigMap or Secret key `helm.valuesFrom` may name (the API server caps an object at about 1.5 MiB)."""


@dataclass(frozen=True)
class ValuesLayer:
    """One key of a ConfigMap or Secret (`helm.valuesFrom`), as read from the cluster: a YAML mapping of values."""

    origin: str
    """Names the object and key in messages: "the Secret apps/db-values (key values.yaml)"."""
    data: bytes = field(repr=False)
    secret: bool = False
    """From a Secret: its values are never shown (errors quoting them are redacted)."""


@dataclass(frozen=True)
class HelmOptions:
    """A Sync's `spec.helm`: values files (relative to the chart), then `valuesFrom` layers in order, then
    inline values (they win); the release name."""

    values_files: tuple[str, ...] = ()
    values: Mapping[str, Any] = field(default_factory=dict)
    release_name: str | None = None
    values_from: tuple[ValuesLayer, ...] = ()


@dataclass(frozen=True)
class RenderLimits:
    """Bounds that keep a hostile or broken repository from exhausting memory, CPU or time."""

    max_file_bytes: int = 8 * MIB
    max_total_bytes: int = 64 * MIB
    max_documents: int = 20_000
    max_aliases: int = 100
    """How many times one document may repeat an anchored node through aliases."""
    max_alias_nodes: int = 10_000
    """How many nodes aliases may add to one document when expanded ("billion laughs")."""
    max_nodes: int = 4_000_000
    """YAML and JSON nodes (keys and values) in a whole render. Real manifests spend 14 to 30 bytes per node,
    so only a render near `max_total_bytes` reaches it; but the most compact YAML spends one, and each node
    costs 60 to 150 bytes of memory, so without it 64 MiB of YAML could take gigabytes."""
    tool_timeout: float = 120.0
    """Seconds kustomize or helm may run."""


@dataclass(frozen=True)
class DecryptionKeys:
    """age identities that decrypt the SOPS-encrypted documents of a render (`moor.render.sops`)."""

    origin: str
    """Where the keys came from, for messages: "the Secret moor-system/sops-age"."""
    age_identities: tuple[bytes, ...] = field(default=(), repr=False)
    """One `AGE-SECRET-KEY-1…` line each; never shown (hence no repr)."""

    @property
    def fingerprint(self) -> str:
        """A digest that changes when the keys do, safe to keep and compare."""
        digest = hashlib.sha256()
        for identity in self.age_identities:
            digest.update(hashlib.sha256(identity).digest())
        return digest.hexdigest()


@dataclass(frozen=True)
class RenderRequest:
    """One render: `path` (a Sync's `spec.path`) inside the checkout at `root`."""

    root: Path
    path: str = "."
    helm: HelmOptions | None = None
    namespace: str | None = None
    """The Sync's targetNamespace; only Helm sees it (as `--namespace`), Render stamps nothing."""
    kube_version: str | None = None
    """Passed to `helm template --kube-version` so charts see the cluster's version."""
    api_versions: tuple[str, ...] = ()
    """Passed to `helm template --api-versions` (group/version and group/version/Kind the cluster serves), so
    `.Capabilities.APIVersions.Has` answers as the cluster would."""
    is_upgrade: bool = False
    """The Sync applied this release before: `helm template --is-upgrade` (`.Release.IsUpgrade` true,
    `.Release.IsInstall` false)."""
    limits: RenderLimits = RenderLimits()
    decryption: DecryptionKeys | None = None
    """Keys for SOPS-encrypted documents; without them an encrypted document is a RenderError."""
    keep_encrypted: bool = False
    """Without keys, SOPS-encrypted documents are passed on encrypted (`moor build`) instead of refused."""
