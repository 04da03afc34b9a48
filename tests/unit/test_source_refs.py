"""Choosing a ref's commit from what `git ls-remote` reported, and writing revisions as Flux does."""

import pytest

from moor.source import (
    GitRef,
    InvalidSourceSpec,
    NoMatchingTag,
    RefNotFound,
    RemoteRefs,
    ResolvedRevision,
    format_revision,
    revision_commit,
)

URL = "https://git.example.com/org/apps.git"
MAIN = "1" * 40
FEATURE = "2" * 40
V1_0 = "3" * 40
V1_1_TAG_OBJECT = "4" * 40
V1_1_COMMIT = "5" * 40
V2_0 = "6" * 40
V1_2_RC = "7" * 40

LS_REMOTE = f"""\
ref: refs/heads/main\tHEAD
{MAIN}\tHEAD
{MAIN}\trefs/heads/main
{FEATURE}\trefs/heads/feature/main
{V1_0}\trefs/tags/v1.0.0
{V1_1_TAG_OBJECT}\trefs/tags/v1.1.0
{V1_1_COMMIT}\trefs/tags/v1.1.0^{{}}
{V1_2_RC}\trefs/tags/v1.2.0-rc.1
{V2_0}\trefs/tags/2.0.0
{V2_0}\trefs/tags/not-a-version
"""


@pytest.fixture
def remote() -> RemoteRefs:
    return RemoteRefs.parse(LS_REMOTE)


def test_ls_remote_output_is_read_into_refs_and_peeled_tags(remote: RemoteRefs) -> None:
    assert remote.refs["refs/heads/main"] == MAIN
    assert remote.refs["refs/tags/v1.1.0"] == V1_1_TAG_OBJECT
    assert remote.peeled == {"refs/tags/v1.1.0": V1_1_COMMIT}
    assert sorted(remote.tags()) == ["2.0.0", "not-a-version", "v1.0.0", "v1.1.0", "v1.2.0-rc.1"]


def test_a_branch_resolves_to_its_head_and_its_revision_names_the_branch(remote: RemoteRefs) -> None:
    resolved = remote.select(GitRef(branch="main"), URL)
    assert resolved.commit == MAIN
    assert resolved.refname == "refs/heads/main"
    assert resolved.revision == f"main@sha1:{MAIN}"


def test_a_branch_with_a_slash_is_not_confused_with_its_last_component(remote: RemoteRefs) -> None:
    assert remote.select(GitRef(branch="feature/main"), URL).revision == f"feature/main@sha1:{FEATURE}"


def test_a_lightweight_tag_resolves_to_its_commit(remote: RemoteRefs) -> None:
    assert remote.select(GitRef(tag="v1.0.0"), URL).revision == f"v1.0.0@sha1:{V1_0}"


def test_an_annotated_tag_resolves_to_the_commit_it_tags_not_the_tag_object(remote: RemoteRefs) -> None:
    resolved = remote.select(GitRef(tag="v1.1.0"), URL)
    assert resolved.commit == V1_1_COMMIT
    assert resolved.revision == f"v1.1.0@sha1:{V1_1_COMMIT}"


def test_a_semver_range_picks_the_highest_release_tag_inside_it(remote: RemoteRefs) -> None:
    assert remote.select(GitRef(semver="^1.0"), URL).revision == f"v1.1.0@sha1:{V1_1_COMMIT}"
    assert remote.select(GitRef(semver=">=1.0.0"), URL).revision == f"2.0.0@sha1:{V2_0}"
    assert remote.select(GitRef(semver=">=1.2.0-0 <2.0.0"), URL).revision == f"v1.2.0-rc.1@sha1:{V1_2_RC}"


