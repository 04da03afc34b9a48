"""`moor bootstrap git`, step by step: install, commit Moor's manifests, create the source and the Sync,
wait for every Sync. Each step says what it did through `report`; rerunning changes nothing that is
already as declared (no commit, no write)."""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass

from moor.bootstrap.install import install_objects, installation_objects
from moor.bootstrap.manifests import MOOR_NAMESPACE, BootstrapSpec, repository_files, source_object, sync_object
from moor.bootstrap.readiness import SyncState, wait_for_syncs
from moor.bootstrap.repository import RepositoryWrite, commit_files
from moor.cluster.api import KubeApi
from moor.errors import MoorError
from moor.objects import ObjectRef
from moor.source.auth import GitAuth


class BootstrapError(MoorError):
    """Bootstrap cannot go on: the named Secret is missing, or the repository cannot be read."""


@dataclass(frozen=True)
class BootstrapResult:
    """The repository write and the state of every Sync when bootstrap stopped waiting."""

    written: RepositoryWrite
    syncs: tuple[SyncState, ...]

    @property
    def ready(self) -> bool:
        return bool(self.syncs) and all(state.ready for state in self.syncs)


async def bootstrap_from_git(
    api: KubeApi,
    spec: BootstrapSpec,
    *,
    author: tuple[str, str],
    wait_seconds: float,
    report: Callable[[str], None],
    git_timeout: float = 120.0,
) -> BootstrapResult:
    """Bootstraps the cluster behind `api` from `spec`'s repository path; see the module docstring."""
    report("installing Moor's CRDs and RBAC")
    installed = await install_objects(api, installation_objects(with_controller=False))
    report(
        f"  {len(installed.created)} created, {len(installed.configured)} configured, "
        f"{len(installed.unchanged)} unchanged"
    )
    auth = await _read_auth(api, spec.secret_ref) if spec.secret_ref else None

    report(f"writing Moor's manifests to {spec.directory} on {spec.branch} of {spec.url}")
    written = await commit_files(
        spec.url,
        spec.branch,
        repository_files(spec),
        auth,
        author=author,
        message=f"Moor bootstrap: {spec.directory}",
        timeout=git_timeout,
    )
    if written.commit:
        report(f"  committed and pushed {written.commit[:12]}")
    elif written.refused:
        report(f"  not committed (no write access: {written.refused}); the repository is used as it is")
    else:
        report(f"  unchanged at {written.head[:12]}")

    source, sync = source_object(spec), sync_object(spec)
    report(f"applying GitRepository {MOOR_NAMESPACE}/{source['metadata']['name']} and its Sync")
    applied = await install_objects(api, [source, sync])
    for ref in applied.created:
        report(f"  {ref.kind} {ref.namespace}/{ref.name} created")
    for ref in applied.configured:
        report(f"  {ref.kind} {ref.namespace}/{ref.name} configured")
    if applied.unchanged:
        report(f"  {len(applied.unchanged)} unchanged")

    report(f"waiting up to {wait_seconds:g}s for every Sync to be Ready")
    expected = f"{MOOR_NAMESPACE}/{sync['metadata']['name']}"
    states = await wait_for_syncs(
        api, expected=expected, timeout=wait_seconds, on_change=lambda state: report(f"  {_describe(state)}")
    )
    return BootstrapResult(written, tuple(states))


async def _read_auth(api: KubeApi, name: str) -> GitAuth:
    secret = await api.get(ObjectRef("", "v1", "Secret", MOOR_NAMESPACE, name))
    if secret is None:
        raise BootstrapError(
            f"the Secret {MOOR_NAMESPACE}/{name} named by --secret-ref does not exist: create it first "
            "(username and password, bearerToken, or identity and known_hosts)"
        )
    data = {key: base64.b64decode(value) for key, value in (secret.get("data") or {}).items()}
    return GitAuth.from_secret(data)


def _describe(state: SyncState) -> str:
    word = "Ready" if state.ready else (state.reason or "Progressing")
    revision = f" at {state.revision}" if state.revision else ""
    return f"Sync {state.key}: {word}{revision}: {state.message}"
