"""The history that outlives the cluster: each finished deployment as a git note on the deployed commit.

Notes live under `refs/notes/moor` of the source's own repository, so whoever can read the repository
can read who deployed what, where and when, with no cluster at all (`moor audit --from-git URL`). The
note of a commit holds one JSON document per line, one line per deployment of that commit (several
clusters, Syncs or attempts may deploy the same commit); a line is never rewritten or removed.

Writing (`push_deployment_note`) fetches the notes ref alone (no file of the repository is
downloaded: the note is added to the notes tree without the annotated commit being present), appends
the line unless the same deployment is already there, commits and pushes without force. A push that
loses a race with another writer is retried on top of what won (fetch, append, push), a few times with
backoff; then `NotePushFailed`. The notes tree is flat (one file per commit, named by its id), which
`git notes` and `git log --notes=moor` read as they read their own.
"""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moor.errors import MoorError
from moor.objects import KubeObject
from moor.resources import conditions
from moor.source.auth import GitAuth
from moor.source.git_cli import GitSession
from moor.source.urls import GitUrl

NOTES_REF = "refs/notes/moor"
NOTE_SCHEMA = "moor.dev/deployment/v1"
DEPLOYMENT = "deployment"
DRIFT_CORRECTION = "drift-correction"
ROLLBACK = "rollback"
PIN = "pin"
_AUTHOR = ("Moor", "moor@localhost")
_PUSH_ATTEMPTS = 10
_LOST_RACE = ("fetch first", "non-fast-forward", "stale info", "cannot lock ref", "failed to update ref")
_NO_NOTES_YET = ("couldn't find remote ref", "no such ref")


class NotePushFailed(MoorError):
    """A deployment note could not be written to the repository (kept losing the race, or git refused)."""


def action_of(record: Mapping[str, Any]) -> str:
    """What a SyncRecord's attempt was: a deployment, a drift correction, a rollback or a pin."""
    result = str(record.get("result") or "")
    trigger = str(record.get("trigger") or "")
    if result == conditions.DRIFT_CORRECTED or trigger == "drift correction":
        return DRIFT_CORRECTION
    if result == conditions.ROLLED_BACK or trigger == ROLLBACK:
        return ROLLBACK
    if trigger == PIN:
        return PIN
    return DEPLOYMENT


def deployment_entry(record: Mapping[str, Any]) -> dict[str, Any]:
    """One SyncRecord as an audit entry: self-contained, stable field names (`moor audit -o jsonl`)."""
    spec: Mapping[str, Any] = record.get("spec") or {}
    revision = str(spec.get("revision") or "")
    return {
        "time": spec.get("finishedAt") or spec.get("startedAt") or "",
        "namespace": (record.get("metadata") or {}).get("namespace", ""),
        "sync": spec.get("sync", ""),
        "sequence": spec.get("sequence"),
        "action": action_of(spec),
        "result": spec.get("result", ""),
        "revision": revision,
        "commit": revision.rpartition(":")[2] if ":" in revision else revision,
        "author": spec.get("author", ""),
        "commitMessage": spec.get("message", ""),
        "committedAt": spec.get("committedAt", ""),
        "approvedBy": spec.get("approvedBy", ""),
        "trigger": spec.get("trigger", ""),
        "startedAt": spec.get("startedAt", ""),
        "finishedAt": spec.get("finishedAt", ""),
        "attempts": spec.get("attempts", 1),
        "rolledBackTo": spec.get("rolledBackTo", ""),
        "detail": spec.get("detail", ""),
        "changes": {
            "created": list(spec.get("created") or []),
            "updated": list(spec.get("updated") or []),
            "pruned": list(spec.get("pruned") or []),
        },
    }


@dataclass(frozen=True)
class DeploymentNote:
    """One finished deployment as written to Git: the cluster it happened in and its audit entry."""

    cluster: str
    entry: Mapping[str, Any]

    @classmethod
    def from_record(cls, record: KubeObject, cluster: str) -> DeploymentNote:
        return cls(cluster, deployment_entry(record))

    @classmethod
    def from_json(cls, line: str) -> DeploymentNote | None:
        """A note line read back; None for a line that is not one of Moor's documents."""
        try:
            document = json.loads(line)
        except ValueError:
            return None
        if not isinstance(document, dict) or document.get("schema") != NOTE_SCHEMA:
            return None
        entry = {key: value for key, value in document.items() if key not in ("schema", "cluster")}
        return cls(str(document.get("cluster") or ""), entry)

    @property
    def commit(self) -> str:
        return str(self.entry.get("commit") or "")

    @property
    def key(self) -> tuple[str, str, str, str]:
        """What makes a deployment itself: cluster, namespace, Sync and record number (and its result,
        so that a record later closed differently is a second line, not a lost one)."""
        entry = self.entry
        return (
            self.cluster,
            f"{entry.get('namespace')}/{entry.get('sync')}",
            str(entry.get("sequence")),
            str(entry.get("result")),
        )

    def to_json(self) -> str:
        return json.dumps({"schema": NOTE_SCHEMA, "cluster": self.cluster, **self.entry}, sort_keys=True)

    def as_audit_entry(self) -> dict[str, Any]:
        return {"cluster": self.cluster, **self.entry}


