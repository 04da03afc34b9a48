"""Bootstrap's write to the repository on real Git: one commit when the files change, none when they
do not, a new branch created, and a refused push reported instead of failing."""

from __future__ import annotations

import pytest
import yaml

from moor.bootstrap.manifests import BootstrapSpec, repository_files
from moor.bootstrap.repository import commit_files
from moor.source.auth import GitAuth
from moor.source.errors import AuthenticationFailed
from tests.support.git_fixtures import GitHttpServer, GitWorkspace

pytestmark = pytest.mark.git

AUTHOR = ("Ops", "ops@example.com")


def files_for(repo: GitWorkspace, **options: object) -> dict[str, str]:
    return repository_files(BootstrapSpec(repo.url, "main", "clusters/dev", **options))  # type: ignore[arg-type]


async def test_the_files_are_committed_once_and_a_rerun_commits_nothing(git_repo: GitWorkspace) -> None:
    git_repo.write("clusters/dev/app.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\n")
    before = git_repo.commit("the app")
    git_repo.push()
    files = files_for(git_repo)

    first = await commit_files(git_repo.url, "main", files, None, author=AUTHOR, message="Moor bootstrap")
    again = await commit_files(git_repo.url, "main", files, None, author=AUTHOR, message="Moor bootstrap")

    assert first.commit is not None and first.commit == git_repo.remote_rev_parse("main") != before
    assert again.commit is None and again.head == first.commit and not again.refused
    sync_file = yaml.safe_load_all(git_repo.remote_file("clusters/dev/moor-system/sync.yaml"))
    assert [doc["kind"] for doc in sync_file] == ["GitRepository", "Sync"]
    assert git_repo.remote_file("clusters/dev/app.yaml"), "the user's files stay"
    assert git_repo.remote_log()[0] == "Moor bootstrap"


async def test_other_options_change_the_files_and_make_a_second_commit(git_repo: GitWorkspace) -> None:
    git_repo.write("README.md", "fleet\n")
    git_repo.commit("start")
    git_repo.push()
    await commit_files(git_repo.url, "main", files_for(git_repo), None, author=AUTHOR, message="first")

    second = await commit_files(
        git_repo.url, "main", files_for(git_repo, adopt=True), None, author=AUTHOR, message="adopt"
    )

    assert second.commit is not None
    assert "force: true" in git_repo.remote_file("clusters/dev/moor-system/sync.yaml")


async def test_a_missing_branch_is_created(git_repo: GitWorkspace) -> None:
    written = await commit_files(git_repo.url, "main", files_for(git_repo), None, author=AUTHOR, message="new fleet")

    assert written.commit == git_repo.remote_rev_parse("main")


async def test_a_refused_push_is_reported_and_nothing_fails(git_repo: GitWorkspace) -> None:
    git_repo.write("README.md", "fleet\n")
    head = git_repo.commit("start")
    git_repo.push()
    git_repo.protect("main", "GH006: Protected branch update failed: permission denied")

    written = await commit_files(git_repo.url, "main", files_for(git_repo), None, author=AUTHOR, message="x")

    assert written.commit is None and written.head == head
    assert written.refused == "GH006: Protected branch update failed: permission denied"
    assert git_repo.remote_rev_parse("main") == head


async def test_the_files_are_pushed_with_the_secret_s_credentials_over_http(git_http_server: GitHttpServer) -> None:
    repo = git_http_server.create_repo()
    repo.write("README.md", "fleet\n")
    repo.commit("start")
    repo.push()
    credentials = GitAuth.from_secret(git_http_server.basic_auth_secret())

    written = await commit_files(repo.url, "main", files_for(repo), credentials, author=AUTHOR, message="bootstrap")

    assert written.commit == repo.remote_rev_parse("main")
    with pytest.raises(AuthenticationFailed):
        await commit_files(repo.url, "main", files_for(repo, adopt=True), None, author=AUTHOR, message="no")
