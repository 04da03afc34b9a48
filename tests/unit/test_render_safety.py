"""A Sync's path cannot make render read outside its repository checkout."""

from __future__ import annotations

from pathlib import Path

import pytest

from moor.render import RenderError, RenderRequest, render

CONFIG_MAP = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n"


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, Path]:
    """A repository checkout next to a directory it must not reach (another tenant's checkout, say)."""
    repo, outside = tmp_path / "repo", tmp_path / "outside"
    (repo / "app").mkdir(parents=True)
    (repo / "app" / "cm.yaml").write_text(CONFIG_MAP.format(name="mine"))
    outside.mkdir()
    (outside / "secret.yaml").write_text(CONFIG_MAP.format(name="theirs"))
    return repo, outside


@pytest.mark.parametrize("path", ["..", "../outside", "app/../../outside", "./app/../.."])
async def test_paths_leading_out_with_dot_dot_are_refused(layout: tuple[Path, Path], path: str) -> None:
    repo, _ = layout
    with pytest.raises(RenderError, match=rf"^the path '{path}' leads outside the repository$"):
        await render(RenderRequest(root=repo, path=path))


async def test_dot_dot_that_stays_inside_is_fine(layout: tuple[Path, Path]) -> None:
    repo, _ = layout
    objects = await render(RenderRequest(root=repo, path="app/../app"))
    assert [obj["metadata"]["name"] for obj in objects] == ["mine"]


async def test_absolute_paths_are_refused(layout: tuple[Path, Path]) -> None:
    repo, outside = layout
    with pytest.raises(RenderError, match=r"must be relative to the repository root, not absolute"):
        await render(RenderRequest(root=repo, path=str(outside)))


async def test_a_path_that_is_a_symlink_out_is_refused(layout: tuple[Path, Path]) -> None:
    repo, outside = layout
    (repo / "link").symlink_to(outside)
    with pytest.raises(RenderError, match=r"^the path 'link' leads outside the repository$"):
        await render(RenderRequest(root=repo, path="link"))


async def test_a_symlinked_file_pointing_out_is_refused(layout: tuple[Path, Path]) -> None:
    repo, outside = layout
    (repo / "app" / "stolen.yaml").symlink_to(outside / "secret.yaml")
    with pytest.raises(RenderError, match=r"^app/stolen.yaml is a symlink to a place outside the repository$"):
        await render(RenderRequest(root=repo, path="app"))


async def test_a_symlinked_directory_pointing_out_is_refused(layout: tuple[Path, Path]) -> None:
    repo, outside = layout
    (repo / "app" / "nested").mkdir()
    (repo / "app" / "nested" / "elsewhere").symlink_to(outside, target_is_directory=True)
    with pytest.raises(RenderError, match=r"^app/nested/elsewhere is a symlink to a place outside the repository$"):
        await render(RenderRequest(root=repo, path="app"))


async def test_a_relative_symlink_climbing_out_is_refused(layout: tuple[Path, Path]) -> None:
    repo, _ = layout
    (repo / "app" / "up.yaml").symlink_to(Path("..") / ".." / "outside" / "secret.yaml")
    with pytest.raises(RenderError, match=r"^app/up.yaml is a symlink to a place outside the repository$"):
        await render(RenderRequest(root=repo, path="app"))


async def test_symlinks_inside_the_repository_are_followed_once(layout: tuple[Path, Path]) -> None:
    repo, _ = layout
    (repo / "shared").mkdir()
    (repo / "shared" / "extra.yaml").write_text(CONFIG_MAP.format(name="shared"))
    (repo / "app" / "shared").symlink_to(repo / "shared", target_is_directory=True)
    (repo / "app" / "loop").symlink_to(Path(".."), target_is_directory=True)  # leads back into the repo
    objects = await render(RenderRequest(root=repo, path="app"))
    assert sorted(obj["metadata"]["name"] for obj in objects) == ["mine", "shared"]


async def test_the_checkout_itself_may_sit_behind_a_symlink(layout: tuple[Path, Path], tmp_path: Path) -> None:
    repo, _ = layout
    (tmp_path / "current").symlink_to(repo, target_is_directory=True)
    objects = await render(RenderRequest(root=tmp_path / "current", path="app"))
    assert [obj["metadata"]["name"] for obj in objects] == ["mine"]


async def test_hidden_symlinks_are_never_read_in_plain_directories(layout: tuple[Path, Path]) -> None:
    repo, outside = layout
    (repo / "app" / ".cache").symlink_to(outside, target_is_directory=True)
    assert len(await render(RenderRequest(root=repo, path="app"))) == 1
