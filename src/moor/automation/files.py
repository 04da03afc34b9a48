"""The setters applied to a work tree: every YAML file under a path, all rewritten or none."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from moor.automation.setters import (
    MARKER_KEY,
    Change,
    ImageRef,
    Marker,
    MarkerInvalid,
    PolicyName,
    apply_setters,
    find_markers,
)

YAML_SUFFIXES = (".yaml", ".yml")
MAX_FILE_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class TreeUpdate:
    files: dict[str, str]
    """Repository-relative path -> new text, for the files that change."""
    changes: tuple[Change, ...]


def marked_files(root: Path, path: str) -> dict[str, str]:
    """The YAML files under `root/path` that hold a setter marker, by repository-relative path; symbolic
    links are not followed, so nothing outside the repository is read."""
    base = root / path
    found: dict[str, str] = {}
    if not base.is_dir() or not base.resolve().is_relative_to(root.resolve()):
        return found
    for file in sorted(base.rglob("*")):
        relative = file.relative_to(root)
        if ".git" in relative.parts or file.suffix not in YAML_SUFFIXES or file.is_symlink() or not file.is_file():
            continue
        if any((root / parent).is_symlink() for parent in relative.parents if parent != Path()):
            continue
        if file.stat().st_size > MAX_FILE_BYTES:
            continue
        data = file.read_bytes()
        if MARKER_KEY.encode() not in data:
            continue
        try:
            found[relative.as_posix()] = data.decode("utf-8")
        except UnicodeDecodeError as error:
            line = data[: error.start].count(b"\n") + 1
            raise MarkerInvalid(
                relative.as_posix(), line, "the file holds setter markers but is not UTF-8 text"
            ) from None
    return found


def referenced_policies(files: Mapping[str, str]) -> set[PolicyName]:
    """Every ImagePolicy the markers of these files name (MarkerInvalid for a file that cannot be read)."""
    return {marker.policy for name, text in files.items() for marker in find_markers(text, name)}


def marker_outside(files: Mapping[str, str], namespace: str) -> tuple[str, Marker] | None:
    """The first marker (and its file) that names an ImagePolicy outside `namespace`; None when there is none."""
    for name, text in files.items():
        for marker in find_markers(text, name):
            if marker.policy.namespace != namespace:
                return name, marker
    return None


def update_tree(
    files: Mapping[str, str], images: Mapping[PolicyName, ImageRef | None], held: frozenset[PolicyName]
) -> TreeUpdate:
    """The rewrite of every marked file; the first SetterError stops it before anything is written."""
    changed: dict[str, str] = {}
    changes: list[Change] = []
    for name, text in files.items():
        rewrite = apply_setters(text, name, images, held)
        if rewrite.changes:
            changed[name] = rewrite.text
            changes.extend(rewrite.changes)
    return TreeUpdate(changed, tuple(changes))


def write_tree(root: Path, update: TreeUpdate) -> None:
    for name, text in update.files.items():
        (root / name).write_bytes(text.encode("utf-8"))
