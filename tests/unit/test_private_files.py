"""Secrets written to disk are readable by their owner alone from the first byte, and a file or link
already standing where a secret goes is never written through."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from moor.private_files import replace_private, write_private


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_secret_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    key = tmp_path / "identity"
    write_private(key, b"secret\n")
    assert key.read_bytes() == b"secret\n"
    assert mode(key) == 0o600


def test_a_file_already_there_is_an_error_and_keeps_its_content(tmp_path: Path) -> None:
    key = tmp_path / "identity"
    key.write_bytes(b"planted")
    with pytest.raises(FileExistsError):
        write_private(key, b"secret")
    assert key.read_bytes() == b"planted"


def test_a_link_already_there_is_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    (tmp_path / "identity").symlink_to(target)
    with pytest.raises(FileExistsError):
        write_private(tmp_path / "identity", b"secret")
    assert not target.exists()


def test_replacing_writes_a_fresh_private_file_in_a_folder_made_for_it(tmp_path: Path) -> None:
    key = tmp_path / "new" / "folder" / "admin.key"
    replace_private(key, b"first")
    key.chmod(0o644)
    replace_private(key, b"second")
    assert key.read_bytes() == b"second"
    assert mode(key) == 0o600
