"""Operations on objects by kind and name: get, list, watch, server-side apply, patch, delete."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass
from typing import Any

from moor.cluster.client import APPLY_PATCH, JSON, MERGE_PATCH, ApiError, Decode, Impersonation, KubeClient
from moor.cluster.discovery import Discovery, ResourceType
from moor.cluster.openapi import SchemaCache
from moor.errors import MoorError
from moor.objects import FIELD_MANAGER, KubeObject, ObjectRef

METADATA_ONLY = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
PAGE_SIZE = 500
"""Objects per answer of a list: a large kind arrives (and is decoded) a page at a time."""


class UnknownKind(MoorError):
    def __init__(self, ref: ObjectRef) -> None:
        super().__init__(f"{ref}: the cluster does not serve kind {ref.kind} in {ref.api_version}")
        self.ref = ref


@dataclass(frozen=True)
class ObjectList:
    items: list[KubeObject]
    resource_version: str


class KubeApi:
    """The cluster as Moor uses it. `as_user` returns a view acting as another identity."""

    def __init__(self, client: KubeClient, discovery: Discovery | None = None) -> None:
        self.client = client
        self.discovery = discovery or Discovery(client)
        self.schemas = SchemaCache(client)

    def as_user(self, impersonation: Impersonation | None) -> KubeApi:
        if impersonation is None:
            return self
        return KubeApi(self.client.impersonating(impersonation), self.discovery)

    async def resource_type(self, ref: ObjectRef) -> ResourceType:
        resource = await self.discovery.resolve_ref(ref)
        if resource is None:
            raise UnknownKind(ref)
        return resource

    async def get(self, ref: ObjectRef) -> KubeObject | None:
        resource = await self.resource_type(ref)
        try:
            obj: KubeObject = await self.client.request("get", "GET", resource.object_path(ref.namespace, ref.name))
        except ApiError as error:
            if error.not_found:
                return None
            raise
        return obj

    async def list(
        self,
        resource: ResourceType,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        decode: Decode = json.loads,
        limit: int | None = PAGE_SIZE,
    ) -> ObjectList:
        """Every object of the kind, fetched `limit` at a time (None: in one answer), so no single answer
        (nor its decoding) is larger than one page. A continue token that expired (410) restarts the list
        in one request, as kubectl and client-go do: the server cannot resume it from where it was."""
        params = {"labelSelector": label_selector} if label_selector else {}
        if field_selector:
            params["fieldSelector"] = field_selector
        path = resource.collection_path(namespace)
        items: list[KubeObject] = []
        token = ""
        while True:
            page_params = {**params, "limit": str(limit)} if limit else dict(params)
            if token:
                page_params["continue"] = token
            try:
                document = await self.client.request("list", "GET", path, params=page_params, decode=decode)
            except ApiError as error:
                if not (error.gone and token):
                    raise
                items, token, limit = [], "", None
                continue
            kind, api_version = resource.kind, resource.api_version
            items.extend({"apiVersion": api_version, "kind": kind, **item} for item in document.get("items") or [])
            metadata = document.get("metadata") or {}
            token = str(metadata.get("continue") or "")
            if not token:
                return ObjectList(items=items, resource_version=str(metadata.get("resourceVersion", "")))

    async def watch(
        self,
        resource: ResourceType,
        *,
        resource_version: str,
        namespace: str | None = None,
        label_selector: str | None = None,
        timeout_seconds: int = 300,
        decode: Decode = json.loads,
    ) -> AsyncGenerator[dict[str, Any], None]:
        """Watch events (`type`, `object`) with bookmarks; raises ApiError 410 when the version is too old."""
        params = {
            "watch": "true",
            "allowWatchBookmarks": "true",
            "resourceVersion": resource_version,
            "timeoutSeconds": str(timeout_seconds),
        }
        if label_selector:
            params["labelSelector"] = label_selector
        async for event in self.client.stream(resource.collection_path(namespace), params, decode):
            if event.get("type") == "ERROR":
                status = event.get("object") or {}
                raise ApiError.of(
                    int(status.get("code", 500)),
                    str(status.get("reason", "")),
                    str(status.get("message", "watch error")),
                )
            yield event

    async def apply(
        self, obj: KubeObject, *, dry_run: bool = False, force: bool = False, metadata_only: bool = False
    ) -> KubeObject:
        """Server-side apply as field manager `moor`; `dry_run` asks the server to validate only.

        With `metadata_only` the server answers with the object's metadata alone (a PartialObjectMetadata),
        which spares both sides encoding and decoding the rest when only the outcome matters."""
        ref = ObjectRef.of(obj)
        resource = await self.resource_type(ref)
        # Server-side apply refuses every field the schema does not declare whatever `fieldValidation` says;
        # Strict would only add a second YAML parse of the body to look for duplicate keys, which JSON from a
        # dict cannot have (and Moor's YAML loader refuses). See docs/decisions.md.
        params = {"fieldManager": FIELD_MANAGER, "fieldValidation": "Ignore"}
        if force:
            params["force"] = "true"
        if dry_run:
            params["dryRun"] = "All"
        result: KubeObject = await self.client.request(
            "dry-run" if dry_run else "apply",
            "PATCH",
            resource.object_path(ref.namespace, ref.name),
            params=params,
            body=obj,
            content_type=APPLY_PATCH,
            accept=METADATA_ONLY if metadata_only else JSON,
        )
        return result

    async def merge_patch(self, ref: ObjectRef, patch: Mapping[str, Any], *, subresource: str = "") -> KubeObject:
        resource = await self.resource_type(ref)
        path = resource.object_path(ref.namespace, ref.name) + (f"/{subresource}" if subresource else "")
        result: KubeObject = await self.client.request(
            "patch", "PATCH", path, body=dict(patch), content_type=MERGE_PATCH
        )
        return result

    async def replace_status(self, obj: KubeObject) -> KubeObject:
        """PUT the status subresource (optimistic concurrency through metadata.resourceVersion)."""
        ref = ObjectRef.of(obj)
        resource = await self.resource_type(ref)
        result: KubeObject = await self.client.request(
            "update", "PUT", resource.object_path(ref.namespace, ref.name) + "/status", body=obj
        )
        return result

    async def update(self, obj: KubeObject) -> KubeObject:
        ref = ObjectRef.of(obj)
        resource = await self.resource_type(ref)
        result: KubeObject = await self.client.request(
            "update", "PUT", resource.object_path(ref.namespace, ref.name), body=obj
        )
        return result

    async def create(self, obj: KubeObject) -> KubeObject:
        ref = ObjectRef.of(obj)
        resource = await self.resource_type(ref)
        result: KubeObject = await self.client.request(
            "create", "POST", resource.collection_path(ref.namespace), body=obj
        )
        return result

    async def delete(self, ref: ObjectRef, *, propagation: str = "Background", dry_run: bool = False) -> bool:
        """Deletes the object; False when it was already gone."""
        resource = await self.resource_type(ref)
        body: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": propagation}
        params = {"dryRun": "All"} if dry_run else {}
        try:
            await self.client.request(
                "delete", "DELETE", resource.object_path(ref.namespace, ref.name), params=params, body=body
            )
        except ApiError as error:
            if error.not_found:
                return False
            raise
        return True
