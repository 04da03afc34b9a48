"""Fetched commits: the `Artifact` a reconcile renders from, and the on-disk cache keyed by commit.

Layout of the cache (disposable: delete it at any time when nothing runs):

    <root>/<commit>/tree/         the checked-out files, without .git
    <root>/<commit>/git/          the shallow repository they came from (for signature checks)
    <root>/<commit>/commit.json   author, message and commit time
    <root>/.staging-*/            fetches in progress, renamed into place when complete
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from moor.source.limits import ArtifactLimits, ArtifactTooLarge
from moor.source.verify import Signatures

TREE_DIR, GIT_DIR, METADATA_FILE = "tree", "git", "commit.json"
_STAGING_PREFIX = ".staging-"
_STALE_STAGING_SECONDS = 3600.0


@dataclass(frozen=True)
class CommitInfo:
    """What a commit says about itself."""

    commit: str
    author: str
    """`Name <email>`"""
    message: str
    committed_at: datetime
    """The committer's time, in UTC."""


@dataclass(frozen=True)
class Artifact:
    """One fetched revision: its files at `path` (no .git inside) and its commit's metadata."""

    revision: str
    commit: str
    path: Path
    author: str
    message: str
    committed_at: datetime
    signatures: Signatures | None = None
    """The trusted signatures found, when the fetch was asked to verify them."""

    @property
    def git_dir(self) -> Path:
        """The shallow repository the files came from (where signatures are checked)."""
        return self.path.parent / GIT_DIR

    @classmethod
    def of(cls, revision: str, entry: CacheEntry) -> Artifact:
        info = entry.info
        return cls(
            revision=revision,
            commit=info.commit,
            path=entry.tree,
            author=info.author,
            message=info.message,
            committed_at=info.committed_at,
        )


@dataclass(frozen=True)
class CacheEntry:
    info: CommitInfo
    directory: Path

    @property
    def tree(self) -> Path:
        return self.directory / TREE_DIR

    @property
    def git_dir(self) -> Path:
        return self.directory / GIT_DIR


Populate = Callable[[Path], Awaitable[CommitInfo]]
"""Fills a staging directory with `tree/` and `git/` for one commit and says what the commit is."""


class ArtifactCache:
    """Checked-out commits on disk, keyed by commit id, at most `max_entries` of them.

    A commit already here costs no network I/O. Concurrent requests for one commit share one fetch.
    When a new entry makes the cache too big, the least recently used entries go (never one in use).
    A commit over `limits` is never stored, and is refused again without being fetched again.
    """

    def __init__(self, root: Path, max_entries: int = 16, limits: ArtifactLimits | None = None) -> None:
        if max_entries < 1:
            raise ValueError("an artifact cache keeps at least one entry")
        self.root = root
        self.max_entries = max_entries
        self.limits = limits or ArtifactLimits()
        self._too_large: dict[str, ArtifactTooLarge] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._waiting: dict[str, int] = {}
        self._prepared = False

    async def get(self, commit: str) -> CacheEntry | None:
        """The cached entry for a commit, marked as just used; None when it is not here."""
        return await asyncio.to_thread(self._read_entry, commit)

    async def obtain(self, commit: str, populate: Populate) -> CacheEntry:
        """The entry for a commit, populated first if it is not cached yet (once, however many ask)."""
        with self._claim(commit) as lock:
            async with lock:
                entry = await self.get(commit)
                if entry is not None:
                    return entry
                if commit in self._too_large:
                    raise self._too_large[commit]
                try:
                    entry = await self._store(commit, populate)
                except ArtifactTooLarge as error:
                    self._too_large[commit] = error  # commits never change: neither will the answer
                    raise
        await self.evict()
        return entry

    async def evict(self, keep: int | None = None) -> list[str]:
        """Removes the least recently used entries beyond `keep` (default `max_entries`); returns them."""
        keep = self.max_entries if keep is None else keep
        in_use = set(self._locks)
        return await asyncio.to_thread(self._evict, keep, in_use)

    async def commits(self) -> list[str]:
        """The cached commits, most recently used first."""
        entries = await asyncio.to_thread(self._entries_by_recency)
        return [path.name for path in entries]

    @contextlib.contextmanager
    def _claim(self, commit: str) -> Iterator[asyncio.Lock]:
        lock = self._locks.setdefault(commit, asyncio.Lock())
        self._waiting[commit] = self._waiting.get(commit, 0) + 1
        try:
            yield lock
        finally:
            self._waiting[commit] -= 1
            if not self._waiting[commit]:
                del self._waiting[commit], self._locks[commit]

    async def _store(self, commit: str, populate: Populate) -> CacheEntry:
        if not self._prepared:
            await asyncio.to_thread(self._prepare)
            self._prepared = True
        staging = Path(
            await asyncio.to_thread(tempfile.mkdtemp, prefix=f"{_STAGING_PREFIX}{commit[:12]}-", dir=self.root)
        )
        try:
            info = await populate(staging)
            return await asyncio.to_thread(self._commit_staging, staging, info)
        finally:
            await asyncio.to_thread(shutil.rmtree, staging, True)

    def _prepare(self) -> None:
        """Creates the root and removes staging directories a crashed process left behind."""
        self.root.mkdir(parents=True, exist_ok=True)
        now = time.time()
        for path in self.root.glob(f"{_STAGING_PREFIX}*"):
            with contextlib.suppress(OSError):
                if now - path.stat().st_mtime > _STALE_STAGING_SECONDS:
                    shutil.rmtree(path, ignore_errors=True)

    def _commit_staging(self, staging: Path, info: CommitInfo) -> CacheEntry:
        metadata = {
            "commit": info.commit,
            "author": info.author,
            "message": info.message,
            "committedAt": info.committed_at.isoformat(),
        }
        (staging / METADATA_FILE).write_text(json.dumps(metadata, indent=2), encoding="utf-8")
        destination = self.root / info.commit
        try:
            staging.rename(destination)
        except OSError:
            # Another process stored the same commit first: theirs is as good as ours.
            if not (destination / METADATA_FILE).is_file():
                raise
        return CacheEntry(info=info, directory=destination)

    def _read_entry(self, commit: str) -> CacheEntry | None:
        directory = self.root / commit
        try:
            metadata = json.loads((directory / METADATA_FILE).read_text(encoding="utf-8"))
            info = CommitInfo(
                commit=str(metadata["commit"]),
                author=str(metadata["author"]),
                message=str(metadata["message"]),
                committed_at=datetime.fromisoformat(str(metadata["committedAt"])),
            )
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError):
            shutil.rmtree(directory, ignore_errors=True)  # a damaged entry is fetched anew
            return None
        with contextlib.suppress(OSError):
            os.utime(directory)
        return CacheEntry(info=info, directory=directory)

    def _entries_by_recency(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        entries = [p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")]
        return sorted(entries, key=lambda p: p.stat().st_mtime_ns, reverse=True)

    def _evict(self, keep: int, in_use: set[str]) -> list[str]:
        evicted = []
        for path in self._entries_by_recency()[keep:]:
            if path.name in in_use:
                continue
            shutil.rmtree(path, ignore_errors=True)
            evicted.append(path.name)
        return evicted
