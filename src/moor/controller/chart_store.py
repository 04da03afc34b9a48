"""Charts from HelmRepository objects: the repository's index (fetched once per change, kept in memory
and shared by every Sync), the version a Sync's `chart.version` admits, and that version's files in the
artifact cache (keyed by the .tgz's digest, so a version is downloaded once however many Syncs use it).

A revision reads `<chart>@<version>@sha256:<hex of the .tgz>`. The index's `digest` of a version, when
it has one, is checked against what is downloaded; the tarball is extracted with the rules of
moor.source.oci.tarball (no links, devices, `..`, bombs) and must hold `<chart>/Chart.yaml`. For
`type: oci` there is no index: the chart's tags are listed (helm writes `+` as `_` in them) and the
layer `application/vnd.cncf.helm.chart.content.v1.tar+gzip` is the .tgz.
"""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path

from moor import source
from moor.cluster.api import KubeApi
from moor.controller.registry_store import RegistryAccess, created_time
from moor.controller.secrets import ClientSecrets, read_client_secrets
from moor.errors import MoorError
from moor.objects import KubeObject, ObjectRef
from moor.resources.helmrepository import HelmRepositorySpec, HelmRepositoryType
from moor.source.artifact import TREE_DIR, CacheEntry, CommitInfo
from moor.source.errors import RepositoryNotFound
from moor.source.helm.client import ChartRepositoryClient
from moor.source.helm.errors import ChartNotFound, ChartRepositoryError, NoMatchingVersion
from moor.source.helm.index import ChartEntry, ChartIndex, IndexLimits, check_chart_name, parse_index_file
from moor.source.oci import OciReference, RegistryClient, UnsupportedArtifact, extract_tarball
from moor.source.oci.manifest import ImageManifest, parse_manifest, select_layer
from moor.source.semver_range import SemverRange, tag_version

HELM_CHART_LAYER = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
_TARBALL = "chart.tgz"
_INDEX_PREFIX = ".index-"
_VERSIONS_SHOWN = 5


@dataclass(frozen=True)
class ChartVersion:
    artifact: source.Artifact
    """`.path`: the chart's directory (Chart.yaml at its root); `.revision`: `<chart>@<version>@sha256:<hex>`."""
    name: str
    version: str


@dataclass(frozen=True)
class IndexRefresh:
    index: ChartIndex
    changed: bool
    """False when the server answered 304 or sent the same bytes again."""


@dataclass(frozen=True)
class _KnownIndex:
    index: ChartIndex
    etag: str | None


@dataclass(frozen=True)
class ChartRepositoryAccess:
    """What it takes to talk to one chart repository over HTTP(S)."""

    url: str
    secrets: ClientSecrets
    timeout: float

    def client(self) -> ChartRepositoryClient:
        return ChartRepositoryClient(
            self.url,
            self.secrets.credentials,
            ca_pem=self.secrets.ca_pem,
            cert_pem=self.secrets.cert_pem,
            key_pem=self.secrets.key_pem,
            timeout=self.timeout,
        )


