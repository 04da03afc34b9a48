"""An artifact's tarball: what is extracted, what is refused (nothing left behind), and reproducible packing."""

from __future__ import annotations

import gzip
import io
import os
import stat
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from moor.source import ArtifactLimits, ArtifactTooLarge
from moor.source.oci import UnsafeArtifact, UnsupportedArtifact, extract_tarball, pack_directory

WHAT = "oci://host/app:1.0"
Entry = Callable[[tarfile.TarFile], None]


def regular(name: str, content: bytes = b"kind: ConfigMap\n", mode: int = 0o644) -> Entry:
    def add(tar: tarfile.TarFile) -> None:
        info = tarfile.TarInfo(name)
        info.size, info.mode = len(content), mode
        tar.addfile(info, io.BytesIO(content))

    return add


def special(name: str, kind: bytes, linkname: str = "") -> Entry:
    def add(tar: tarfile.TarFile) -> None:
        info = tarfile.TarInfo(name)
        info.type, info.linkname = kind, linkname
        tar.addfile(info)

    return add


def archive(tmp_path: Path, *entries: Entry, pax: dict[str, str] | None = None) -> Path:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT, pax_headers=pax) as tar:
        for add in entries:
            add(tar)
    path = tmp_path / "layer.tar.gz"
    path.write_bytes(gzip.compress(buffer.getvalue()))
    return path


def refused_and_nothing_left(tmp_path: Path, path: Path, error: type[Exception], match: str, **limits: int) -> None:
    into = tmp_path / "artifact"
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(error, match=match) as raised:
        extract_tarball(path, into, ArtifactLimits(**limits), WHAT)
    assert WHAT in str(raised.value)
    assert not into.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == before, "a staging directory was left behind"


