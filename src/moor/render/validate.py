"""Documents into Kubernetes objects: Lists (typed ones too) flattened, empty documents skipped, every object
checked."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from moor.objects import Identity, KubeObject, ObjectRef
from moor.render.documents import Document
from moor.render.errors import RenderError


def collect_objects(documents: Iterable[Document]) -> list[KubeObject]:
    """The objects the documents define, in document order; refuses malformed and duplicate objects (an
    object with only a generateName, which only a hook may be, is never a duplicate)."""
    objects: list[KubeObject] = []
    first_seen: dict[Identity, str] = {}
    for document in documents:
        if document.body is None:
            continue
        for where, obj in _flatten(document.body, document.describe()):
            _check(obj, where)
            if not obj["metadata"].get("name"):  # only a generateName: a new object each time, told apart by position
                objects.append(obj)
                continue
            ref = ObjectRef.of(obj)
            earlier = first_seen.setdefault(ref.identity, where)
            if earlier is not where:
                raise RenderError(f"{ref} is defined twice: in {earlier} and in {where}")
            objects.append(obj)
    return objects


def _flatten(body: Any, where: str) -> Iterator[tuple[str, KubeObject]]:
    """A list stands for its items, unwrapped as kubectl does: `kind: List`, or a typed list such as
    `ConfigMapList` that has `items`. Anything else is one object."""
    if not isinstance(body, dict):
        raise RenderError(f"{where} is {_a(body)}, not a Kubernetes object")
    list_kind = body.get("kind")
    if not (list_kind == "List" or (isinstance(list_kind, str) and list_kind.endswith("List") and "items" in body)):
        yield where, body
        return
    items = body.get("items") or []
    if not isinstance(items, list):
        raise RenderError(f"{where} is a {list_kind} whose items are {_a(items)}, not a list")
    item_kind = list_kind.removesuffix("List")
    for number, item in enumerate(items, start=1):
        at = f"{where} item {number}"
        if item_kind and isinstance(item, dict):
            item = _typed_item(item, item_kind, body.get("apiVersion"), at)
        yield from _flatten(item, at)


def _typed_item(item: KubeObject, kind: str, api_version: Any, where: str) -> KubeObject:
    """An item of a typed list, its kind and apiVersion the list's (kind minus "List") where it has none.

    kubectl also accepts items of other kinds; Moor refuses them, since a ConfigMapList holding a Secret
    is most likely a mistake (`kind: List` holds any mix of kinds).
    """
    own_kind = item.get("kind")
    if own_kind and own_kind != kind:
        raise RenderError(f"{where} is {_a_kind(own_kind)} in a {kind}List, which holds only {kind} objects")
    missing = {key: value for key, value in (("apiVersion", api_version), ("kind", kind)) if not item.get(key)}
    return {**item, **missing} if missing else item


def _check(obj: KubeObject, where: str) -> None:
    api_version, kind, metadata = obj.get("apiVersion"), obj.get("kind"), obj.get("metadata")
    if not api_version or not isinstance(api_version, str):
        raise RenderError(f"{where} has no apiVersion")
    if not kind or not isinstance(kind, str):
        raise RenderError(f"{where} has no kind")
    if not isinstance(metadata, dict):
        raise RenderError(f"{where} ({kind}) has no metadata")
    name, namespace = metadata.get("name") or None, metadata.get("namespace")
    generate_name = metadata.get("generateName")
    if name is None and generate_name and isinstance(generate_name, str):
        name = f"{generate_name}*"
    elif not name or not isinstance(name, str):
        raise RenderError(f"{where} ({kind}) has no metadata.name")
    if namespace is not None and not isinstance(namespace, str):
        raise RenderError(f"{where} ({kind} {name}) has a metadata.namespace that is not a string")


def _a_kind(kind: Any) -> str:
    if not isinstance(kind, str):
        return f"an object of kind {kind!r}"
    return f"an {kind}" if kind[:1] in ("A", "E", "I", "O", "U") else f"a {kind}"


def _a(value: Any) -> str:
    if value is None:
        return "empty"
    names = {list: "a list", str: "a string", bool: "a boolean", int: "a number", float: "a number", dict: "a mapping"}
    return names.get(type(value), f"a {type(value).__name__}")
