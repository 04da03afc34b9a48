"""Which tag an ImagePolicy chooses: semver, alphabetical and numerical orders, filters, and no flapping."""

from __future__ import annotations

import random
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from semver import Version

from moor.images.policy import InvalidPolicy, PolicyKind, SortOrder, TagFilter, TagPolicy
from moor.images.precedence import precedence
from moor.source.semver_range import SemverRange


def semver(text: str, filter: TagFilter | None = None) -> TagPolicy:
    return TagPolicy(PolicyKind.SEMVER, semver=SemverRange.parse(text), filter=filter)


def test_semver_chooses_the_highest_release_in_the_range() -> None:
    tags = ["1.2.0", "1.10.0", "v1.9.3", "2.0.0", "latest", "1.11.0-rc.1", "1.2.0.sig"]
    assert semver(">=1.0.0 <2.0.0").choose(tags) == "1.10.0"


def test_semver_considers_pre_releases_only_when_the_range_names_one() -> None:
    tags = ["1.2.0", "1.3.0-rc.1"]
    assert semver(">=1.0.0").choose(tags) == "1.2.0"
    assert semver(">=1.0.0-0").choose(tags) == "1.3.0-rc.1"


def test_alphabetical_in_both_orders() -> None:
    tags = ["b", "a", "c"]
    assert TagPolicy(PolicyKind.ALPHABETICAL).choose(tags) == "c"
    assert TagPolicy(PolicyKind.ALPHABETICAL, SortOrder.DESC).choose(tags) == "a"


def test_numerical_orders_numbers_not_text_and_skips_what_is_not_a_number() -> None:
    tags = ["9", "10", "100", "abc", "nan", "inf"]
    assert TagPolicy(PolicyKind.NUMERICAL).choose(tags) == "100"
    assert TagPolicy(PolicyKind.NUMERICAL, SortOrder.DESC).choose(tags) == "9"


def test_a_timestamp_extracted_from_the_tag_orders_the_builds() -> None:
    timestamps = TagFilter.compile(r"^main-[a-f0-9]+-(?P<ts>[0-9]+)$", "$ts")
    policy = TagPolicy(PolicyKind.NUMERICAL, filter=timestamps)
    tags = ["main-ffff-1700000000", "main-0000-1700000300", "main-aaaa-1700000200", "feature-1-1800000000"]
    assert policy.choose(tags) == "main-0000-1700000300"


def test_a_version_extracted_from_a_prefixed_tag_is_ordered_as_semver() -> None:
    policy = semver("^1", TagFilter.compile(r"^app-(?P<version>.*)$", "${version}"))
    assert policy.choose(["app-1.2.0", "app-1.10.0", "other-1.99.0"]) == "app-1.10.0"


def test_failed_tags_are_never_chosen() -> None:
    assert semver(">=1.0.0").choose(["1.2.0", "1.3.0"], failed=["1.3.0"]) == "1.2.0"
    assert semver(">=1.0.0").choose(["1.3.0"], failed=["1.3.0"]) is None


def test_it_goes_back_only_when_the_chosen_tag_disappeared() -> None:
    policy = semver(">=1.0.0")
    assert policy.choose(["1.2.0", "1.3.0"], current="1.3.0") == "1.3.0"
    assert policy.choose(["1.2.0"], current="1.3.0") == "1.2.0"


def test_ties_keep_the_current_choice_whatever_the_listing_order() -> None:
    same_time = TagFilter.compile(r"-(?P<ts>[0-9]+)$", "$ts")
    policy = TagPolicy(PolicyKind.NUMERICAL, filter=same_time)
    tags = ["a-100", "b-100", "c-099"]
    for _ in range(10):
        random.shuffle(tags)
        assert policy.choose(tags, current="a-100") == "a-100"
        assert policy.choose(tags) == "b-100"


def test_a_filter_naming_a_group_its_pattern_lacks_is_refused() -> None:
    with pytest.raises(InvalidPolicy, match="names the group 'ts'"):
        TagFilter.compile(r"^main-(?P<sha>.*)$", "$ts")
    with pytest.raises(InvalidPolicy, match="not a valid regular expression"):
        TagFilter.compile("main-(")


@given(st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=30), st.randoms())
def test_numerical_pushes_in_any_order_never_go_backwards(numbers: list[int], rng: random.Random) -> None:
    policy = TagPolicy(PolicyKind.NUMERICAL)
    seen: list[str] = []
    current: str | None = None
    for number in numbers:
        seen.append(str(number))
        rng.shuffle(seen)
        chosen = policy.choose(seen, current=current)
        assert chosen is not None
        if current is not None:
            assert float(chosen) >= float(current)
        current = chosen
    assert current == str(max(numbers))


@given(st.lists(st.from_regex(re.compile(r"[a-z0-9.-]{1,12}"), fullmatch=True), max_size=20))
def test_the_choice_does_not_depend_on_the_listing_order(tags: list[str]) -> None:
    policy = TagPolicy(PolicyKind.ALPHABETICAL)
    assert policy.choose(tags) == policy.choose(list(reversed(tags)))


_IDENT = st.one_of(st.integers(min_value=0, max_value=20).map(str), st.sampled_from(["alpha", "beta", "rc", "a-1"]))


@given(
    st.lists(
        st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(0, 3), st.lists(_IDENT, max_size=3)),
        min_size=2,
        max_size=12,
    )
)
def test_precedence_orders_as_semver_does(parts: list[tuple[int, int, int, list[str]]]) -> None:
    versions = [Version(major, minor, patch, ".".join(pre) or None) for major, minor, patch, pre in parts]
    by_semver = sorted(versions)
    by_precedence = sorted(versions, key=precedence)
    assert [precedence(v) for v in by_semver] == [precedence(v) for v in by_precedence]
