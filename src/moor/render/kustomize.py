"""Kustomizations, built by the real `kustomize`, after proving they stay inside the repository and offline.

kustomize already keeps the files one kustomization loads inside that kustomization's directory (its
default load restrictor, which resolves symlinks). Two things it allows are refused here: naming a
directory outside the repository as a resource, component, generator... (another tenant's checkout
sits next to this one in the artifact cache), and fetching anything over the network (remote bases,
http(s) files), which would make the result depend on more than the commit.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from moor.binaries import locate
from moor.render.documents import Document, ParseBudget, parse_yaml, read_source
from moor.render.errors import RenderError
from moor.render.request import RenderLimits
from moor.render.tool import run_tool, scratch_directory, tool_environment
from moor.render.tree import KUSTOMIZATION_FILES, Target, relative, resolve_reference

_DIRECTORY_FIELDS = ("resources", "bases", "components", "generators", "transformers", "validators")
"""Fields whose entries may name another kustomization directory (or a file, or inline YAML)."""
_FILE_FIELDS = ("crds", "configurations", "patchesStrategicMerge")
_PATH_ITEM_FIELDS = ("patches", "patchesJson6902", "replacements")
_GENERATOR_FIELDS = ("configMapGenerator", "secretGenerator")


async def build_kustomization(target: Target, limits: RenderLimits, budget: ParseBudget) -> list[Document]:
    """`kustomize build` of the target directory, as documents."""
    await asyncio.to_thread(check_kustomization, target.path, target.root, limits)
    kustomize = locate("kustomize")
    what = f"kustomize build of {target.display}"
    async with scratch_directory("moor-kustomize-") as scratch:
        output = await run_tool(
            [str(kustomize), "build", "--load-restrictor", "LoadRestrictionsRootOnly", str(target.path)],
            what=what,
            cwd=target.path,
            env=tool_environment(scratch),
            time_limit=limits.tool_timeout,
            max_output=limits.max_total_bytes,
            root=target.root,
        )
    documents = await asyncio.to_thread(parse_yaml, output, what, budget, whole_output=True)
    return [dataclasses.replace(document, line=None) for document in documents]


def check_kustomization(directory: Path, root: Path, limits: RenderLimits) -> None:
    """Refuses a kustomization (or one it names) that reaches outside the repository or the network."""
    pending = [directory]
    checked: set[Path] = set()
    while pending:
        current = pending.pop()
        if current in checked:
            continue
        checked.add(current)
        file = kustomization_file(current)
        if file is None:
            continue  # kustomize will say that the directory holds no kustomization
        where = relative(file, root)
        spec = _read_kustomization(file, where, limits)
        for field, reference in _directory_references(spec):
            if "\n" in reference:
                continue  # inline configuration, not a path
            _refuse_remote(field, reference, where)
            resolved = resolve_reference(current, reference, root, named_in=where)
            if not resolved.exists():
                raise RenderError(f"{where} names {reference!r} in {field}, which does not exist in the repository")
            if resolved.is_dir():
                pending.append(resolved)
        for field, reference in _file_references(spec):
            _refuse_remote(field, reference, where)
            resolve_reference(current, reference, root, named_in=where)


def kustomization_file(directory: Path) -> Path | None:
    for name in KUSTOMIZATION_FILES:
        if (directory / name).is_file():
            return directory / name
    return None


def _read_kustomization(file: Path, where: str, limits: RenderLimits) -> dict[str, Any]:
    documents = parse_yaml(read_source(file, where, limits), where, ParseBudget(limits))
    spec = documents[0].body if documents else None
    if spec is None:
        return {}
    if not isinstance(spec, dict):
        raise RenderError(f"{where} is not a kustomization: it is not a mapping")
    return spec


def _refuse_remote(field: str, reference: str, where: str) -> None:
    if "://" in reference or reference.startswith("git@"):
        raise RenderError(
            f"{where} names the remote {reference!r} in {field}; only paths inside the repository are allowed"
        )


def _directory_references(spec: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for field in _DIRECTORY_FIELDS:
        yield from ((field, entry) for entry in _list(spec, field) if isinstance(entry, str))


def _file_references(spec: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """Every file path a kustomization names outside `_DIRECTORY_FIELDS`."""
    for field in _FILE_FIELDS:
        for entry in _list(spec, field):
            if isinstance(entry, str) and "\n" not in entry:
                yield field, entry
    for field in _PATH_ITEM_FIELDS:
        for item in _list(spec, field):
            if isinstance(item, dict) and isinstance(item.get("path"), str):
                yield field, item["path"]
    for field in _GENERATOR_FIELDS:
        for generator in _list(spec, field):
            if not isinstance(generator, dict):
                continue
            for entry in [*_list(generator, "files"), *_list(generator, "envs"), generator.get("env")]:
                if isinstance(entry, str):
                    yield field, entry.partition("=")[2] or entry  # files: [key=path] or [path]
    openapi = spec.get("openapi")
    if isinstance(openapi, dict) and isinstance(openapi.get("path"), str):
        yield "openapi", openapi["path"]


def _list(mapping: dict[str, Any], field: str) -> list[Any]:
    value = mapping.get(field)
    return value if isinstance(value, list) else []
