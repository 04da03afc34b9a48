"""A Helm repository's index.yaml read as a stream: only what choosing a chart needs is kept, hostile
indexes (too big, alias bombs, deep nesting, names that leave their directory) are refused or dropped."""

from __future__ import annotations

import time

import pytest

from moor.source import parse_size
from moor.source.helm import IndexLimits, IndexTooLarge, InvalidIndex, check_chart_name, parse_index

DIGEST = "ab" * 32


def entry(name: str, version: str, *, digest: str | None = DIGEST, extra: str = "") -> str:
    lines = [f"  - name: {name}", f"    version: {version}", f"    urls: [charts/{name}-{version}.tgz]"]
    if digest is not None:
        lines.append(f"    digest: {digest}")
    return "\n".join(lines) + extra + "\n"


def index(*charts: tuple[str, str]) -> bytes:
    body = "apiVersion: v1\nentries:\n" + "".join(charts_text for _, charts_text in charts)
    return (body + "generated: '2026-01-01T00:00:00Z'\n").encode()


def chart(name: str, *versions: str, digest: str | None = DIGEST) -> tuple[str, str]:
    return name, f"  {name}:\n" + "".join(entry(name, version, digest=digest) for version in versions)


def test_keeps_each_chart_s_versions_urls_and_digests() -> None:
    parsed = parse_index(index(chart("web", "1.0.0", "1.1.0"), chart("db", "2.0.0-rc.1")), "repo")

    assert (parsed.chart_count, parsed.version_count) == (2, 3)
    [first, second] = parsed.versions("web")
    assert (first.version, second.version) == ("1.0.0", "1.1.0")
    assert first.urls == ("charts/web-1.0.0.tgz",)
    assert first.digest == f"sha256:{DIGEST}"
    assert parsed.revision.startswith("sha256:") and len(parsed.revision) == 71
    assert parsed.skipped == ()


def test_a_version_without_digest_is_kept_without_one() -> None:
    parsed = parse_index(index(chart("web", "1.0.0", digest=None)), "repo")
    assert parsed.versions("web")[0].digest is None


def test_versions_stay_strings_as_written() -> None:
    text = b"apiVersion: v1\nentries:\n  web:\n  - name: web\n    version: 1.10.0\n    urls: [a.tgz]\n"
    assert parse_index(text, "repo").versions("web")[0].version == "1.10.0"


def test_an_index_over_the_cap_is_refused_naming_the_cap_and_the_flag_that_sets_it() -> None:
    data = index(chart("web", "1.0.0")) + b"#" * 2048
    with pytest.raises(IndexTooLarge) as refused:
        parse_index(data, "https://charts.example.com/index.yaml", IndexLimits(max_bytes=parse_size("1Ki")))
    assert str(refused.value) == (
        "https://charts.example.com/index.yaml is larger than 1 KiB, the limit for a Helm repository index "
        "(moor run --max-helm-index-size)"
    )
    assert parse_index(data, "repo", IndexLimits(max_bytes=parse_size("64Mi"))).chart_count == 1


@pytest.mark.parametrize(
    ("name", "why"),
    [("..", "dot segments"), ("a/b", "a slash"), ("./x", "a dot segment"), (".hidden", "a leading dot")],
)
def test_a_chart_whose_name_could_leave_its_directory_is_dropped_and_said_so(name: str, why: str) -> None:
    text = f'apiVersion: v1\nentries:\n  "{name}":\n  - name: "{name}"\n    version: 1.0.0\n    urls: [x.tgz]\n'
    parsed = parse_index(text.encode() + b"  web:\n" + entry("web", "1.0.0").encode(), "repo")

    assert list(parsed.charts) == ["web"], why
    assert parsed.skipped_count == 1 and "not a chart name" in parsed.skipped[0]
    with pytest.raises(InvalidIndex, match="not a chart name"):
        check_chart_name(name, "the Sync")


def test_entries_moor_cannot_use_are_dropped_one_by_one() -> None:
    text = index(
        chart("web", "1.0.0"),
        ("bad", "  bad:\n" + entry("bad", "not-semver") + entry("bad", "1.0.0", digest="xyz") + entry("bad", "2.0.0")),
    )
    parsed = parse_index(text, "repo")

    assert [e.version for e in parsed.versions("bad")] == ["2.0.0"]
    assert parsed.skipped_count == 2
    assert any("not semver" in reason for reason in parsed.skipped)
    assert any("digest" in reason for reason in parsed.skipped)


def test_an_alias_bomb_costs_nothing_to_skip_and_an_alias_in_a_kept_field_is_refused() -> None:
    bomb = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for level in range(1, 12):
        bomb.append(f"{chr(97 + level)}: &{chr(97 + level)} [" + ", ".join([f"*{chr(96 + level)}"] * 10) + "]")
    annotations = "\n".join("      " + line for line in bomb)
    text = index(("web", "  web:\n" + entry("web", "1.0.0", extra="\n    annotations:\n" + annotations)))
    started = time.process_time()
    parsed = parse_index(text, "repo")
    assert time.process_time() - started < 5, "10^12 nodes were never expanded"
    assert parsed.version_count == 1

    aliased = (
        b"apiVersion: v1\nentries:\n  web:\n"
        b"  - {name: web, version: &v 1.0.0, urls: [a]}\n"
        b"  - {name: web, version: *v, urls: [b]}\n"
    )
    with pytest.raises(InvalidIndex, match="alias"):
        parse_index(aliased, "repo")


def nested(depth: int) -> bytes:
    deep = "[" * depth + "]" * depth
    return index(("web", "  web:\n" + entry("web", "1.0.0", extra=f"\n    keywords: {deep}")))


def test_nesting_in_a_skipped_field_is_skipped_and_past_libyaml_s_depth_refused() -> None:
    assert parse_index(nested(500), "repo").version_count == 1
    with pytest.raises(InvalidIndex, match="nesting depth"):
        parse_index(nested(50_000), "repo")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (b"entries: [1, 2]\n", "not a mapping"),
        (b"- a\n- b\n", "top level"),
        (b"", "empty"),
        (b"entries:\n  web: {name: web}\n", "not a list"),
        (b"entries: {web: [\n", "not valid YAML"),
    ],
)
def test_what_is_not_an_index_is_refused_saying_why(text: bytes, problem: str) -> None:
    with pytest.raises(InvalidIndex, match=problem):
        parse_index(text, "https://charts.example.com/index.yaml")


def test_an_index_with_no_entries_holds_no_charts() -> None:
    assert parse_index(b"apiVersion: v1\nentries: {}\n", "repo").chart_count == 0
    assert parse_index(b"apiVersion: v1\nentries:\n", "repo").chart_count == 0