@dataclass(frozen=True)
class NoteTarget:
    """Where a Sync's deployment notes go: its GitRepository's URL, credentials and time limit."""

    url: str
    auth: GitAuth | None
    timeout: float = 60.0


@dataclass(frozen=True)
class NoteOutcome:
    """How a push went: the commit annotated, whether the line was new, how many pushes it took."""

    commit: str
    added: bool
    attempts: int


async def push_deployment_note(
    repository_url: str,
    auth: GitAuth | None,
    commit: str,
    note: DeploymentNote,
    *,
    timeout: float = 60.0,
    author: tuple[str, str] = _AUTHOR,
) -> NoteOutcome:
    """Appends `note` to the git note of `commit` under refs/notes/moor and pushes it, retrying a lost
    race; SourceError subclasses for an unreachable or refusing server, NotePushFailed past the retries."""
    remote = GitUrl.parse(repository_url)
    work = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="moor-notes-"))
    try:
        async with GitSession.open(remote, auth, timeout) as git:
            await git.run("init", "--quiet", work, operation="git init")
            for attempt in range(1, _PUSH_ATTEMPTS + 1):
                parent = await _fetch_notes(git, work, remote)
                lines, path = await _note_lines(git, work, commit) if parent else ([], None)
                if any(_same(line, note) for line in lines):
                    return NoteOutcome(commit, added=False, attempts=attempt)
                new_commit = await _commit_note(git, work, parent, commit, [*lines, note.to_json()], path, author)
                pushed = await git.try_run(
                    "-C", work, "push", "--quiet", remote.for_git, f"{new_commit}:{NOTES_REF}", operation="git push"
                )
                if pushed.ok:
                    return NoteOutcome(commit, added=True, attempts=attempt)
                if not any(words in pushed.stderr.lower() for words in _LOST_RACE):
                    raise git.failure("git push", pushed.stderr)
                await asyncio.sleep(random.uniform(0.05, 0.25) * attempt)
            raise NotePushFailed(
                f"the deployment note for {commit[:12]} was not pushed to {remote.redacted}: "
                f"{NOTES_REF} changed under it {_PUSH_ATTEMPTS} times in a row"
            )
    finally:
        await asyncio.to_thread(shutil.rmtree, work, True)


async def read_deployment_notes(
    repository_url: str, auth: GitAuth | None = None, *, branch: str | None = None, timeout: float = 120.0
) -> list[DeploymentNote]:
    """Every deployment note of the repository (only those on commits of `branch`, when given), in the
    order of their time; [] when the repository has no notes yet."""
    remote = GitUrl.parse(repository_url)
    work = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="moor-notes-"))
    try:
        async with GitSession.open(remote, auth, timeout) as git:
            await git.run("init", "--quiet", work, operation="git init")
            if not await _fetch_notes(git, work, remote):
                return []
            on_branch = await _branch_commits(git, work, remote, branch) if branch else None
            notes: list[DeploymentNote] = []
            for commit, file in await _checked_out_notes(git, work):
                if on_branch is not None and commit not in on_branch:
                    continue
                text = await asyncio.to_thread(file.read_text, "utf-8", "replace")
                notes.extend(note for line in text.splitlines() if (note := DeploymentNote.from_json(line)))
            return sorted(notes, key=lambda note: (str(note.entry.get("time")), note.key))
    finally:
        await asyncio.to_thread(shutil.rmtree, work, True)


def last_healthy_revision(notes: Iterable[DeploymentNote], cluster: str, namespace: str, sync: str) -> str | None:
    """The revision the newest note of this cluster's Sync says was deployed and came up healthy (a
    rollback's target counts): what a rebuilt cluster rolls back to. Notes in order of their time."""
    found: str | None = None
    for note in notes:
        entry = note.entry
        if (note.cluster, entry.get("namespace"), entry.get("sync")) != (cluster, namespace, sync):
            continue
        if entry.get("result") in conditions.HEALTHY_RESULTS and entry.get("revision"):
            found = str(entry["revision"])
        elif entry.get("result") == conditions.ROLLED_BACK and entry.get("rolledBackTo"):
            found = str(entry["rolledBackTo"])
    return found


