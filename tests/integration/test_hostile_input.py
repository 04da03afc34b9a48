"""A hostile repository through the whole controller: refused with BuildFailed naming the cause, nothing
applied, and the controller keeps serving the other Syncs."""

from __future__ import annotations

from pathlib import Path

from tests.support.git_fixtures import GitWorkspace
from tests.support.moor_fixtures import Moor, config_map, manifest


def outside_manifests(tmp_path: Path) -> Path:
    """A directory outside every checkout holding a valid manifest (another tenant's files, say)."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "stolen.yaml").write_text(manifest(config_map("stolen", {"from": "outside"})))
    return outside


def test_a_sync_path_that_is_a_symlink_out_of_the_checkout_is_refused(
    moor: Moor, git_repo: GitWorkspace, tmp_path: Path
) -> None:
    outside = outside_manifests(tmp_path)
    git_repo.write("README.md", "the app lives elsewhere\n")
    (git_repo.work / "app").symlink_to(outside, target_is_directory=True)
    commit = git_repo.commit("app is a symlink to an absolute path")
    git_repo.push()
    moor.source_and_sync(git_repo, "./app")

    message = moor.wait_condition("sync", "app", "False", reason="BuildFailed")["message"]
    assert message == f"revision main@sha1:{commit}: the path 'app' leads outside the repository"
    assert not moor.exists("configmap", "stolen")


def test_a_path_through_a_symlinked_directory_that_climbs_out_is_refused(
    moor: Moor, git_repo: GitWorkspace, tmp_path: Path
) -> None:
    git_repo.write("README.md", "nothing here\n")
    # In the artifact cache the checkout is <cache>/<commit>/tree: `..` is the cache entry, `../..` the cache.
    (git_repo.work / "up").symlink_to(Path("..") / "..", target_is_directory=True)
    git_repo.commit("a relative symlink that climbs out")
    git_repo.push()
    moor.source_and_sync(git_repo, "./up/some/where")

    message = moor.wait_condition("sync", "app", "False", reason="BuildFailed")["message"]
    assert "the path 'up/some/where' leads outside the repository" in message


def test_a_symlinked_file_pointing_out_is_refused_and_nothing_is_applied(
    moor: Moor, git_repo: GitWorkspace, tmp_path: Path
) -> None:
    outside = outside_manifests(tmp_path)
    git_repo.write("app/mine.yaml", manifest(config_map("mine", {"v": "1"})))
    (git_repo.work / "app" / "theirs.yaml").symlink_to(outside / "stolen.yaml")
    git_repo.commit("a file that is a symlink out")
    git_repo.push()
    moor.source_and_sync(git_repo, "./app")

    message = moor.wait_condition("sync", "app", "False", reason="BuildFailed")["message"]
    assert "app/theirs.yaml is a symlink to a place outside the repository" in message
    assert not moor.exists("configmap", "mine") and not moor.exists("configmap", "stolen")


def test_a_yaml_bomb_is_refused_and_other_syncs_carry_on(moor: Moor, git_repo: GitWorkspace) -> None:
    lines = ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"{chr(98 + n)}: &{chr(98 + n)} [{', '.join([f'*{chr(97 + n)}'] * 9)}]" for n in range(8)]
    git_repo.write("bomb/bomb.yaml", "\n".join(lines) + "\n")
    # A plain scalar that looks like a binary number until its last character: typing it used to take
    # time quadratic in its length (minutes for this one), blocking the controller.
    almost_a_number = "0b" + "1" * 300_000 + "x"
    git_repo.write(
        "app/map.yaml", f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: long}}\ndata: {{x: {almost_a_number}}}\n"
    )
    git_repo.commit("a billion laughs next to a fine app")
    git_repo.push()
    moor.source_and_sync(git_repo, "./bomb", name="bomb")
    moor.apply(
        manifest(
            {
                "apiVersion": "moor.dev/v1",
                "kind": "Sync",
                "metadata": {"name": "app"},
                "spec": {"sourceRef": {"kind": "GitRepository", "name": "bomb"}, "path": "./app", "interval": "1h"},
            }
        )
    )

    message = moor.wait_condition("sync", "bomb", "False", reason="BuildFailed")["message"]
    assert "bomb/bomb.yaml is not valid YAML" in message and "aliases" in message
    moor.wait_condition("sync", "app", "True", timeout=90)
    assert (moor.get("configmap", "long") or {})["data"] == {"x": almost_a_number}
