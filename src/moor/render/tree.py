"""Where a Sync's path is in a checkout, what kind of directory it is, and which files it holds.

Nothing is read outside the repository: the path, and every symlink under it, must resolve inside the
checkout's root.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from moor.render.errors import RenderError

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
CHART_FILE = "Chart.yaml"
MANIFEST_SUFFIXES = frozenset((".yaml", ".yml", ".json"))


class SourceKind(enum.Enum):
    PLAIN = "plain YAML"
    KUSTOMIZATION = "kustomization"
    HELM_CHART = "Helm chart"


@dataclass(frozen=True)
class Target:
    """The directory (or single file) to render, already proven to be inside the repository."""

    root: Path
    """The repository root with symlinks resolved."""
    path: Path
    """The requested path with symlinks resolved."""
    kind: SourceKind

    @property
    def display(self) -> str:
        return relative(self.path, self.root)


def locate_target(root: Path, path: str) -> Target:
    """Resolves a Sync's `spec.path` inside the checkout at `root` and tells which kind of source it is."""
    try:
        real_root = root.resolve(strict=True)
    except OSError:
        raise RenderError(f"the repository checkout {root} does not exist") from None
    if not real_root.is_dir():
        raise RenderError(f"the repository checkout {root} is not a directory")
    if "\x00" in path:
        raise RenderError(f"the path {path!r} contains a NUL character")
    if PurePosixPath(path).is_absolute():
        raise RenderError(f"the path {path!r} must be relative to the repository root, not absolute")
    resolved = Path(os.path.realpath(real_root / path))
    if not resolved.is_relative_to(real_root):
        raise RenderError(f"the path {path!r} leads outside the repository")
    if resolved.is_dir():
        if any((resolved / name).is_file() for name in KUSTOMIZATION_FILES):
            kind = SourceKind.KUSTOMIZATION
        elif (resolved / CHART_FILE).is_file():
            kind = SourceKind.HELM_CHART
        else:
            kind = SourceKind.PLAIN
    elif resolved.is_file():
        kind = SourceKind.PLAIN
    else:
        raise RenderError(f"the path {path!r} does not exist in the repository")
    return Target(real_root, resolved, kind)


def walk_files(directory: Path, root: Path, *, include_hidden: bool) -> list[Path]:
    """Regular files under `directory` in sorted path order, following symlinks that stay inside `root`.

    A symlink resolving outside `root` is an error even if nothing would read it; symlinked directories
    that lead back to a directory already walked are skipped. Hidden entries are skipped unless asked,
    `.git` always.
    """
    files: list[Path] = []
    visited = {Path(os.path.realpath(directory))}
    pending: list[Iterator[os.DirEntry[str]]] = [_sorted_entries(directory, root)]
    while pending:
        entry = next(pending[-1], None)
        if entry is None:
            pending.pop()
            continue
        if entry.name == ".git" or (not include_hidden and entry.name.startswith(".")):
            continue
        path = Path(entry.path)
        if entry.is_symlink() and not Path(os.path.realpath(path)).is_relative_to(root):
            raise RenderError(f"{relative(path, root)} is a symlink to a place outside the repository")
        if entry.is_dir():
            real = Path(os.path.realpath(path))
            if real not in visited:
                visited.add(real)
                pending.append(_sorted_entries(path, root))
        elif entry.is_file():
            files.append(path)
    return files


def manifest_files(target: Target) -> list[Path]:
    """The YAML and JSON files a plain directory (or the single file) stands for."""
    if target.path.is_file():
        return [target.path]
    files = walk_files(target.path, target.root, include_hidden=False)
    return [path for path in files if path.suffix.lower() in MANIFEST_SUFFIXES]


def resolve_reference(base: Path, reference: str, root: Path, *, named_in: str) -> Path:
    """A path that `named_in` names relative to `base`, refused if it resolves outside `root`."""
    resolved = Path(os.path.realpath(base / reference))
    if not resolved.is_relative_to(root):
        raise RenderError(f"{named_in} names {reference!r}, which is outside the repository")
    return resolved


def relative(path: Path, root: Path) -> str:
    """How a path is shown to users: relative to the repository root, `.` for the root itself."""
    try:
        return path.relative_to(root).as_posix() or "."
    except ValueError:
        return str(path)


def _sorted_entries(directory: Path, root: Path) -> Iterator[os.DirEntry[str]]:
    try:
        with os.scandir(directory) as entries:
            return iter(sorted(entries, key=lambda entry: entry.name))
    except OSError as error:
        raise RenderError(f"{relative(directory, root)} cannot be read: {error.strerror}") from None
