"""An artifact's content as a gzip'd tarball: extracted safely, and packed so the same directory gives the same bytes.

Extraction writes into a fresh staging directory beside the target and renames it into place only once
every entry is in: a refused archive leaves nothing behind. Only regular files and directories are
extracted. Refused, with the entry's name in the message:
- paths that are absolute or hold a `..` segment, or that would be both a file and a directory;
- links of every kind, symbolic and hard (the simplest rule that is safe: no link can point outside,
  or at a file a later entry overwrites), and so a symlinked `Chart.lock` too;
- devices, FIFOs, sparse files and any other special entry;
- an entry that appears twice (a later copy would silently win over the one that was reviewed);
- more entries than `ArtifactLimits.max_files` or more content than `max_bytes`.
Decompressed bytes are counted as they are read, never taken from headers: the stream may exceed the
content it accounts for by at most a few KiB per entry (headers, long names), so a gzip bomb stops
within one buffer of its limit. Files are written 0644, or 0755 when the archive marks them executable.
"""

from __future__ import annotations

import gzip
import io
import os
import shutil
import stat
import tarfile
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from moor.source.errors import InvalidSourceSpec
from moor.source.limits import ArtifactLimits, ArtifactTooLarge, format_size
from moor.source.oci.errors import UnsafeArtifact, UnsupportedArtifact

_CHUNK = 64 * 1024
_OVERHEAD_PER_ENTRY = 4 * 1024
"""Decompressed bytes an entry may take besides its content: its header, padding, a long name."""
_OVERHEAD_SLACK = 64 * 1024
_MAX_NAME_BYTES = 4096
_MAX_SEGMENT_BYTES = 255
_SKIPPED_WHEN_PACKING = frozenset({".git"})


@dataclass(frozen=True)
class Extracted:
    files: int
    directories: int
    size: int
    """Bytes of file content written."""


def extract_tarball(archive: Path, into: Path, limits: ArtifactLimits, what: str) -> Extracted:
    """Extracts a gzip'd tarball into the new directory `into`, or refuses it and leaves nothing behind."""
    if into.exists() or into.is_symlink():
        raise FileExistsError(f"{into} exists: an artifact is extracted into a new directory")
    staging = Path(tempfile.mkdtemp(prefix=f".{into.name}.", suffix=".partial", dir=into.parent))
    try:
        extracted = _extract(archive, staging, limits, what)
        staging.rename(into)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return extracted


def pack_directory(directory: Path) -> bytes:
    """A gzip'd tarball of the files under `directory`: names sorted, times, owners and the gzip header
    zeroed, so the same files always give the same bytes (and digest). `.git` folders are left out, empty
    folders are not kept; a symbolic link or special file is refused (extraction would refuse it)."""
    if not directory.is_dir():
        raise InvalidSourceSpec(f"{directory} is not a directory to pack into an artifact")
    buffer = io.BytesIO()
    with (
        gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0) as zipped,
        tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for relative in sorted(_files_to_pack(directory)):
            path = directory / relative
            info = tarfile.TarInfo(relative)
            info.size = path.stat().st_size
            info.mode = 0o755 if path.stat().st_mode & stat.S_IXUSR else 0o644
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            with path.open("rb") as file:
                tar.addfile(info, file)
    return buffer.getvalue()


def _files_to_pack(directory: Path) -> Iterator[str]:
    for root, folders, files in os.walk(directory):
        folders[:] = [name for name in folders if name not in _SKIPPED_WHEN_PACKING]
        for name in [*folders, *files]:
            path = Path(root) / name
            relative = path.relative_to(directory).as_posix()
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode):
                raise UnsafeArtifact(
                    f"{directory} holds the symbolic link {relative!r}: artifacts carry no links (copy the file)"
                )
            if stat.S_ISREG(mode):
                yield relative
            elif not stat.S_ISDIR(mode):
                raise UnsafeArtifact(f"{directory} holds {relative!r}, which is not a regular file")


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class _CountingReader:
    """The decompressed stream, refused as soon as it runs past what the entries so far account for."""

    def __init__(self, inner: _Readable, limits: ArtifactLimits, what: str) -> None:
        self._inner = inner
        self._limits = limits
        self._what = what
        self.read_so_far = 0
        self.accounted = _OVERHEAD_SLACK

    def read(self, size: int = -1) -> bytes:
        data = self._inner.read(size if size >= 0 else _CHUNK)
        self.read_so_far += len(data)
        if self.read_so_far > self.accounted:
            raise ArtifactTooLarge(
                f"{self._what} is refused: its tarball decompresses to more than its entries account for "
                f"(over {format_size(self.read_so_far)}; a gzip bomb?)"
            )
        return data


