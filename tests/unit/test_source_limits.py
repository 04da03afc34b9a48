"""The limits on a revision's size: how sizes are written and how a streamed tree listing is counted."""

from __future__ import annotations

import pytest

from moor.source import ArtifactLimits, InvalidSourceSpec, parse_size
from moor.source.limits import DEFAULT_MAX_BYTES, DEFAULT_MAX_FILES, TreeTally, format_size


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("268435456", 256 * 1024 * 1024),
        ("256Mi", 256 * 1024 * 1024),
        ("256MiB", 256 * 1024 * 1024),
        ("1Gi", 1024**3),
        ("1G", 1000**3),
        ("500k", 500_000),
        ("64Ki", 65_536),
        (" 2 mi ", 2 * 1024 * 1024),
    ],
)
def test_sizes_are_read_as_people_write_them(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "Mi", "-1Mi", "1.5Gi", "12 parsecs", "0x10"])
def test_other_text_is_not_a_size(text: str) -> None:
    with pytest.raises(InvalidSourceSpec, match="is not a size"):
        parse_size(text)


def test_the_defaults_are_generous_for_a_manifest_repository() -> None:
    assert ArtifactLimits() == ArtifactLimits(max_bytes=DEFAULT_MAX_BYTES, max_files=DEFAULT_MAX_FILES)
    assert format_size(DEFAULT_MAX_BYTES) == "256 MiB"
    assert DEFAULT_MAX_FILES == 100_000


def test_a_tree_listing_counts_files_and_symlinks_but_not_submodules_or_directories() -> None:
    tally = TreeTally()
    for record in [
        b"100644 blob 3f2a3f2a3f2a3f2a3f2a3f2a3f2a3f2a3f2a3f2a     120\tapp/config.yaml",
        b"100755 blob 3f2a3f2a3f2a3f2a3f2a3f2a3f2a3f2a3f2a3f2a    1000\tbin/run\twith a tab",
        b"120000 blob 3f2a3f2a3f2a3f2a3f2a3f2a3f2a3f2a3f2a3f2a       9\tlink",
        b"160000 commit 3f2a3f2a3f2a3f2a3f2a3f2a3f2a3f2a3f2a3f2a       -\tvendor/lib",
        b"garbage",
    ]:
        tally.add(record)
    assert (tally.files, tally.size) == (3, 1129)
    assert not tally.over(ArtifactLimits(max_bytes=1129, max_files=3))
    assert tally.over(ArtifactLimits(max_bytes=1128, max_files=3))
    assert tally.over(ArtifactLimits(max_bytes=1129, max_files=2))
