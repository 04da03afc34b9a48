"""Verbs on a Sync's revisions: history, rollback (pin, release, revert in Git) and approve."""

from __future__ import annotations

import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from moor import operations
from moor.automation.message import describe_image_moves
from moor.cli.options import Target, lines_output_option, print_document, run_async, target_options
from moor.cli.syncs import fetch, ref_of, short_revision
from moor.cluster.api import KubeApi
from moor.cluster.identity import whoami
from moor.controller.source_store import SourceStore
from moor.errors import MoorError
from moor.objects import KubeObject
from moor.record.history import HistoryStore
from moor.resources import GITREPOSITORY, SYNC, GitRepositorySpec, SyncSpec
from moor.resources.fields import describe
from moor.source import ArtifactCache, revision_commit
from moor.source.revert import push_revert


class RevisionError(MoorError):
    pass


# -- history -----------------------------------------------------------------------------------------


@click.group()
def history() -> None:
    """Show past attempts to deploy, with their results."""


@history.command("sync")
@click.argument("name")
@lines_output_option("record")
@target_options
def history_sync(target: Target, name: str, output: str) -> None:
    """Every recorded attempt of the Sync NAME, oldest first, with the hooks each ran and their results."""
    raise SystemExit(run_async(_history(target, name, output)))


async def _history(target: Target, name: str, output: str) -> int:
    namespace = target.resolve_namespace()
    async with target.connect() as api:
        await fetch(api, SYNC.kind, namespace, name)
        records = [record["spec"] for record in await HistoryStore(api).list(namespace, name)]
    if output == "jsonl":  # each line self-contained
        print_document([{"namespace": namespace, **record} for record in records], output)
    elif output == "table":
        _print_history(records)
    else:
        print_document(records, output)
    return 0


def _print_history(records: list[dict[str, Any]]) -> None:
    approvals = any(record.get("approvedBy") for record in records)
    hooks = any(record.get("hooks") for record in records)
    images = [_image_moves(record) for record in records]
    columns = ["#", "REVISION", "RESULT", "STARTED", "TOOK", "CHANGED", "AUTHOR"] + (
        ["APPROVED BY"] if approvals else []
    )
    columns += ["HOOKS"] if hooks else []
    columns += ["IMAGES"] if any(images) else []
    table = Table(box=None, pad_edge=False)
    for column in columns:
        table.add_column(column, no_wrap=column not in ("AUTHOR", "APPROVED BY", "HOOKS", "IMAGES"))
    for record, moved in zip(records, images, strict=True):
        result = str(record.get("result", ""))
        style = {"Succeeded": "green", "DriftCorrected": "cyan", "InProgress": "yellow"}.get(result, "red")
        attempts = int(record.get("attempts") or 1)
        applied = len(record.get("created") or []) + len(record.get("updated") or [])
        row = [
            str(record.get("sequence", "")),
            short_revision(str(record.get("revision", ""))),
            f"[{style}]{result}[/]" + (f" (x{attempts})" if attempts > 1 else ""),
            str(record.get("startedAt", "")).replace("T", " ").rstrip("Z"),
            _took(record),
            f"+{applied} -{len(record.get('pruned') or [])}",
            str(record.get("author", "")).partition(" <")[0],
        ]
        if approvals:
            row.append(str(record.get("approvedBy", "")))
        if hooks:  # one line per hook run: `pre-upgrade Job ns/migrate (wave 0): Succeeded`
            row.append("\n".join(str(line) for line in record.get("hooks") or []))
        if any(images):
            row.append(moved)
        table.add_row(*row)
    Console().print(table if records else "No recorded attempts.")


def _image_moves(record: dict[str, Any]) -> str:
    """The images the deployed commit moved, read from the image automation's trailers in its message."""
    return describe_image_moves(
        str(record.get("message", "")), str(record.get("result", "")), str(record.get("finishedAt", ""))
    )


def _took(record: dict[str, Any]) -> str:
    try:
        started = datetime.fromisoformat(str(record["startedAt"]).replace("Z", "+00:00"))
        finished = datetime.fromisoformat(str(record["finishedAt"]).replace("Z", "+00:00"))
    except (KeyError, ValueError):
        return ""
    return f"{(finished - started).total_seconds():.0f}s"


