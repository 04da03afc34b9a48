"""How large a revision may be: a repository too big to check out is refused before its files are written.

Two checks run after the commit's objects are fetched and before anything is checked out:
1. the objects git fetched for it, as they lie on disk (`git count-objects`), must fit in `max_bytes`;
2. the commit's tree, listed with `git ls-tree -r -l` (read as a stream and stopped as soon as a limit
   is passed), must hold at most `max_files` files (symlinks included) whose sizes add up to at most
   `max_bytes`. This catches highly compressible content too (a "zip bomb" of a repository), which
   the first check cannot see.
The download itself is bounded by the GitRepository's timeout only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from moor.processes import ProcessLimits, ProcessTimedOut, run_process
from moor.source.errors import InvalidSourceSpec, SourceError
from moor.source.git_cli import run_isolated

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB
DEFAULT_MAX_BYTES = 256 * MIB
DEFAULT_MAX_FILES = 100_000
_READ_CHUNK = 64 * KIB
_MAX_RECORD = MIB
"""One ls-tree record (mode, type, id, size and path) is never this long in a repository that can be checked out."""

_UNITS = {
    "": 1,
    "k": 1000,
    "m": 1000**2,
    "g": 1000**3,
    "t": 1000**4,
    "ki": KIB,
    "mi": MIB,
    "gi": GIB,
    "ti": 1024 * GIB,
}
_SIZE = re.compile(r"\s*([0-9]+)\s*([kmgt]i?)?b?\s*", re.IGNORECASE)


class ArtifactTooLarge(SourceError):
    """A revision holds more files or bytes than the controller accepts; it is never checked out."""

    reason = "ArtifactTooLarge"


@dataclass(frozen=True)
class ArtifactLimits:
    """The most a revision may hold (`moor run --max-artifact-size`, `--max-artifact-files`)."""

    max_bytes: int = DEFAULT_MAX_BYTES
    max_files: int = DEFAULT_MAX_FILES


def parse_size(text: str) -> int:
    """A size as people write it: `268435456`, `256Mi`, `256MiB`, `1G`, `500k` (binary units with `i`)."""
    match = _SIZE.fullmatch(text)
    if match is None:
        raise InvalidSourceSpec(f"{text!r} is not a size (write e.g. 256Mi, 1Gi or a number of bytes)")
    number, unit = match.groups()
    return int(number) * _UNITS[(unit or "").lower()]


def format_size(size: int) -> str:
    for unit, factor in (("GiB", GIB), ("MiB", MIB), ("KiB", KIB)):
        if size >= factor:
            return f"{size / factor:.4g} {unit}"
    return f"{size} bytes"


@dataclass
class TreeTally:
    """Files and bytes counted so far in a streamed `git ls-tree -r -l -z`."""

    files: int = 0
    size: int = 0

    def add(self, record: bytes) -> None:
        """One NUL-terminated record: `<mode> <type> <id> <size>\\t<path>`; submodules have size `-`."""
        meta, _, _ = record.partition(b"\t")
        fields = meta.split()
        if len(fields) != 4 or fields[1] != b"blob":
            return
        self.files += 1
        if fields[3].isdigit():
            self.size += int(fields[3])

    def over(self, limits: ArtifactLimits) -> bool:
        return self.files > limits.max_files or self.size > limits.max_bytes


async def check_fetched_objects(
    git_dir: Path, env: Mapping[str, str], limits: ArtifactLimits, what: str, *, git: str, timeout: float
) -> None:
    """Refuses a revision whose fetched objects alone take more than `max_bytes` on disk."""
    output = await _run_to_end([git, "--git-dir", str(git_dir), "count-objects", "-v"], env, timeout, what)
    stored = 0
    for line in output.decode("utf-8", "replace").splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("size", "size-pack", "size-garbage") and value.strip().isdigit():
            stored += int(value.strip()) * KIB
    if stored > limits.max_bytes:
        raise ArtifactTooLarge(
            f"{what} is too large: git fetched {format_size(stored)} of objects for it, over the limit of "
            f"{format_size(limits.max_bytes)} (moor run --max-artifact-size)"
        )


async def check_tree(
    git_dir: Path, commit: str, env: Mapping[str, str], limits: ArtifactLimits, what: str, *, git: str, timeout: float
) -> TreeTally:
    """Counts the files and bytes of the commit's tree without checking it out; refuses it past a limit."""
    argv = [git, "--git-dir", str(git_dir), "ls-tree", "-r", "-l", "-z", "--full-tree", commit]
    reader = _TreeReader(limits, what)
    try:
        listed = await run_process(
            argv, what="git ls-tree", env=env, limits=ProcessLimits(timeout=timeout), on_output=reader
        )
    except ProcessTimedOut:
        raise SourceError(f"listing the files of {what} took more than {timeout:.0f}s") from None
    if listed.returncode != 0:
        raise SourceError(f"git ls-tree of {what} failed: {listed.stderr.decode('utf-8', 'replace').strip()[:400]}")
    tally = reader.finish()
    if tally.over(limits):
        raise ArtifactTooLarge(_too_large(what, tally, limits))
    return tally


class _TreeReader:
    """Counts the records of `git ls-tree -z` as they arrive; refuses the tree as soon as it is too large."""

    def __init__(self, limits: ArtifactLimits, what: str) -> None:
        self._tally = TreeTally()
        self._limits = limits
        self._what = what
        self._pending = b""

    def __call__(self, chunk: bytes) -> None:
        *records, self._pending = (self._pending + chunk).split(b"\0")
        for record in records:
            self._tally.add(record)
        if self._tally.over(self._limits):
            raise ArtifactTooLarge(_too_large(self._what, self._tally, self._limits))
        if len(self._pending) > _MAX_RECORD:
            raise ArtifactTooLarge(
                f"{self._what} is too large: its tree holds a path longer than {format_size(_MAX_RECORD)}"
            )

    def finish(self) -> TreeTally:
        """The tally, with a last record that ended without its NUL."""
        if self._pending:
            self._tally.add(self._pending)
            self._pending = b""
        return self._tally


def _too_large(what: str, tally: TreeTally, limits: ArtifactLimits) -> str:
    if tally.files > limits.max_files:
        return (
            f"{what} is too large: it holds more than {limits.max_files} files, the limit "
            "(moor run --max-artifact-files)"
        )
    return (
        f"{what} is too large: its files take more than {format_size(limits.max_bytes)}, the limit "
        "(moor run --max-artifact-size)"
    )


async def _run_to_end(argv: list[str], env: Mapping[str, str], timeout: float, what: str) -> bytes:
    try:
        output = await run_isolated(argv, env=env, timeout=timeout)
    except ProcessTimedOut:
        raise SourceError(f"measuring {what} took more than {timeout:.0f}s") from None
    if output.returncode != 0:
        raise SourceError(f"{argv[3]} of {what} failed: {output.stderr.decode('utf-8', 'replace').strip()[:400]}")
    return output.stdout
