"""From a GitRepository object to Git: its credentials, its trusted keys, its current revision (verified
when `spec.verify` asks), and that revision's files; an OCIRepository's files come from `registry_store`."""

from __future__ import annotations

from dataclasses import dataclass

from moor import source
from moor.cluster.api import KubeApi
from moor.controller.chart_store import ChartStore
from moor.controller.registry_store import RegistryStore
from moor.controller.secrets import SecretMissing, read_secret
from moor.errors import MoorError
from moor.objects import KubeObject, ObjectRef
from moor.resources import HELMREPOSITORY, OCIREPOSITORY, GitRepositorySpec, SpecError, SyncSpec, VerifyMode
from moor.resources.fields import describe
from moor.source.helm import IndexLimits

_TAG_REFS = ("tag", "semver")


@dataclass(frozen=True)
class RepositoryAccess:
    """What it takes to talk to one repository: its URL, the ref to follow and the credentials."""

    url: str
    ref: source.GitRef
    auth: source.GitAuth | None
    timeout: float


def check_verify_mode(repository: KubeObject, spec: GitRepositorySpec) -> None:
    """Tag and TagAndHEAD check the signature of the tag the ref names, so they need a tag or semver ref."""
    if spec.verify is None or spec.verify.mode is VerifyMode.HEAD or spec.ref.kind in _TAG_REFS:
        return
    raise SpecError(
        describe(repository),
        "spec.verify.mode",
        f"{spec.verify.mode} checks the signature of the tag the ref names, but the ref is {spec.ref}: "
        "use a tag or semver ref, or mode HEAD",
    )


class SourceStore:
    """Resolves and fetches revisions of Moor's sources, sharing one on-disk artifact cache: GitRepositories
    here, OCIRepositories through `registries`, the charts of HelmRepositories through `charts`."""

    def __init__(self, api: KubeApi, cache: source.ArtifactCache, index_limits: IndexLimits | None = None) -> None:
        self.api = api
        self.cache = cache
        self.registries = RegistryStore(api, cache)
        self.charts = ChartStore(api, cache, index_limits)

    async def access(self, repository: KubeObject, spec: GitRepositorySpec) -> RepositoryAccess:
        auth = None
        if spec.secret_name:
            auth = source.GitAuth.from_secret(await self.secret_data(repository, spec.secret_name))
        return RepositoryAccess(spec.url, spec.ref, auth, spec.timeout.total_seconds())

    async def secret_data(self, owner: KubeObject, name: str) -> dict[str, bytes]:
        """The decoded data of a Secret in `owner`'s namespace; a clear error naming both when it is missing."""
        return (await read_secret(self.api, owner, name)).data

    async def verification(self, repository: KubeObject, spec: GitRepositorySpec) -> source.VerificationPolicy | None:
        """What `spec.verify` demands of a new revision, with the keys its trust Secret holds; None without it.

        A trust Secret that is missing or holds no usable key is a VerificationFailed: nothing can be
        verified, so no new revision is used.
        """
        if spec.verify is None:
            return None
        name = spec.verify.secret_name
        try:
            data = await self.secret_data(repository, name)
        except SecretMissing as error:
            raise source.VerificationFailed(f"{error}, so no revision can be verified") from None
        origin = f"the trust Secret {ObjectRef.of(repository).namespace}/{name}"
        try:
            trust = source.TrustedKeys.from_secret(data, origin)
        except source.InvalidSourceSpec as error:
            raise source.VerificationFailed(str(error)) from None
        mode = spec.verify.mode
        return source.VerificationPolicy(
            trust=trust,
            commit=mode in (VerifyMode.HEAD, VerifyMode.TAG_AND_HEAD),
            tag=mode in (VerifyMode.TAG, VerifyMode.TAG_AND_HEAD),
        )

    async def latest(
        self, access: RepositoryAccess, verify: source.VerificationPolicy | None = None
    ) -> source.Artifact:
        """The newest revision the ref names (one `git ls-remote`), fetched unless already cached, and
        verified when `verify` is given (VerificationFailed: it must not be used)."""
        resolved = await source.resolve(access.url, access.ref, access.auth, timeout=access.timeout)
        return await source.fetch(
            access.url, resolved, access.auth, cache=self.cache, timeout=access.timeout, verify=verify
        )

    async def newest(self, repository: KubeObject, spec: SyncSpec) -> source.Artifact:
        """What a Sync of `spec` would apply next: the newest version of its chart in range for a
        HelmRepository, the revision the source's status names otherwise."""
        if spec.chart is not None:
            return (await self.charts.chart(repository, spec.chart.name, spec.chart.version)).artifact
        return await self.artifact(repository)

    async def artifact(self, repository: KubeObject, revision: str | None = None) -> source.Artifact:
        """The files of `revision` (default: the one the source's status names), from the cache or fetched
        again (after a restart, or for an earlier revision to roll back to); OCIRepositories too."""
        if repository.get("kind") == OCIREPOSITORY.kind:
            return await self.registries.artifact(repository, revision)
        if repository.get("kind") == HELMREPOSITORY.kind:
            if revision is None:
                raise MoorError(f"{ObjectRef.of(repository)} holds many charts: a revision must name one")
            return await self.charts.chart_at(repository, revision)
        spec = GitRepositorySpec.from_object(repository)
        revision = revision or str((((repository.get("status") or {}).get("artifact")) or {}).get("revision", ""))
        if not revision:
            raise MoorError(f"{ObjectRef.of(repository)} has no artifact yet")
        name, _, _ = revision.rpartition("@")
        commit = source.revision_commit(revision)
        cached = await self.cache.get(commit)
        if cached is not None:
            return source.Artifact.of(revision, cached)
        access = await self.access(repository, spec)
        refname = _refname(access.ref, name)
        resolved = source.ResolvedRevision(ref=access.ref, commit=commit, refname=refname)
        return await source.fetch(access.url, resolved, access.auth, cache=self.cache, timeout=access.timeout)


def _refname(ref: source.GitRef, name: str) -> str | None:
    if not name:
        return None
    return f"refs/heads/{name}" if ref.kind == "branch" else f"refs/tags/{name}"