# -- rollback ----------------------------------------------------------------------------------------


@click.group()
def rollback() -> None:
    """Return a Sync to an earlier revision."""


@rollback.command("sync")
@click.argument("name")
@click.option(
    "--to",
    "to_revision",
    default=None,
    help="The revision to return to (default: the last healthy one before the current).",
)
@click.option("--release", is_flag=True, help="Remove a pin: follow Git again.")
@click.option("--revert", is_flag=True, help="Instead of pinning, push a commit to Git that reverts to the revision.")
@click.option("--author", default="Moor <moor@localhost>", show_default=True, help="Author of the revert commit.")
@target_options
def rollback_sync(target: Target, name: str, to_revision: str | None, release: bool, revert: bool, author: str) -> None:
    """Pin the Sync NAME to an earlier healthy revision until released or until Git moves past it."""
    raise SystemExit(run_async(_rollback(target, name, to_revision, release, revert, author)))


async def _rollback(
    target: Target, name: str, to_revision: str | None, release: bool, revert: bool, author: str
) -> int:
    namespace = target.resolve_namespace()
    async with target.connect() as api:
        sync = await fetch(api, SYNC.kind, namespace, name)
        ref = ref_of(SYNC.kind, namespace, name)
        if release:
            await operations.release(api, ref)
            click.echo(f"Sync {namespace}/{name} follows Git again")
            return 0
        spec = SyncSpec.from_object(sync)
        repository = await fetch(api, spec.source_ref.kind, spec.source_ref.namespace, spec.source_ref.name)
        records = await HistoryStore(api).list(namespace, name)
        revision = operations.rollback_target(sync, records, to_revision)
        if revert:
            commit = await _revert_in_git(api, repository, revision, author, name)
            click.echo(f"pushed {commit[:12]}, reverting to {short_revision(revision)}; the Sync applies it next")
            return 0
        offered = await operations.source_revision(api, repository, spec)
        await operations.pin(api, ref, revision, offered)
    click.echo(
        f"Sync {namespace}/{name} pinned to {revision} until released "
        f"(moor rollback sync {name} --release) or until Git moves past {short_revision(offered)}"
    )
    return 0


async def _revert_in_git(api: KubeApi, repository: KubeObject, revision: str, author: str, sync_name: str) -> str:
    if repository.get("kind") != GITREPOSITORY.kind:
        raise RevisionError(f"--revert pushes to Git, but Sync {sync_name} reads {describe(repository)}")
    spec = GitRepositorySpec.from_object(repository)
    if not spec.ref.branch:
        raise RevisionError(
            f"{GITREPOSITORY.kind} {repository['metadata']['name']} follows {spec.ref}, "
            "not a branch: --revert needs a branch to push to"
        )
    with tempfile.TemporaryDirectory(prefix="moor-cli-") as scratch:
        access = await SourceStore(api, ArtifactCache(Path(scratch))).access(repository, spec)
    name, _, email = author.partition("<")
    target = revision_commit(revision)
    message = f"Revert to {target[:12]}\n\nRolled back Sync {sync_name} to {revision} (moor rollback --revert)."
    return await push_revert(
        spec.url,
        spec.ref.branch,
        target,
        access.auth,
        author=(name.strip() or "Moor", email.rstrip(">").strip() or "moor@localhost"),
        message=message,
        timeout=access.timeout,
    )


# -- approve -----------------------------------------------------------------------------------------


@click.group()
def approve() -> None:
    """Let a revision that waits for approval through."""


@approve.command("sync")
@click.argument("name")
@click.option("--revision", required=True, help="The waiting revision (full, or its commit id or a prefix of it).")
@target_options
def approve_sync(target: Target, name: str, revision: str) -> None:
    """Approve the revision the Sync NAME waits with; records who approved it."""
    raise SystemExit(run_async(_approve(target, name, revision)))


async def _approve(target: Target, name: str, revision: str) -> int:
    namespace = target.resolve_namespace()
    async with target.connect() as api:
        sync = await fetch(api, SYNC.kind, namespace, name)
        approver = await whoami(api)
        pending = await operations.approve(api, sync, revision, approver)
    click.echo(f"approved {pending} for Sync {namespace}/{name} as {approver}")
    return 0