class ChartStore:
    """Indexes and charts of HelmRepository objects, for their reconciler and for the Syncs that use them."""

    def __init__(self, api: KubeApi, cache: source.ArtifactCache, index_limits: IndexLimits | None = None) -> None:
        self.api = api
        self.cache = cache
        self.index_limits = index_limits or IndexLimits()
        self._indexes: dict[str, _KnownIndex] = {}
        """By the HelmRepository's uid: the last index read, with its ETag."""
        self._locks: dict[str, asyncio.Lock] = {}
        self._digests: dict[str, str] = {}
        """Chart URL -> digest downloaded, for index entries that give none."""
        self._index_files_ready = False

    async def chart(self, repository: KubeObject, name: str, version: str) -> ChartVersion:
        """The newest version of chart `name` that `version` (exact or a semver range) admits, downloaded
        (its digest checked against the index's when there is one) and extracted into the artifact cache."""
        what = f"{ObjectRef.of(repository)}: chart {name!r}"
        check_chart_name(name, what)
        wanted = SemverRange.parse(version or "*")
        spec = HelmRepositorySpec.from_object(repository)
        if spec.type is HelmRepositoryType.OCI:
            return await self._oci_chart(repository, spec, name, wanted)
        index = await self._current_index(repository, spec)
        entries = index.versions(name)
        if not entries:
            raise ChartNotFound(f"{what} is not in the repository's index ({index.chart_count} charts)")
        chosen = _choose(entries, wanted, what)
        artifact = await self._download(repository, spec, chosen)
        return ChartVersion(artifact=artifact, name=name, version=chosen.version)

    async def chart_at(self, repository: KubeObject, revision: str) -> source.Artifact:
        """An exact earlier revision (`<chart>@<version>@sha256:<hex>`, to roll back to), from the cache
        or downloaded again."""
        name, version, digest = _parse_revision(revision, ObjectRef.of(repository))
        check_chart_name(name, f"{ObjectRef.of(repository)}: revision {revision!r}")
        cached = await self.cache.get(digest)
        if cached is not None:
            return _chart_artifact(revision, cached, name)
        spec = HelmRepositorySpec.from_object(repository)
        if spec.type is HelmRepositoryType.OCI:
            access = await self.registry_access(repository, spec)
            chart = replace(access.repository, repository=f"{access.repository.repository}/{name}")
            async with access.client() as client:
                return await self._obtain_blob(client, chart, name, version, digest)
        index = await self._current_index(repository, spec)
        matching = [entry for entry in index.versions(name) if entry.version == version]
        if not matching:
            raise ChartNotFound(f"{ObjectRef.of(repository)}: {name} {version} is no longer in the repository's index")
        return await self._download(repository, spec, replace(matching[0], digest=digest))

    async def refresh(self, repository: KubeObject, spec: HelmRepositorySpec) -> IndexRefresh:
        """The repository's index now: one conditional GET; parsed only when its bytes changed."""
        uid = _uid(repository)
        async with self._locks.setdefault(uid, asyncio.Lock()):
            return await self._read_index(uid, repository, spec)

    def forget(self, repository: KubeObject) -> None:
        """Drops a deleted repository's index from memory."""
        uid = _uid(repository)
        self._indexes.pop(uid, None)
        self._locks.pop(uid, None)

    async def http_access(self, repository: KubeObject, spec: HelmRepositorySpec) -> ChartRepositoryAccess:
        return ChartRepositoryAccess(spec.url, await self._secrets(repository, spec), spec.timeout.total_seconds())

    async def registry_access(self, repository: KubeObject, spec: HelmRepositorySpec) -> RegistryAccess:
        secrets = await self._secrets(repository, spec)
        return RegistryAccess(spec.oci_repository, secrets, spec.insecure, spec.timeout.total_seconds())

    async def _secrets(self, repository: KubeObject, spec: HelmRepositorySpec) -> ClientSecrets:
        return await read_client_secrets(
            self.api, repository, secret_name=spec.secret_name, cert_secret_name=spec.cert_secret_name, host=spec.host
        )

    async def _current_index(self, repository: KubeObject, spec: HelmRepositorySpec) -> ChartIndex:
        """The index in memory when it is the one the status names (or no status names one), else read anew:
        Syncs that ask together while none is in memory (after a restart) wait for one read."""
        uid = _uid(repository)
        named = str(((repository.get("status") or {}).get("artifact") or {}).get("revision", ""))
        async with self._locks.setdefault(uid, asyncio.Lock()):
            known = self._indexes.get(uid)
            if known is not None and (not named or named == known.index.revision):
                return known.index
            return (await self._read_index(uid, repository, spec)).index

    async def _read_index(self, uid: str, repository: KubeObject, spec: HelmRepositorySpec) -> IndexRefresh:
        known = self._indexes.get(uid)
        access = await self.http_access(repository, spec)
        what = f"{ObjectRef.of(repository)}: {spec.url}/index.yaml"
        downloaded = await self._index_file(uid)
        wrote = False
        try:
            async with access.client() as client:
                answer = await client.index(known.etag if known else None, downloaded, self.index_limits.max_bytes)
            wrote = answer.revision is not None
            if answer.revision is None:
                if known is None:
                    raise ChartRepositoryError(f"{what}: answered 304 Not Modified to a request without an ETag")
                return IndexRefresh(known.index, changed=False)
            if known is not None and known.index.revision == answer.revision:  # the same bytes: no parse
                self._indexes[uid] = _KnownIndex(known.index, answer.etag)
                return IndexRefresh(known.index, changed=False)
            index = await asyncio.to_thread(parse_index_file, downloaded, answer.revision, what, self.index_limits)
        finally:
            if wrote:
                await asyncio.to_thread(downloaded.unlink, missing_ok=True)
        changed = known is None or known.index.revision != index.revision
        self._indexes[uid] = _KnownIndex(index, answer.etag)
        return IndexRefresh(index, changed=changed)

    async def _index_file(self, uid: str) -> Path:
        """Where a repository's index is downloaded to be parsed (one file per repository: its reads are
        serialized); the first call makes the cache's root and removes what a crashed process left."""
        if not self._index_files_ready:
            await asyncio.to_thread(_prepare_index_files, self.cache.root)
            self._index_files_ready = True
        return self.cache.root / f"{_INDEX_PREFIX}{hashlib.sha256(uid.encode()).hexdigest()[:32]}.yaml"

    async def _download(self, repository: KubeObject, spec: HelmRepositorySpec, entry: ChartEntry) -> source.Artifact:
        """The version's files; downloaded straight into the cache (once, however many ask) when its digest is
        known, else first into a scratch file whose digest then keys the cache."""
        access = await self.http_access(repository, spec)
        limit = self.cache.limits.max_bytes
        what = f"{ObjectRef.of(repository)}: {entry.name} {entry.version}"
        async with access.client() as client:
            url = client.chart_url(entry.urls[0])
            digest = entry.digest or self._digests.get(str(url))
            if digest is not None:
                known = digest

                async def download(tarball: Path) -> None:
                    await client.download(url, tarball, limit, known)

                stored = await self._store(known, download, entry.name, entry.version, entry.created, what)
                return _chart_artifact(_revision(entry, known), stored, entry.name)
            await asyncio.to_thread(self.cache.root.mkdir, parents=True, exist_ok=True)
            scratch = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix=".chart-", dir=self.cache.root))
            try:
                downloaded = scratch / _TARBALL
                digest = await client.download(url, downloaded, limit, None)
                self._digests[str(url)] = digest

                async def move(tarball: Path) -> None:
                    await asyncio.to_thread(downloaded.rename, tarball)

                stored = await self._store(digest, move, entry.name, entry.version, entry.created, what)
            finally:
                await asyncio.to_thread(shutil.rmtree, scratch, True)
        return _chart_artifact(_revision(entry, digest), stored, entry.name)

    async def _oci_chart(
        self, repository: KubeObject, spec: HelmRepositorySpec, name: str, wanted: SemverRange
    ) -> ChartVersion:
        access = await self.registry_access(repository, spec)
        chart = replace(access.repository, repository=f"{access.repository.repository}/{name}")
        what = f"{ObjectRef.of(repository)}: chart {name!r} ({chart})"
        async with access.client() as client:
            try:
                tags = await client.tags(chart.repository)
            except RepositoryNotFound:
                raise ChartNotFound(f"{what} does not exist in the registry", url=what) from None
            by_version = {tag.replace("_", "+"): tag for tag in tags}
            version = wanted.highest(by_version)
            if version is None:
                raise _no_match(what, wanted, list(by_version))
            fetched = await client.resolve(chart.repository, by_version[version])
            manifest = parse_manifest(fetched.raw, fetched.media_type, f"{chart}:{by_version[version]}")
            if not isinstance(manifest, ImageManifest):
                raise UnsupportedArtifact(f"{what}: {by_version[version]} is an index, not a Helm chart", url=what)
            layer = select_layer(manifest, HELM_CHART_LAYER, what)
            artifact = await self._obtain_blob(client, chart, name, version, layer.digest)
        return ChartVersion(artifact=artifact, name=name, version=version)

    async def _obtain_blob(
        self, client: RegistryClient, chart: OciReference, name: str, version: str, digest: str
    ) -> source.Artifact:
        async def download(tarball: Path) -> None:
            await client.blob_to(chart.repository, digest, tarball, self.cache.limits.max_bytes)

        stored = await self._store(digest, download, name, version, "", f"{chart}:{version}")
        return _chart_artifact(f"{name}@{version}@{digest}", stored, name)

    async def _store(
        self, digest: str, fetch: Callable[[Path], Awaitable[None]], name: str, version: str, created: str, what: str
    ) -> CacheEntry:
        """The cache entry of the chart whose .tgz has `digest`: `fetch` writes the .tgz (only when the cache
        lacks it), which is extracted safely and must hold `<name>/Chart.yaml`."""
        limits = self.cache.limits

        async def populate(staging: Path) -> CommitInfo:
            tarball, tree = staging / _TARBALL, staging / TREE_DIR
            await fetch(tarball)
            await asyncio.to_thread(extract_tarball, tarball, tree, limits, what)
            await asyncio.to_thread(tarball.unlink)
            if not await asyncio.to_thread((tree / name / "Chart.yaml").is_file):
                raise UnsupportedArtifact(f"{what}: the chart's tarball holds no {name}/Chart.yaml", url=what)
            return CommitInfo(commit=digest, author="", message=f"{name} {version}", committed_at=created_time(created))

        return await self.cache.obtain(digest, populate)


