"""GitRepository objects against real Git servers: credentials, refs, unreachable hosts, force pushes."""

from __future__ import annotations

import base64

from tests.support.git_fixtures import GitHttpServer, GitSshServer, GitWorkspace
from tests.support.moor_fixtures import Moor, config_map, manifest


def secret(moor: Moor, name: str, data: dict[str, bytes]) -> None:
    encoded = {key: base64.b64encode(value).decode() for key, value in data.items()}
    moor.apply(manifest({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "data": encoded}))


def repository(moor: Moor, url: str, ref: str = "{branch: main}", secret_name: str | None = None) -> None:
    secret_line = f"\n  secretRef: {{name: {secret_name}}}" if secret_name else ""
    moor.apply(f"""
apiVersion: moor.dev/v1
kind: GitRepository
metadata: {{name: repo}}
spec:
  url: {url}
  ref: {ref}
  interval: 1h{secret_line}
""")


def one_commit(repo: GitWorkspace, message: str = "content") -> str:
    repo.write("a.yaml", manifest(config_map("a", {"v": message})))
    sha = repo.commit(message)
    repo.push()
    return sha


def test_http_with_basic_auth_and_wrong_password(moor: Moor, git_http_server: GitHttpServer) -> None:
    repo = git_http_server.create_repo()
    sha = one_commit(repo)
    secret(moor, "good", git_http_server.basic_auth_secret())
    repository(moor, repo.url, secret_name="good")
    moor.wait_condition("gitrepository", "repo", "True", revision=sha)

    secret(moor, "bad", {"username": b"moor", "password": b"wrong-password"})
    moor.kubectl(
        "patch",
        "gitrepository",
        "repo",
        "-n",
        moor.namespace,
        "--type=merge",
        "-p",
        '{"spec":{"secretRef":{"name":"bad"}}}',
    )
    condition = moor.wait_condition("gitrepository", "repo", "False")
    assert "authentication" in condition["message"]
    assert "wrong-password" not in condition["message"]
    status = moor.get("gitrepository", "repo")["status"]
    assert status["artifact"]["revision"].endswith(sha), "the last good artifact stays"


def test_http_with_bearer_token(moor: Moor, git_http_server: GitHttpServer) -> None:
    repo = git_http_server.create_repo()
    sha = one_commit(repo)
    secret(moor, "token", git_http_server.token_secret())
    repository(moor, repo.url, secret_name="token")
    moor.wait_condition("gitrepository", "repo", "True", revision=sha)


def test_ssh_with_key_and_known_hosts(moor: Moor, git_ssh_server: GitSshServer) -> None:
    repo = git_ssh_server.create_repo()
    sha = one_commit(repo)
    secret(moor, "ssh", git_ssh_server.auth_secret())
    repository(moor, repo.url, secret_name="ssh")
    moor.wait_condition("gitrepository", "repo", "True", revision=sha)


def test_missing_secret_is_named(moor: Moor, git_repo: GitWorkspace) -> None:
    one_commit(git_repo)
    repository(moor, git_repo.url, secret_name="nowhere")
    condition = moor.wait_condition("gitrepository", "repo", "False")
    assert "Secret" in condition["message"] and "nowhere" in condition["message"]


def test_missing_branch_and_unreachable_host(moor: Moor, git_repo: GitWorkspace) -> None:
    one_commit(git_repo)
    repository(moor, git_repo.url, ref="{branch: does-not-exist}")
    condition = moor.wait_condition("gitrepository", "repo", "False")
    assert "does-not-exist" in condition["message"]

    moor.kubectl(
        "patch",
        "gitrepository",
        "repo",
        "-n",
        moor.namespace,
        "--type=merge",
        "-p",
        '{"spec":{"url":"http://127.0.0.1:9/nothing.git","ref":{"branch":"main"}}}',
    )
    condition = moor.wait_condition("gitrepository", "repo", "False", timeout=90, revision="127.0.0.1:9")
    assert "reach" in condition["message"] or "refused" in condition["message"]


def test_tag_and_semver_refs(moor: Moor, git_repo: GitWorkspace) -> None:
    one_commit(git_repo, "one")
    git_repo.tag("v1.0.0")
    newest_one = one_commit(git_repo, "two")
    git_repo.tag("v1.4.0", message="release 1.4")
    one_commit(git_repo, "three")
    git_repo.tag("v2.0.0")
    git_repo.push()
    repository(moor, git_repo.url, ref='{semver: ">=1.0.0 <2.0.0"}')
    moor.wait_condition("gitrepository", "repo", "True", revision=f"v1.4.0@sha1:{newest_one}")


def test_force_pushed_branch_moves_the_sync(moor: Moor, git_repo: GitWorkspace) -> None:
    first = one_commit(git_repo, "first")
    one_commit(git_repo, "second")
    moor.source_and_sync(git_repo)
    moor.wait_condition("sync", "app", "True")
    assert moor.get("configmap", "a")["data"] == {"v": "second"}

    git_repo.reset_hard(first)
    git_repo.write("a.yaml", manifest(config_map("a", {"v": "rewritten"})))
    rewritten = git_repo.commit("rewritten history")
    git_repo.push(force=True)
    assert moor.reconcile().returncode == 0
    assert moor.get("configmap", "a")["data"] == {"v": "rewritten"}
    assert moor.get("sync", "app")["status"]["lastAppliedRevision"].endswith(rewritten)


def test_one_fetch_serves_several_syncs(moor: Moor, git_http_server: GitHttpServer) -> None:
    repo = git_http_server.create_repo()
    repo.write("a/x.yaml", manifest(config_map("a", {"v": "1"})))
    repo.write("b/x.yaml", manifest(config_map("b", {"v": "1"})))
    repo.commit("two paths")
    repo.push()
    secret(moor, "good", git_http_server.basic_auth_secret())
    name = repo.url.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git")
    moor.source_and_sync(repo, "./a", source_spec="secretRef: {name: good}")
    moor.apply("""
        apiVersion: moor.dev/v1
        kind: Sync
        metadata: {name: second}
        spec:
          sourceRef: {kind: GitRepository, name: app}
          path: ./b
    """)
    moor.wait_condition("sync", "app", "True")
    moor.wait_condition("sync", "second", "True")
    assert moor.exists("configmap", "a") and moor.exists("configmap", "b")
    # one ls-remote by the GitRepository, one fetch of the commit; the Syncs fetch nothing themselves
    assert git_http_server.upload_pack_sessions(name) <= 2
