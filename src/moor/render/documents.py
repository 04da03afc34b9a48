"""YAML and JSON text into documents that remember where they came from, within a render's limits."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moor.render.errors import RenderError
from moor.render.request import MIB, RenderLimits
from moor.render.safe_yaml import TooManyNodes, YamlProblem, load_documents


@dataclass(frozen=True)
class Document:
    """One parsed document and where it came from, so every later error can point at it."""

    source: str
    """A file relative to the repository root, or what produced the text ("kustomize build of apps")."""
    index: int
    """1-based position of the document in its source."""
    line: int | None
    """Where the document starts, when the line means something to the user."""
    body: Any

    def describe(self) -> str:
        where = f"{self.source} document {self.index}"
        return f"{where} (line {self.line})" if self.line is not None else where


class ParseBudget:
    """Counts bytes and documents across one render, so the limits hold for the render as a whole."""

    def __init__(self, limits: RenderLimits) -> None:
        self.limits = limits
        self.bytes = 0
        self.documents = 0
        self.nodes = 0

    def take_bytes(self, size: int, source: str, *, whole_output: bool = False) -> None:
        """`whole_output`: the text is a tool's whole output, bound by the total limit only."""
        if size > self.limits.max_file_bytes and not whole_output:
            raise RenderError(f"{source} is larger than the limit of {_size(self.limits.max_file_bytes)}")
        self.bytes += size
        if self.bytes > self.limits.max_total_bytes:
            raise RenderError(
                f"the manifests exceed the limit of {_size(self.limits.max_total_bytes)} in total at {source}"
            )

    def take_document(self, source: str) -> None:
        self.documents += 1
        if self.documents > self.limits.max_documents:
            raise RenderError(f"the manifests exceed the limit of {self.limits.max_documents} documents at {source}")

    def take_nodes(self, count: int, source: str) -> None:
        self.nodes += count
        if self.nodes > self.limits.max_nodes:
            raise self.too_many_nodes(source)

    def nodes_left(self) -> int:
        return max(self.limits.max_nodes - self.nodes, 0)

    def too_many_nodes(self, source: str) -> RenderError:
        return RenderError(f"the manifests exceed the limit of {self.limits.max_nodes} YAML nodes at {source}")


def read_source(path: Path, source: str, limits: RenderLimits) -> bytes:
    """A file's bytes, refusing (before reading them) files above the per-file limit."""
    try:
        with path.open("rb") as file:
            if os.fstat(file.fileno()).st_size > limits.max_file_bytes:
                raise RenderError(f"{source} is larger than the limit of {_size(limits.max_file_bytes)}")
            return file.read(limits.max_file_bytes + 1)
    except OSError as error:
        raise RenderError(f"{source} cannot be read: {error.strerror or error}") from None


def parse_yaml(data: bytes, source: str, budget: ParseBudget, *, whole_output: bool = False) -> list[Document]:
    """Every document of a YAML stream (empty ones included, as None) in order.

    `whole_output`: the text is a tool's output, bound by the render's total size only.
    """
    budget.take_bytes(len(data), source, whole_output=whole_output)
    limits = budget.limits
    documents: list[Document] = []
    stream = load_documents(
        data, max_aliases=limits.max_aliases, max_alias_nodes=limits.max_alias_nodes, max_nodes=budget.nodes_left()
    )
    try:
        for line, body, nodes in stream:
            budget.take_document(source)
            budget.take_nodes(nodes, source)
            documents.append(Document(source, len(documents) + 1, line, body))
    except TooManyNodes:
        raise budget.too_many_nodes(source) from None
    except YamlProblem as problem:
        at = f" at line {problem.line}" if problem.line is not None else ""
        raise RenderError(f"{source} is not valid YAML{at}: {problem.message}") from None
    return documents


def parse_json(data: bytes, source: str, budget: ParseBudget) -> list[Document]:
    """A JSON file as one document."""
    budget.take_bytes(len(data), source)
    budget.take_document(source)
    try:
        body = json.loads(data, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as error:
        raise RenderError(f"{source} is not valid JSON at line {error.lineno}: {error.msg}") from None
    except _DuplicateKey as duplicate:
        cause = f"the key {duplicate.key!r} appears twice in one object"
        raise RenderError(f"{source} is not valid JSON: {cause}") from None
    except (RecursionError, UnicodeDecodeError) as error:
        cause = "it is nested too deeply" if isinstance(error, RecursionError) else "it is not UTF-8 text"
        raise RenderError(f"{source} is not valid JSON: {cause}") from None
    budget.take_nodes(_count_nodes(body), source)
    return [Document(source, 1, 1, body)]


def _count_nodes(value: Any) -> int:
    """Nodes in a parsed document, keys included, as the YAML loader counts them."""
    count, pending = 0, [value]
    while pending:
        item = pending.pop()
        count += 1
        if isinstance(item, dict):
            count += len(item)
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return count


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return result


def _size(limit: int) -> str:
    return f"{limit / MIB:g} MiB" if limit >= MIB else f"{limit} bytes"
