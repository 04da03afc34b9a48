"""The setters over a work tree: marked YAML files only, no symbolic links followed, all or nothing."""

from pathlib import Path

import pytest

from moor.automation.files import marked_files, marker_outside, update_tree, write_tree
from moor.automation.setters import ImageRef, MarkerInvalid, PolicyName, PolicyNotFound

WEB = PolicyName("apps", "web")
MARKED = 'image: web:1.0 # {"$imagepolicy": "apps:web"}\n'


def test_only_marked_yaml_files_under_the_path_are_read_and_links_are_not_followed(tmp_path: Path) -> None:
    root, outside = tmp_path / "repo", tmp_path / "outside"
    (root / "deploy" / "sub").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret.yaml").write_text(MARKED)
    (root / "deploy" / "app.yaml").write_text(MARKED)
    (root / "deploy" / "sub" / "values.yml").write_text(MARKED)
    (root / "deploy" / "plain.yaml").write_text("a: 1\n")
    (root / "deploy" / "notes.txt").write_text(MARKED)
    (root / "other.yaml").write_text(MARKED)
    (root / "deploy" / "linked.yaml").symlink_to(outside / "secret.yaml")
    (root / "deploy" / "linked-dir").symlink_to(outside)
    (root / "escape").symlink_to(outside)

    assert sorted(marked_files(root, "deploy")) == ["deploy/app.yaml", "deploy/sub/values.yml"]
    assert marked_files(root, "escape") == {}


def test_a_marked_file_that_is_not_utf8_is_refused_naming_its_line(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_bytes(b"x: 1\n" + MARKED.encode() + b"y: \xff\n")
    with pytest.raises(MarkerInvalid, match=r"^a\.yaml:3: the file holds setter markers but is not UTF-8 text"):
        marked_files(tmp_path, ".")


def test_one_bad_file_stops_the_whole_update_before_anything_is_written(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(MARKED)
    (tmp_path / "b.yaml").write_text('image: x # {"$imagepolicy": "apps:missing"}\n')
    files = marked_files(tmp_path, ".")
    with pytest.raises(PolicyNotFound):
        update_tree(files, {WEB: ImageRef.parse("web:2.0")}, frozenset())
    assert (tmp_path / "a.yaml").read_text() == MARKED

    del files["b.yaml"]
    update = update_tree(files, {WEB: ImageRef.parse("web:2.0")}, frozenset())
    write_tree(tmp_path, update)
    assert (tmp_path / "a.yaml").read_text() == MARKED.replace("1.0", "2.0")
    assert [(c.file, c.old, c.new) for c in update.changes] == [("a.yaml", "web:1.0", "web:2.0")]


def test_a_marker_naming_another_namespace_is_found_with_its_file_and_line() -> None:
    files = {"a.yaml": MARKED, "b.yaml": 'x: 1\nimage: web:1 # {"$imagepolicy": "other:web"}\n'}

    found = marker_outside(files, "apps")

    assert found is not None and found[0] == "b.yaml" and (found[1].line, str(found[1].policy)) == (2, "other/web")
    assert marker_outside({"a.yaml": MARKED}, "apps") is None