async def _fetch_notes(git: GitSession, work: Path, remote: GitUrl) -> str | None:
    """Fetches refs/notes/moor alone; its commit, or None when the repository has none yet."""
    fetched = await git.try_run(
        "-C", work, "fetch", "--quiet", "--no-tags", remote.for_git, f"+{NOTES_REF}:{NOTES_REF}", operation="git fetch"
    )
    if not fetched.ok:
        if any(words in fetched.stderr.lower() for words in _NO_NOTES_YET):
            return None
        raise git.failure("git fetch", fetched.stderr)
    return (await git.run("-C", work, "rev-parse", NOTES_REF, operation="git rev-parse")).strip()


async def _note_files(git: GitSession, work: Path) -> list[tuple[str, str, str]]:
    """(annotated commit, note blob, path) of every note in the fetched notes tree, flat or fanned out."""
    listing = await git.run("-C", work, "ls-tree", "-r", NOTES_REF, operation="git ls-tree")
    files = []
    for line in listing.splitlines():
        meta, _, path = line.partition("\t")
        parts = meta.split()
        if len(parts) == 3 and parts[1] == "blob":
            files.append((path.replace("/", ""), parts[2], path))
    return files


async def _note_lines(git: GitSession, work: Path, commit: str) -> tuple[list[str], str | None]:
    """The lines of the note of `commit` and the path it has in the notes tree (None: no note yet)."""
    for annotated, blob, path in await _note_files(git, work):
        if annotated == commit:
            text = await git.run("-C", work, "cat-file", "blob", blob, operation="git cat-file")
            return [line for line in text.splitlines() if line.strip()], path
    return [], None


async def _commit_note(
    git: GitSession,
    work: Path,
    parent: str | None,
    commit: str,
    lines: Iterable[str],
    old_path: str | None,
    author: tuple[str, str],
) -> str:
    """A notes commit on `parent` whose note for `commit` is `lines`, every other note kept as it is."""
    note_file = work / ".git" / "moor-note"
    await asyncio.to_thread(note_file.write_text, "".join(f"{line}\n" for line in lines), "utf-8")
    blob = (await git.run("-C", work, "hash-object", "-w", note_file, operation="git hash-object")).strip()
    await git.run("-C", work, "read-tree", *((NOTES_REF,) if parent else ("--empty",)), operation="git read-tree")
    if old_path is not None and old_path != commit:
        await git.run("-C", work, "update-index", "--force-remove", old_path, operation="git update-index")
    await git.run(
        "-C", work, "update-index", "--add", "--cacheinfo", f"100644,{blob},{commit}", operation="git update-index"
    )
    tree = (await git.run("-C", work, "write-tree", operation="git write-tree")).strip()
    name, email = author
    identity = ("-c", f"user.name={name}", "-c", f"user.email={email}")
    parents = ("-p", parent) if parent else ()
    message = f"Deployment of {commit[:12]} recorded by Moor"
    created = await git.run(
        "-C", work, *identity, "commit-tree", tree, *parents, "-m", message, operation="git commit-tree"
    )
    return created.strip()


async def _checked_out_notes(git: GitSession, work: Path) -> list[tuple[str, Path]]:
    """Every note of the fetched notes ref written into the work tree at once: (annotated commit, file)."""
    await git.run("-C", work, "checkout", "--quiet", NOTES_REF, "--", ".", operation="git checkout")
    return [(path, work / path) for _, _, path in await _note_files(git, work)]


async def _branch_commits(git: GitSession, work: Path, remote: GitUrl, branch: str) -> set[str]:
    """The commits of `branch` (their history only: no trees or files are fetched where the server allows)."""
    await git.run(
        "-C", work, "fetch", "--quiet", "--no-tags", "--filter=tree:0", remote.for_git,
        f"+refs/heads/{branch}:refs/remotes/origin/{branch}", operation="git fetch",
    )  # fmt: skip
    listing = await git.run("-C", work, "rev-list", f"refs/remotes/origin/{branch}", operation="git rev-list")
    return set(listing.split())


def _same(line: str, note: DeploymentNote) -> bool:
    existing = DeploymentNote.from_json(line)
    return existing is not None and existing.key == note.key
