"""The API's OpenAPI v3 schemas, fetched per group-version and kept while the server's hash of them holds.

`GET /openapi/v3` lists every group-version the server publishes, each with a `serverRelativeURL` that
carries a hash of its document (`/openapi/v3/apis/apps/v1?hash=...`). A group-version's document is
fetched when first asked for and kept until that hash changes. The list itself is read again when it
is older than `max_age`, or (at most every `min_refresh_interval`) when it lacks a group-version asked
for, as when a CRD was just created.

Nothing here fails a reconcile: a document that cannot be read leaves its group-version without a
schema (its kinds are then compared by field names, see `moor.plan.normalize`), says so in the log,
and is tried again after `max_age`. In memory only: one cache per API server (`KubeApi.schemas`),
shared by the controller and the CLI.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from moor.cluster.client import KubeClient
from moor.errors import MoorError
from moor.objects import split_api_version
from moor.plan.schema import GroupVersionSchema, Schemas

log = logging.getLogger(__name__)

INDEX_PATH = "/openapi/v3"
_FAILURES = (MoorError, ValueError, TimeoutError)
"""What reading a document may raise: the API's errors, a body that is not JSON, a timeout."""


def index_key(api_version: str) -> str:
    """The group-version's entry in the index: `api/v1` for the core group, `apis/apps/v1` for others."""
    group, version = split_api_version(api_version)
    return f"apis/{group}/{version}" if group else f"api/{version}"


@dataclass(frozen=True)
class _Loaded:
    url: str
    """The index's `serverRelativeURL` the document was read from (its hash included)."""
    schema: GroupVersionSchema | None
    """None when it could not be read."""
    at: float


class SchemaCache:
    """The schemas of the group-versions Moor compares, read from the API server and kept in memory."""

    def __init__(self, client: KubeClient, *, max_age: float = 60.0, min_refresh_interval: float = 2.0) -> None:
        self._client = client
        self._max_age = max_age
        self._min_refresh_interval = min_refresh_interval
        self._index: dict[str, str] = {}
        self._index_read_at: float | None = None
        self._index_failed = False
        self._loaded: dict[str, _Loaded] = {}
        self._schemas = Schemas()
        self._lock = asyncio.Lock()

    async def for_api_versions(self, api_versions: Iterable[str]) -> Schemas:
        """The schemas of every group-version read so far, these ones brought up to date first.

        The same value is returned while no document changes, so it can key what was computed under it."""
        wanted = sorted(set(api_versions))
        async with self._lock:
            changed = await self._read_index(wanted)
            now = time.monotonic()
            for api_version in wanted:
                url = self._index.get(index_key(api_version))
                if url is None:
                    continue  # not published (yet): its kinds are compared by field names
                known = self._loaded.get(api_version)
                if known is not None and known.url == url and (known.schema or now - known.at < self._max_age):
                    continue
                self._loaded[api_version] = _Loaded(url, await self._read(api_version, url), now)
                changed = True
            if changed:
                self._schemas = Schemas.of(loaded.schema for loaded in self._loaded.values() if loaded.schema)
            return self._schemas

    async def _read_index(self, wanted: list[str]) -> bool:
        """Reads the index when it is due; True when group-versions were dropped from the cache."""
        now = time.monotonic()
        age = now - self._index_read_at if self._index_read_at is not None else None
        missing = not self._index_failed and any(index_key(version) not in self._index for version in wanted)
        if age is not None and age < self._max_age and not (missing and age >= self._min_refresh_interval):
            return False
        self._index_read_at = now
        try:
            document = await self._client.request("openapi", "GET", INDEX_PATH)
        except _FAILURES as error:
            self._index_failed = True  # tried again after max_age, not at every pass
            log.warning("cannot read the API's OpenAPI index (%s): objects are compared by field names", error)
            return False
        self._index, self._index_failed = _urls(document), False
        gone = [api_version for api_version in self._loaded if index_key(api_version) not in self._index]
        for api_version in gone:
            del self._loaded[api_version]
        return bool(gone)

    async def _read(self, api_version: str, url: str) -> GroupVersionSchema | None:
        path, _, query = url.partition("?")
        params = dict(parse_qsl(query))
        try:
            document = await self._client.request("openapi", "GET", path, params=params)
        except _FAILURES as error:
            log.warning("cannot read the OpenAPI schema of %s (%s): compared by field names", api_version, error)
            return None
        if not isinstance(document, dict):
            log.warning("the OpenAPI schema of %s is not a document: compared by field names", api_version)
            return None
        return GroupVersionSchema.from_document(api_version, document, params.get("hash", url))


def _urls(document: Any) -> dict[str, str]:
    paths = document.get("paths") if isinstance(document, dict) else None
    if not isinstance(paths, dict):
        return {}
    return {
        str(key): str(entry["serverRelativeURL"])
        for key, entry in paths.items()
        if isinstance(entry, dict) and entry.get("serverRelativeURL")
    }
