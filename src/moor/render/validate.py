"""Documents into Kubernetes objects: Lists flattened, empty documents skipped, every object checked."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from moor.objects import KubeObject, ObjectRef
from moor.render.documents import Document
from moor.render.errors import RenderError


def collect_objects(documents: Iterable[Document]) -> list[KubeObject]:
    """The objects the documents define, in document order; refuses malformed and duplicate objects."""
    objects: list[KubeObject] = []
    first_seen: dict[tuple[str, str, str, str], str] = {}
    for document in documents:
        if document.body is None:
            continue
        for where, obj in _flatten(document.body, document.describe()):
            _check(obj, where)
            ref = ObjectRef.of(obj)
            earlier = first_seen.setdefault(ref.identity, where)
            if earlier is not where:
                raise RenderError(f"{ref} is defined twice: in {earlier} and in {where}")
            objects.append(obj)
    return objects


def _flatten(body: Any, where: str) -> Iterator[tuple[str, KubeObject]]:
    """A `kind: List` (v1) stands for its items; anything else is one object."""
    if not isinstance(body, dict):
        raise RenderError(f"{where} is {_a(body)}, not a Kubernetes object")
    if body.get("kind") == "List" and body.get("apiVersion") == "v1":
        items = body.get("items") or []
        if not isinstance(items, list):
            raise RenderError(f"{where} is a List whose items are {_a(items)}, not a list")
        for number, item in enumerate(items, start=1):
            yield from _flatten(item, f"{where} item {number}")
    else:
        yield where, body


def _check(obj: KubeObject, where: str) -> None:
    api_version, kind, metadata = obj.get("apiVersion"), obj.get("kind"), obj.get("metadata")
    if not api_version or not isinstance(api_version, str):
        raise RenderError(f"{where} has no apiVersion")
    if not kind or not isinstance(kind, str):
        raise RenderError(f"{where} has no kind")
    if not isinstance(metadata, dict):
        raise RenderError(f"{where} ({kind}) has no metadata")
    name, namespace = metadata.get("name"), metadata.get("namespace")
    if not name or not isinstance(name, str):
        raise RenderError(f"{where} ({kind}) has no metadata.name")
    if namespace is not None and not isinstance(namespace, str):
        raise RenderError(f"{where} ({kind} {name}) has a metadata.namespace that is not a string")


def _a(value: Any) -> str:
    if value is None:
        return "empty"
    names = {list: "a list", str: "a string", bool: "a boolean", int: "a number", float: "a number", dict: "a mapping"}
    return names.get(type(value), f"a {type(value).__name__}")
