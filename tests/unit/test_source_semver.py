"""Semver ranges as users write them in `ref.semver`, checked against tag versions."""

import pytest
from semver import Version

from moor.source import InvalidSourceSpec, SemverRange
from moor.source.semver_range import tag_version


def admits(text: str, version: str) -> bool:
    return SemverRange.parse(text).admits(Version.parse(version))


@pytest.mark.parametrize(
    ("text", "inside", "outside"),
    [
        (">=1.0.0 <2.0.0", ["1.0.0", "1.9.9"], ["0.9.9", "2.0.0", "2.0.0-rc.1", "1.5.0-rc.1"]),
        (">=1.0.0, <2.0.0", ["1.2.3"], ["2.1.0"]),
        (">= 1.0.0 < 2.0.0", ["1.2.3"], ["2.1.0"]),
        ("~1.2", ["1.2.0", "1.2.99"], ["1.3.0", "1.1.9"]),
        ("~1.2.3", ["1.2.3", "1.2.4"], ["1.2.2", "1.3.0"]),
        ("~1", ["1.0.0", "1.9.0"], ["2.0.0"]),
        ("~>1.2", ["1.2.5"], ["1.3.0"]),
        ("^1.0", ["1.0.0", "1.99.0"], ["2.0.0", "0.9.0"]),
        ("^1.2.3", ["1.2.3", "1.9.0"], ["1.2.2", "2.0.0"]),
        ("^0.2.3", ["0.2.3", "0.2.9"], ["0.3.0", "0.2.2"]),
        ("^0.0.3", ["0.0.3"], ["0.0.4", "0.0.2"]),
        ("^0", ["0.0.1", "0.9.9"], ["1.0.0"]),
        ("1.x", ["1.0.0", "1.5.2"], ["2.0.0", "0.9.0"]),
        ("1.2.*", ["1.2.0", "1.2.7"], ["1.3.0"]),
        ("1", ["1.0.0", "1.4.0"], ["2.0.0"]),
        ("*", ["0.0.1", "9.9.9"], ["1.0.0-rc.1"]),
        ("1.2.3", ["1.2.3", "1.2.3+build.5"], ["1.2.4"]),
        ("=1.2.3", ["1.2.3"], ["1.2.4"]),
        ("v1.2.3", ["1.2.3"], ["1.2.4"]),
        ("!=1.2.3", ["1.2.4"], ["1.2.3"]),
        (">1.2", ["1.3.0"], ["1.2.9"]),
        (">1.2.3", ["1.2.4"], ["1.2.3"]),
        ("<=1.2", ["1.2.9"], ["1.3.0"]),
        ("<1.2", ["1.1.9"], ["1.2.0"]),
        ("1.2 - 1.4", ["1.2.0", "1.4.9"], ["1.1.9", "1.5.0"]),
        ("1.2.3 - 2.3.4", ["2.3.4"], ["2.3.5"]),
        ("<1.0.0 || >=3.0.0", ["0.5.0", "3.1.0"], ["1.0.0", "2.9.9"]),
        ("^1.0 || ^3.0", ["1.1.0", "3.2.0"], ["2.0.0"]),
        (">=1.0.0-0 <2.0.0", ["1.0.0-rc.1", "1.5.0-alpha", "1.5.0"], ["2.0.0-rc.1", "0.9.0"]),
        ("~2.0.0-rc.1", ["2.0.0-rc.1", "2.0.0-rc.2", "2.0.0"], ["2.0.0-beta.9", "2.1.0"]),
        (">=2.0.0-rc.1 || 1.x", ["2.0.0-rc.2", "1.3.0"], ["1.3.0-rc.1"]),
    ],
)
def test_a_range_admits_exactly_the_versions_inside_it(text: str, inside: list[str], outside: list[str]) -> None:
    for version in inside:
        assert admits(text, version), f"{text!r} should admit {version}"
    for version in outside:
        assert not admits(text, version), f"{text!r} should not admit {version}"


@pytest.mark.parametrize("text", ["", "  ", "1.2.3.4", "foo", ">=a.b", "~>", "1.x.3", "!=1.2", ">*", "<x", "1.2-rc.1"])
def test_a_malformed_range_is_refused_with_a_message_naming_it(text: str) -> None:
    with pytest.raises(InvalidSourceSpec, match="semver range"):
        SemverRange.parse(text)


def test_the_highest_tag_in_the_range_wins_with_or_without_a_leading_v() -> None:
    tags = ["v1.0.0", "1.2.0", "v1.10.0", "v2.0.0", "v1.11.0-rc.1", "latest", "v1.9", "release-1.3.0"]
    assert SemverRange.parse(">=1.0.0 <2.0.0").highest(tags) == "v1.10.0"
    assert SemverRange.parse("^1.0").highest(tags) == "v1.10.0"
    assert SemverRange.parse(">=1.11.0-0 <2.0.0").highest(tags) == "v1.11.0-rc.1"
    assert SemverRange.parse("*").highest(tags) == "v2.0.0"
    assert SemverRange.parse(">=3.0.0").highest(tags) is None


def test_equal_versions_pick_one_tag_deterministically() -> None:
    assert SemverRange.parse("1.x").highest(["v1.0.0", "1.0.0"]) == "v1.0.0"
    assert SemverRange.parse("1.x").highest(["1.0.0", "v1.0.0"]) == "v1.0.0"


@pytest.mark.parametrize(
    ("tag", "version"),
    [("v1.2.3", "1.2.3"), ("1.2.3", "1.2.3"), ("v1.2.3-rc.1+b7", "1.2.3-rc.1+b7"), ("v1.2", None), ("x1.2.3", None)],
)
def test_tags_are_read_as_versions_only_when_they_are_full_semver(tag: str, version: str | None) -> None:
    parsed = tag_version(tag)
    assert (str(parsed) if parsed else None) == version