class _Entries:
    """What the archive has created so far, to refuse duplicates, conflicts and too many entries."""

    def __init__(self, limits: ArtifactLimits, what: str) -> None:
        self._limits = limits
        self._what = what
        self._kinds: dict[str, str] = {}
        self.files = 0
        self.directories = 0
        self.size = 0

    def add(self, path: str, kind: str, size: int) -> None:
        """Records an explicit entry (`kind` is "file" or "dir") and its parents, or refuses it."""
        existing = self._kinds.get(path)
        if existing in ("file", "dir"):
            raise UnsafeArtifact(f"{self._what} is refused: its tarball holds {path!r} twice")
        if existing == "parent" and kind == "file":
            raise UnsafeArtifact(f"{self._what} is refused: {path!r} is both a file and a directory in its tarball")
        parts = path.split("/")
        for depth in range(1, len(parts)):
            parent = "/".join(parts[:depth])
            if self._kinds.get(parent) == "file":
                raise UnsafeArtifact(
                    f"{self._what} is refused: {parent!r} is both a file and a directory in its tarball"
                )
            self._kinds.setdefault(parent, "parent")
        self._kinds[path] = kind
        if kind == "file":
            self.files += 1
        else:
            self.directories += 1
        if self.files + self.directories > self._limits.max_files:
            raise ArtifactTooLarge(
                f"{self._what} is too large: it holds more than {self._limits.max_files} entries, the limit "
                "(moor run --max-artifact-files)"
            )
        if self.size + size > self._limits.max_bytes:
            raise ArtifactTooLarge(
                f"{self._what} is too large: its files take more than {format_size(self._limits.max_bytes)} "
                f"({path!r} alone declares {format_size(size)}), the limit (moor run --max-artifact-size)"
            )
        self.size += size


def _extract(archive: Path, staging: Path, limits: ArtifactLimits, what: str) -> Extracted:
    entries = _Entries(limits, what)
    try:
        with archive.open("rb") as raw, gzip.GzipFile(fileobj=raw, mode="rb") as unzipped:
            stream = _CountingReader(unzipped, limits, what)
            with tarfile.open(fileobj=stream, mode="r|") as tar:  # type: ignore[call-overload]
                for member in tar:
                    path = _entry_path(member, what)
                    if path is None:
                        continue
                    if member.isdir():
                        entries.add(path, "dir", 0)
                        (staging / path).mkdir(mode=0o755, parents=True, exist_ok=True)
                    else:
                        entries.add(path, "file", member.size)
                        stream.accounted += member.size
                        _write_file(tar, member, staging / path, what)
                    stream.accounted += _OVERHEAD_PER_ENTRY
    except (tarfile.TarError, gzip.BadGzipFile, zlib.error, EOFError) as error:
        raise UnsupportedArtifact(f"{what} is not a valid gzip'd tarball: {error}") from None
    return Extracted(files=entries.files, directories=entries.directories, size=entries.size)


def _entry_path(member: tarfile.TarInfo, what: str) -> str | None:
    """The entry's path inside the artifact, normalised (`./a//b` is `a/b`); None for the root itself."""
    name = member.name
    if member.issym() or member.islnk():
        kind = "a symbolic link" if member.issym() else "a hard link"
        raise UnsafeArtifact(
            f"{what} is refused: {name!r} in its tarball is {kind} (to {member.linkname!r}); artifacts hold no links"
        )
    if member.ischr() or member.isblk() or member.isfifo():
        kind = "a FIFO" if member.isfifo() else "a device file"
        raise UnsafeArtifact(f"{what} is refused: {name!r} in its tarball is {kind}")
    if member.issparse() or not (member.isreg() or member.isdir()):
        raise UnsafeArtifact(f"{what} is refused: {name!r} in its tarball is not a regular file or directory")
    if name.startswith("/"):
        raise UnsafeArtifact(f"{what} is refused: {name!r} in its tarball is an absolute path")
    segments = [segment for segment in name.split("/") if segment not in ("", ".")]
    if ".." in segments:
        raise UnsafeArtifact(f"{what} is refused: {name!r} in its tarball climbs out of it with '..'")
    if (
        "\0" in name
        or len(name.encode()) > _MAX_NAME_BYTES
        or any(len(segment.encode()) > _MAX_SEGMENT_BYTES for segment in segments)
    ):
        raise UnsafeArtifact(f"{what} is refused: the name {name[:200]!r}… in its tarball is not a valid path")
    if not segments:
        if member.isdir():
            return None
        raise UnsafeArtifact(f"{what} is refused: its tarball holds a file with no name")
    return "/".join(segments)


def _write_file(tar: tarfile.TarFile, member: tarfile.TarInfo, path: Path, what: str) -> None:
    source = tar.extractfile(member)
    if source is None:
        raise UnsafeArtifact(f"{what} is refused: {member.name!r} in its tarball has no content")
    path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    mode = 0o755 if member.mode & 0o111 else 0o644
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    with os.fdopen(descriptor, "wb") as target:
        while chunk := source.read(_CHUNK):
            target.write(chunk)