def _prepare_index_files(root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for leftover in root.glob(f"{_INDEX_PREFIX}*"):
        leftover.unlink(missing_ok=True)


def _choose(entries: tuple[ChartEntry, ...], wanted: SemverRange, what: str) -> ChartEntry:
    by_version = {entry.version: entry for entry in reversed(entries)}  # the first listed wins a duplicate
    chosen = wanted.highest(by_version)
    if chosen is None:
        raise _no_match(what, wanted, list(by_version))
    return by_version[chosen]


def _no_match(what: str, wanted: SemverRange, versions: list[str]) -> NoMatchingVersion:
    parsed = sorted((parsed, text) for text in versions if (parsed := tag_version(text)) is not None)
    sample = ", ".join(text for _, text in parsed[-_VERSIONS_SHOWN:]) or "none"
    return NoMatchingVersion(f"{what}: no version matches {wanted} (the newest are: {sample})", url=what)


def _revision(entry: ChartEntry, digest: str) -> str:
    return f"{entry.name}@{entry.version}@{digest}"


def _parse_revision(revision: str, ref: ObjectRef) -> tuple[str, str, str]:
    name, _, rest = revision.partition("@")
    version, _, digest = rest.partition("@")
    if not (name and version and digest.startswith("sha256:")):
        raise MoorError(f"{ref}: {revision!r} is not a chart revision (<chart>@<version>@sha256:<hex>)")
    return name, version, digest


def _chart_artifact(revision: str, entry: CacheEntry, name: str) -> source.Artifact:
    return replace(source.Artifact.of(revision, entry), path=entry.tree / name)


def _uid(repository: KubeObject) -> str:
    return str(repository["metadata"].get("uid") or ObjectRef.of(repository))