def test_a_commit_ref_resolves_to_itself_without_a_name(remote: RemoteRefs) -> None:
    resolved = remote.select(GitRef(commit="A" * 40), URL)
    assert resolved.commit == "a" * 40
    assert resolved.revision == f"sha1:{'a' * 40}"


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        (GitRef(branch="develop"), f"branch 'develop' was not found in {URL}"),
        (GitRef(branch="heads/main"), f"branch 'heads/main' was not found in {URL}"),
        (GitRef(tag="v9.9.9"), f"tag 'v9.9.9' was not found in {URL}"),
    ],
)
def test_a_missing_branch_or_tag_is_named_in_the_error(remote: RemoteRefs, ref: GitRef, message: str) -> None:
    with pytest.raises(RefNotFound) as caught:
        remote.select(ref, URL)
    assert str(caught.value) == message
    assert caught.value.url == URL


def test_a_range_no_tag_matches_is_named_in_the_error(remote: RemoteRefs) -> None:
    with pytest.raises(NoMatchingTag, match=r"no tag in https://git.example.com/org/apps.git matches .*'>=3.0.0'"):
        remote.select(GitRef(semver=">=3.0.0"), URL)


def test_an_empty_listing_finds_nothing() -> None:
    with pytest.raises(RefNotFound):
        RemoteRefs.parse("").select(GitRef(branch="main"), URL)


@pytest.mark.parametrize(
    "fields",
    [{}, {"branch": "main", "tag": "v1"}, {"branch": "main", "commit": "a" * 40}],
)
def test_a_ref_needs_exactly_one_kind(fields: dict[str, str]) -> None:
    with pytest.raises(InvalidSourceSpec, match="exactly one of branch, tag, semver or commit"):
        GitRef(**fields)


@pytest.mark.parametrize(
    "fields",
    [
        {"branch": "-x"},
        {"branch": "a..b"},
        {"branch": "has space"},
        {"tag": "v1^{}"},
        {"tag": "a:b"},
        {"commit": "abc123"},
        {"commit": "z" * 40},
        {"semver": "not a range"},
    ],
)
def test_malformed_refs_are_refused(fields: dict[str, str]) -> None:
    with pytest.raises(InvalidSourceSpec):
        GitRef(**fields)


def test_a_ref_is_read_from_a_gitrepository_spec() -> None:
    assert GitRef.from_spec({"branch": "main"}) == GitRef(branch="main")
    assert GitRef.from_spec({"semver": ">=1.0.0", "branch": ""}) == GitRef(semver=">=1.0.0")
    with pytest.raises(InvalidSourceSpec, match="unknown fields: name"):
        GitRef.from_spec({"name": "main"})
    with pytest.raises(InvalidSourceSpec, match="must be a string"):
        GitRef.from_spec({"tag": 1})


def test_refs_describe_themselves_for_messages() -> None:
    assert str(GitRef(branch="main")) == "branch 'main'"
    assert str(GitRef(tag="v1")) == "tag 'v1'"
    assert str(GitRef(semver="^1.0")) == "semver range '^1.0'"
    assert str(GitRef(commit="a" * 40)) == f"commit {'a' * 40}"


def test_revisions_round_trip_to_their_commit() -> None:
    assert format_revision("main", MAIN) == f"main@sha1:{MAIN}"
    assert format_revision(None, MAIN) == f"sha1:{MAIN}"
    assert format_revision("v1", "b" * 64) == f"v1@sha256:{'b' * 64}"
    assert revision_commit(f"main@sha1:{MAIN}") == MAIN
    assert revision_commit(f"sha1:{MAIN}") == MAIN
    assert revision_commit(MAIN) == MAIN
    with pytest.raises(InvalidSourceSpec):
        revision_commit("main@sha1:zz")


def test_a_resolved_revision_prints_as_its_revision() -> None:
    resolved = ResolvedRevision(GitRef(tag="v1.0.0"), V1_0, "refs/tags/v1.0.0")
    assert str(resolved) == f"v1.0.0@sha1:{V1_0}"
    assert resolved.name == "v1.0.0"