def test_files_and_folders_are_extracted_with_normalised_names(tmp_path: Path) -> None:
    path = archive(
        tmp_path,
        special("./", tarfile.DIRTYPE),
        special("./apps", tarfile.DIRTYPE),
        regular("./apps/web.yaml", b"web"),
        regular("apps//db/db.yaml", b"db"),
        regular("hooks/run.sh", b"#!/bin/sh\n", mode=0o4755),
    )
    into = tmp_path / "artifact"
    extracted = extract_tarball(path, into, ArtifactLimits(), WHAT)
    assert (into / "apps" / "web.yaml").read_bytes() == b"web"
    assert (into / "apps" / "db" / "db.yaml").read_bytes() == b"db"
    assert stat.S_IMODE((into / "hooks" / "run.sh").stat().st_mode) & 0o7000 == 0, "setuid must not survive"
    assert (into / "hooks" / "run.sh").stat().st_mode & stat.S_IXUSR
    assert not (into / "apps" / "web.yaml").stat().st_mode & stat.S_IXUSR
    assert (extracted.files, extracted.directories, extracted.size) == (3, 1, len(b"web" + b"db" + b"#!/bin/sh\n"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["artifact", "layer.tar.gz"]


@pytest.mark.parametrize(
    ("entry", "match"),
    [
        (regular("../evil.yaml"), r"'../evil.yaml' in its tarball climbs out of it"),
        (regular("apps/../../evil.yaml"), "climbs out of it with '..'"),
        (regular("/etc/evil.yaml"), "'/etc/evil.yaml' in its tarball is an absolute path"),
        (special("Chart.lock", tarfile.SYMTYPE, "/etc/passwd"), r"'Chart.lock' in its tarball is a symbolic link"),
        (special("charts/app/Chart.lock", tarfile.SYMTYPE, "../../x"), "is a symbolic link"),
        (special("apps", tarfile.SYMTYPE, "/"), "is a symbolic link"),
        (special("copy.yaml", tarfile.LNKTYPE, "apps/web.yaml"), "is a hard link"),
        (special("dev/null", tarfile.CHRTYPE), "is a device file"),
        (special("dev/sda", tarfile.BLKTYPE), "is a device file"),
        (special("pipe", tarfile.FIFOTYPE), "is a FIFO"),
    ],
)
def test_an_unsafe_entry_refuses_the_whole_artifact(tmp_path: Path, entry: Entry, match: str) -> None:
    path = archive(tmp_path, regular("apps/web.yaml"), entry, regular("apps/z.yaml"))
    refused_and_nothing_left(tmp_path, path, UnsafeArtifact, match)
    assert not (tmp_path / "evil.yaml").exists()


def test_a_name_twice_is_refused(tmp_path: Path) -> None:
    path = archive(tmp_path, regular("apps/web.yaml", b"reviewed"), regular("apps/web.yaml", b"swapped"))
    refused_and_nothing_left(tmp_path, path, UnsafeArtifact, "holds 'apps/web.yaml' twice")


def test_a_name_twice_spelt_differently_is_refused(tmp_path: Path) -> None:
    path = archive(tmp_path, regular("apps/web.yaml"), regular("./apps//web.yaml"))
    refused_and_nothing_left(tmp_path, path, UnsafeArtifact, "holds 'apps/web.yaml' twice")


def test_a_file_that_is_also_a_folder_is_refused(tmp_path: Path) -> None:
    path = archive(tmp_path, regular("apps"), regular("apps/web.yaml"))
    refused_and_nothing_left(tmp_path, path, UnsafeArtifact, "'apps' is both a file and a directory")


def test_an_over_size_member_is_refused_before_it_is_written(tmp_path: Path) -> None:
    path = archive(tmp_path, regular("small.yaml", b"x" * 100), regular("huge.bin", b"\0" * 300_000))
    refused_and_nothing_left(tmp_path, path, ArtifactTooLarge, r"'huge.bin' alone declares", max_bytes=200_000)


def test_too_many_entries_are_refused(tmp_path: Path) -> None:
    path = archive(tmp_path, *(regular(f"f{n}.yaml") for n in range(6)))
    refused_and_nothing_left(tmp_path, path, ArtifactTooLarge, "more than 5 entries", max_files=5)


def test_a_gzip_bomb_is_stopped_by_counting_what_it_decompresses_to(tmp_path: Path) -> None:
    """A 16 MiB extended header compresses to a few KiB and declares no content: headers alone cannot tell."""
    path = archive(tmp_path, regular("a.yaml"), pax={"comment": "A" * (16 * 1024 * 1024)})
    assert path.stat().st_size < 100_000
    refused_and_nothing_left(tmp_path, path, ArtifactTooLarge, "decompresses to more than its entries account for")


def test_the_content_limit_counts_every_member(tmp_path: Path) -> None:
    path = archive(tmp_path, *(regular(f"f{n}.bin", b"\0" * 40_000) for n in range(6)))
    refused_and_nothing_left(tmp_path, path, ArtifactTooLarge, "its files take more than", max_bytes=200_000)


@pytest.mark.parametrize(
    "content",
    [b"", b"plain text, not gzip", gzip.compress(b"not a tar" * 100)],
    ids=["empty", "plain text", "gzip, not tar"],
)
def test_something_else_than_a_gzip_tarball_is_unsupported(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "layer.tar.gz"
    path.write_bytes(content)
    refused_and_nothing_left(tmp_path, path, UnsupportedArtifact, "is not a valid gzip'd tarball")


def test_a_truncated_tarball_is_unsupported(tmp_path: Path) -> None:
    path = archive(tmp_path, regular("a.yaml", os.urandom(50_000)))
    path.write_bytes(path.read_bytes()[:20_000])
    refused_and_nothing_left(tmp_path, path, UnsupportedArtifact, "is not a valid gzip'd tarball")


def test_extraction_needs_a_new_directory(tmp_path: Path) -> None:
    path = archive(tmp_path, regular("a.yaml"))
    (tmp_path / "artifact").mkdir()
    with pytest.raises(FileExistsError):
        extract_tarball(path, tmp_path / "artifact", ArtifactLimits(), WHAT)


def make_tree(root: Path) -> Path:
    (root / "apps" / "db").mkdir(parents=True)
    (root / "apps" / "web.yaml").write_text("kind: Deployment\n")
    (root / "apps" / "db" / "db.yaml").write_text("kind: StatefulSet\n")
    (root / "run.sh").write_text("#!/bin/sh\n")
    (root / "run.sh").chmod(0o755)
    (root / ".git").mkdir()
    (root / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    return root


def test_packing_the_same_files_always_gives_the_same_bytes(tmp_path: Path) -> None:
    first = make_tree(tmp_path / "one")
    second = make_tree(tmp_path / "two")
    os.utime(second / "apps" / "web.yaml", (1_700_000_000, 1_700_000_000))
    assert pack_directory(first) == pack_directory(second)
    (second / "apps" / "web.yaml").write_text("kind: Deployment\nchanged: true\n")
    assert pack_directory(first) != pack_directory(second)


def test_a_packed_directory_extracts_to_the_same_files_without_git(tmp_path: Path) -> None:
    source = make_tree(tmp_path / "source")
    path = tmp_path / "layer.tar.gz"
    path.write_bytes(pack_directory(source))
    into = tmp_path / "artifact"
    extract_tarball(path, into, ArtifactLimits(), WHAT)
    assert sorted(p.relative_to(into).as_posix() for p in into.rglob("*") if p.is_file()) == [
        "apps/db/db.yaml",
        "apps/web.yaml",
        "run.sh",
    ]
    assert (into / "run.sh").stat().st_mode & stat.S_IXUSR
    with tarfile.open(path) as tar:
        assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in tar.getmembers()} == {(0, 0, 0, "", "")}
    header = path.read_bytes()[:10]
    assert header[3] & 0x08 == 0, "the gzip header names no file"
    assert header[4:8] == b"\0\0\0\0", "the gzip header holds no time"


def test_a_symlink_is_refused_when_packing(tmp_path: Path) -> None:
    source = make_tree(tmp_path / "source")
    (source / "Chart.lock").symlink_to("/etc/passwd")
    with pytest.raises(UnsafeArtifact, match=r"holds the symbolic link 'Chart\.lock'"):
        pack_directory(source)
