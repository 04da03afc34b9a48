"""The audit trail in Git: deployment notes pushed to refs/notes/moor of a real repository, read back
with no cluster, by Moor and by git itself; races between writers; credentials over smart HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess

import pytest
from click.testing import CliRunner

from moor.cli.audit import audit
from moor.record.git_notes import DeploymentNote, NoteOutcome, push_deployment_note, read_deployment_notes
from moor.source.auth import GitAuth
from moor.source.errors import AuthenticationFailed
from tests.support.git_fixtures import GitHttpServer, GitWorkspace, run_git
from tests.support.moor_fixtures import Moor, config_map, deployment, manifest

pytestmark = pytest.mark.git


def record(sync: str, sequence: int, commit: str, result: str = "Succeeded", finished: str = "10:00:09") -> dict:
    return {
        "metadata": {"name": f"{sync}.{sequence:06d}", "namespace": "moor-system"},
        "spec": {
            "sync": sync,
            "sequence": sequence,
            "result": result,
            "revision": f"main@sha1:{commit}",
            "author": "Ada <ada@example.com>",
            "approvedBy": "grace",
            "startedAt": "2026-12-01T10:00:00Z",
            "finishedAt": f"2026-12-01T{finished}Z",
        },
    }


def note(sync: str, sequence: int, commit: str, **fields: str) -> DeploymentNote:
    return DeploymentNote.from_record(record(sync, sequence, commit, **fields), cluster="prod-eu")


def history(git_repo: GitWorkspace, commits: int = 2) -> list[str]:
    shas = []
    for index in range(commits):
        git_repo.write("app/config.yaml", f"replicas: {index + 1}\n")
        shas.append(git_repo.commit(f"change {index}"))
    git_repo.push()
    return shas


async def test_a_note_is_written_on_the_deployed_commit_and_git_reads_it(git_repo: GitWorkspace) -> None:
    first, second = history(git_repo)

    outcome = await push_deployment_note(git_repo.url, None, second, note("guestbook", 1, second))

    assert outcome == NoteOutcome(second, added=True, attempts=1)
    shown = run_git("--git-dir", git_repo.bare, "notes", "--ref=moor", "show", second)
    document = json.loads(shown)
    assert (document["sync"], document["result"], document["cluster"]) == ("guestbook", "Succeeded", "prod-eu")
    listed = run_git("--git-dir", git_repo.bare, "notes", "--ref=moor", "list")
    assert second in listed and first not in listed
    assert git_repo.remote_rev_parse("main") == second, "the branch itself is untouched"


async def test_deployments_of_one_commit_are_appended_and_a_repeated_push_adds_nothing(git_repo: GitWorkspace) -> None:
    (commit,) = history(git_repo, 1)
    await push_deployment_note(git_repo.url, None, commit, note("guestbook", 1, commit))
    await push_deployment_note(git_repo.url, None, commit, note("frontend", 4, commit))

    again = await push_deployment_note(git_repo.url, None, commit, note("guestbook", 1, commit))

    assert not again.added
    lines = run_git("--git-dir", git_repo.bare, "notes", "--ref=moor", "show", commit).splitlines()
    assert [json.loads(line)["sync"] for line in lines] == ["guestbook", "frontend"]


async def test_writers_racing_on_the_notes_ref_lose_nothing(git_repo: GitWorkspace) -> None:
    commits = history(git_repo, 3)
    pushes = [
        push_deployment_note(git_repo.url, None, commit, note(f"sync-{index}", 1, commit, finished=f"10:00:1{index}"))
        for index, commit in enumerate(commits * 2)
    ]

    outcomes = await asyncio.gather(*pushes)

    assert all(outcome.added for outcome in outcomes)
    notes = await read_deployment_notes(git_repo.url)
    assert sorted(n.entry["sync"] for n in notes) == [f"sync-{index}" for index in range(6)]


async def test_the_audit_trail_is_read_from_the_repository_alone(git_repo: GitWorkspace) -> None:
    first, second = history(git_repo)
    await push_deployment_note(git_repo.url, None, first, note("guestbook", 1, first, finished="10:00:05"))
    await push_deployment_note(git_repo.url, None, second, note("guestbook", 2, second, result="RolledBack"))

    result = await asyncio.to_thread(CliRunner().invoke, audit, ["--from-git", git_repo.url, "-o", "jsonl"])

    assert result.exit_code == 0, result.output
    entries = [json.loads(line) for line in result.output.splitlines()]
    assert [(e["sequence"], e["commit"], e["action"]) for e in entries] == [
        (1, first, "deployment"),
        (2, second, "rollback"),
    ]
    assert entries[0]["cluster"] == "prod-eu" and entries[0]["approvedBy"] == "grace"


async def test_from_git_with_a_branch_keeps_the_notes_of_that_branch(git_repo: GitWorkspace) -> None:
    (on_main,) = history(git_repo, 1)
    git_repo.checkout("feature", create=True)
    git_repo.write("app/extra.yaml", "x: 1\n")
    on_feature = git_repo.commit("feature work")
    run_git("push", "--quiet", "origin", "feature", cwd=git_repo.work)
    await push_deployment_note(git_repo.url, None, on_main, note("prod", 1, on_main))
    await push_deployment_note(git_repo.url, None, on_feature, note("preview", 1, on_feature))

    notes = await read_deployment_notes(git_repo.url, branch="main")

    assert [n.entry["sync"] for n in notes] == ["prod"]


async def test_a_repository_without_notes_has_an_empty_trail(git_repo: GitWorkspace) -> None:
    history(git_repo, 1)
    assert await read_deployment_notes(git_repo.url) == []
    result = await asyncio.to_thread(CliRunner().invoke, audit, ["--from-git", git_repo.url])
    assert result.exit_code == 0 and "No recorded deployments" in result.output


async def test_notes_are_pushed_with_the_repository_s_credentials(git_http_server: GitHttpServer) -> None:
    repo = git_http_server.create_repo()
    (commit,) = history(repo, 1)
    credentials = GitAuth.from_secret(git_http_server.basic_auth_secret())

    await push_deployment_note(repo.url, credentials, commit, note("guestbook", 1, commit))

    assert [n.commit for n in await read_deployment_notes(repo.url, credentials)] == [commit]
    with pytest.raises(AuthenticationFailed):
        await push_deployment_note(repo.url, None, commit, note("guestbook", 2, commit))


def test_a_sync_that_opts_in_notes_each_finished_deployment_on_its_commit(moor: Moor, git_repo: GitWorkspace) -> None:
    git_repo.write("app/settings.yaml", manifest(config_map("settings", {"version": "1"})))
    deployed = git_repo.commit("version 1")
    git_repo.push()
    moor.source_and_sync(git_repo, "./app", sync_spec="history: {gitNotes: true}")
    moor.wait_condition("sync", "app", "True", timeout=120)

    def noted() -> str:
        shown = subprocess.run(
            ["git", "--git-dir", str(git_repo.bare), "notes", "--ref=moor", "show", deployed],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        return shown.stdout if shown.returncode == 0 else ""

    document = json.loads(moor.wait_for("the deployment note on the deployed commit", noted, 60).splitlines()[0])
    assert (document["namespace"], document["sync"], document["result"]) == (moor.namespace, "app", "Succeeded")
    assert document["cluster"] == (os.environ.get("MOOR_CLUSTER_NAME") or "default")
    assert git_repo.remote_rev_parse("main") == deployed, "the branch itself is untouched"
    result = CliRunner().invoke(audit, ["--from-git", git_repo.url, "-o", "jsonl"])
    assert result.exit_code == 0, result.output
    entries = [json.loads(line) for line in result.output.splitlines()]
    assert [(e["sync"], e["commit"], e["action"]) for e in entries] == [("app", deployed, "deployment")]


def test_a_note_the_repository_refuses_is_an_event_and_the_sync_stays_ready(moor: Moor, git_repo: GitWorkspace) -> None:
    git_repo.write("app/settings.yaml", manifest(config_map("settings", {"version": "1"})))
    git_repo.commit("version 1")
    git_repo.push()
    refusing = git_repo.bare / "hooks" / "pre-receive"
    refusing.write_text("#!/bin/sh\necho 'notes are not welcome here' >&2\nexit 1\n")
    refusing.chmod(0o755)
    moor.source_and_sync(git_repo, "./app", sync_spec="history: {gitNotes: true}")
    moor.wait_condition("sync", "app", "True", timeout=120)

    def failure_event() -> str:
        listed = moor.kubectl("get", "events", "-n", moor.namespace, "-o", "json").stdout
        found = [item["message"] for item in json.loads(listed)["items"] if item.get("reason") == "GitNoteFailed"]
        return found[0] if found else ""

    message = moor.wait_for("a GitNoteFailed event", failure_event, 90)
    assert "could not be written to Git" in message
    assert (moor.condition("sync", "app") or {}).get("status") == "True", "a note never fails the deployment"


def test_a_rebuilt_cluster_takes_the_last_healthy_revision_from_the_notes_and_rolls_back_to_it(
    moor: Moor, git_repo: GitWorkspace
) -> None:
    notes_and_rollback = "{history: {gitNotes: true}, rollback: {onFailure: true}, timeout: 4s}"
    git_repo.write("app/web.yaml", manifest(deployment("web"), config_map("settings", {"version": "1"})))
    healthy = git_repo.commit("version 1")
    git_repo.push()
    moor.source_and_sync(git_repo, "./app", sync_spec=notes_and_rollback)
    moor.wait_condition("sync", "app", "True", revision=healthy, timeout=120)
    moor.wait_for("the deployment note of version 1", lambda: note_of(git_repo, healthy), 60)

    # The cluster is lost: its Syncs, their history and snapshots, and what they applied are gone.
    moor.kubectl("delete", "sync", "app", "-n", moor.namespace, "--timeout=60s")
    moor.kubectl("delete", "syncrecords", "--all", "-n", moor.namespace, "--timeout=60s")
    moor.kubectl("delete", "gitrepository", "app", "-n", moor.namespace, "--timeout=60s")
    assert moor.get("deployment", "web") is None
    # Meanwhile Git moved on to a revision that never becomes healthy.
    git_repo.write(
        "app/web.yaml", manifest(deployment("web", never_ready=True), config_map("settings", {"version": "2"}))
    )
    broken = git_repo.commit("version 2: pods that never become ready")
    git_repo.push()

    moor.source_and_sync(git_repo, "./app", sync_spec=notes_and_rollback)
    condition = moor.wait_condition("sync", "app", "False", reason="RolledBack", timeout=120)
    assert broken in condition["message"] and healthy in condition["message"]
    status = moor.get("sync", "app")["status"]
    assert status["lastAppliedRevision"].endswith(healthy)
    assert moor.get("configmap", "settings")["data"] == {"version": "1"}


def note_of(git_repo: GitWorkspace, commit: str) -> str:
    shown = subprocess.run(
        ["git", "--git-dir", str(git_repo.bare), "notes", "--ref=moor", "show", commit],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return shown.stdout if shown.returncode == 0 else ""
