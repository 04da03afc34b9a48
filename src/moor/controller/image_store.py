"""The tags each ImageRepository's last scan kept, in this process, shared with the ImagePolicy reconciler.

The store also keeps, per ImageRepository, what makes the next scan cheap: what the registry accepted
(Basic, or a Bearer token until it expires: `moor.source.oci.token`) and the ETag of each page of tags.
Both are forgotten when the repository's image, credentials or certificates change. Nothing here
survives a restart, and nothing needs to: the first scan after a start fills it again, and policies
wait for it (their status keeps the tag they chose).

Credentials come from `spec.secretRef`, else from the imagePullSecrets of `spec.serviceAccountName`
(the first of them that holds credentials for the registry's host).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from moor.cluster.api import KubeApi
from moor.controller.registry_store import RegistryAccess
from moor.controller.secrets import ClientSecrets, read_client_secrets
from moor.images.names import ImageName
from moor.images.tags import KeptTags, keep_tags
from moor.objects import KubeObject, ObjectRef
from moor.resources.imagerepository import ImageRepositorySpec
from moor.source.errors import InvalidSourceSpec
from moor.source.oci.client import RegistryClient
from moor.source.oci.reference import OciReference
from moor.source.oci.tags import TagScan, scan_tags
from moor.source.oci.token import RegistryAuth

RepositoryKey = tuple[str, str]
"""(namespace, name) of an ImageRepository."""
ScanListener = Callable[[str, str], None]
"""Called with (namespace, name) when an ImageRepository's kept tags changed (or were first known)."""


@dataclass(frozen=True)
class ScannedImage:
    """What the last scan of an ImageRepository kept."""

    image: ImageName
    kept: KeptTags
    scanned_at: datetime
    unchanged: bool
    """The registry said nothing changed since the scan before (every page answered 304)."""


@dataclass
class _Memory:
    access: RegistryAccess
    auth: RegistryAuth = field(default_factory=RegistryAuth)
    scan: TagScan | None = None
    result: ScannedImage | None = None


class ImageStore:
    def __init__(self, api: KubeApi) -> None:
        self.api = api
        self._memory: dict[RepositoryKey, _Memory] = {}
        self._listeners: list[ScanListener] = []

    def subscribe(self, listener: ScanListener) -> None:
        self._listeners.append(listener)

    def scanned(self, namespace: str, name: str) -> ScannedImage | None:
        """The last scan of the ImageRepository in this process, or None before its first."""
        memory = self._memory.get((namespace, name))
        return None if memory is None else memory.result

    def forget(self, namespace: str, name: str) -> None:
        self._memory.pop((namespace, name), None)

    async def scan(self, repository: KubeObject, spec: ImageRepositorySpec) -> ScannedImage:
        """Lists the image's tags (conditionally, reusing what the registry accepted), keeps the valid ones
        not excluded, and tells the listeners when they changed."""
        ref = ObjectRef.of(repository)
        key = (ref.namespace, ref.name)
        access = await self._access(repository, spec)
        memory = self._memory.get(key)
        if memory is None or memory.access != access:
            memory = _Memory(access)
            self._memory[key] = memory
        async with _client(memory) as client:
            scan = await scan_tags(client, spec.image.repository, memory.scan)
        kept = keep_tags(scan.tags(), spec.exclusions)
        before = memory.result
        if before is not None and before.kept == kept:
            kept = before.kept  # what was derived from the tags (newest, revision) is reused
        memory.scan = scan
        memory.result = ScannedImage(spec.image, kept, datetime.now(UTC), scan.unchanged)
        if before is None or before.kept != kept:
            for listener in self._listeners:
                listener(*key)
        return memory.result

    async def digest(self, namespace: str, name: str, tag: str) -> str:
        """The manifest digest of `tag`, asked with the ImageRepository's own access."""
        memory = self._memory.get((namespace, name))
        if memory is None or memory.result is None:
            raise InvalidSourceSpec(f"the ImageRepository {namespace}/{name} has not been scanned yet")
        async with _client(memory) as client:
            return await client.digest_of(memory.result.image.repository, tag)

    async def _access(self, repository: KubeObject, spec: ImageRepositorySpec) -> RegistryAccess:
        host = spec.image.api_host
        secrets = await read_client_secrets(
            self.api,
            repository,
            secret_name=spec.secret_name or await self._pull_secret(repository, spec),
            cert_secret_name=spec.cert_secret_name,
            host=spec.image.registry,
        )
        reference = OciReference(host, spec.image.repository)
        return RegistryAccess(reference, secrets, spec.insecure, spec.timeout.total_seconds())

    async def _pull_secret(self, repository: KubeObject, spec: ImageRepositorySpec) -> str | None:
        """The first imagePullSecret of the service account that has credentials for the registry."""
        if spec.service_account_name is None:
            return None
        owner = ObjectRef.of(repository)
        account = await self.api.get(ObjectRef("", "v1", "ServiceAccount", owner.namespace, spec.service_account_name))
        if account is None:
            raise InvalidSourceSpec(
                f"{owner}: the ServiceAccount {owner.namespace}/{spec.service_account_name} does not exist"
            )
        names = [str(entry.get("name")) for entry in account.get("imagePullSecrets") or [] if entry.get("name")]
        for name in names:
            try:
                found = await read_client_secrets(
                    self.api, repository, secret_name=name, cert_secret_name=None, host=spec.image.registry
                )
            except InvalidSourceSpec:
                continue
            if found != ClientSecrets():
                return name
        raise InvalidSourceSpec(
            f"{owner}: no imagePullSecret of the ServiceAccount {spec.service_account_name} "
            f"({', '.join(names) or 'it has none'}) holds credentials for {spec.image.registry}"
        )


def _client(memory: _Memory) -> RegistryClient:
    """A client of the repository's registry that starts from (and adds to) what the registry accepted before."""
    access = memory.access
    return RegistryClient(
        access.repository.registry,
        access.secrets.credentials,
        ca_pem=access.secrets.ca_pem,
        cert_pem=access.secrets.cert_pem,
        key_pem=access.secrets.key_pem,
        timeout=access.timeout,
        insecure_http=access.insecure,
        auth=memory.auth,
    )
