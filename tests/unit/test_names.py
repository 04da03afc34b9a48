"""Names Moor derives from a Sync's name fit Kubernetes' limits, stay distinct, and are unchanged when short."""

from __future__ import annotations

import re

import pytest

from moor.names import DNS_SUBDOMAIN_MAX, LABEL_VALUE_MAX, fit_name
from moor.record.history import record_name, sync_name_label
from moor.record.snapshots import snapshot_ref

DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
LABEL_VALUE = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")


def long_name(length: int, stem: str = "shop") -> str:
    """A valid Sync name of exactly `length` characters: dot-separated segments of letters."""
    text = ".".join([stem] * (length // (len(stem) + 1) + 1))
    return (text[: length - 1] + "x") if length > 1 else "x"


def sync(name: str) -> dict[str, object]:
    return {"apiVersion": "moor.dev/v1", "kind": "Sync", "metadata": {"name": name, "namespace": "team-a"}}


def is_subdomain(name: str) -> bool:
    return len(name) <= DNS_SUBDOMAIN_MAX and DNS_SUBDOMAIN.fullmatch(name) is not None


def test_a_name_that_fits_is_the_plain_concatenation() -> None:
    assert fit_name("guestbook", ".moor-healthy-state") == "guestbook.moor-healthy-state"
    assert record_name("guestbook", 42) == "guestbook.000042"
    assert sync_name_label("guestbook") == "guestbook"
    assert snapshot_ref(sync("guestbook")).name == "guestbook.moor-healthy-state"


@pytest.mark.parametrize("limit", [DNS_SUBDOMAIN_MAX, LABEL_VALUE_MAX])
def test_exactly_at_the_limit_is_kept_and_one_over_is_shortened(limit: int) -> None:
    at = long_name(limit - 7)
    assert fit_name(at, ".000001", limit=limit) == f"{at}.000001"
    over = long_name(limit - 6)
    shortened = fit_name(over, ".000001", limit=limit)
    assert limit - 1 <= len(shortened) <= limit  # one less when the cut ends on a separator
    assert shortened.endswith(".000001")
    assert shortened.startswith(over[:20])
    assert shortened != f"{over[: limit - 7]}.000001"


def test_the_snapshot_of_a_sync_named_with_235_characters_is_a_valid_secret_name() -> None:
    assert snapshot_ref(sync(long_name(234))).name == long_name(234) + ".moor-healthy-state"
    name = snapshot_ref(sync(long_name(235))).name
    assert len(name) <= DNS_SUBDOMAIN_MAX
    assert name.endswith(".moor-healthy-state")
    assert is_subdomain(name)
    for length in range(230, DNS_SUBDOMAIN_MAX + 1):
        assert is_subdomain(snapshot_ref(sync(long_name(length))).name), length


def test_two_long_names_sharing_a_240_character_prefix_get_different_records() -> None:
    prefix = long_name(240)
    first, second = prefix + ".blue", prefix + ".green"
    assert record_name(first, 1) != record_name(second, 1)
    assert sync_name_label(first) != sync_name_label(second)
    assert snapshot_ref(sync(first)).name != snapshot_ref(sync(second)).name
    for name in (first, second):
        assert is_subdomain(record_name(name, 1))
        assert record_name(name, 1).endswith(".000001")


def test_derived_names_are_stable_and_share_their_prefix_per_sync() -> None:
    name = long_name(250)
    assert record_name(name, 7) == record_name(name, 7)
    assert record_name(name, 7).removesuffix(".000007") == record_name(name, 8).removesuffix(".000008")
    assert sorted([record_name(name, 10), record_name(name, 9)]) == [record_name(name, 9), record_name(name, 10)]


def test_sequences_past_a_million_still_fit() -> None:
    name = long_name(DNS_SUBDOMAIN_MAX - 7)
    assert record_name(name, 999_999) == f"{name}.999999"
    beyond = record_name(name, 1_000_000)
    assert len(beyond) <= DNS_SUBDOMAIN_MAX and beyond.endswith(".1000000") and is_subdomain(beyond)


@pytest.mark.parametrize("length", [63, 64, 65, 100, 253])
def test_label_values_are_valid_at_every_length(length: int) -> None:
    value = sync_name_label(long_name(length))
    assert len(value) <= LABEL_VALUE_MAX
    assert LABEL_VALUE.fullmatch(value), value


def test_a_cut_that_ends_on_a_separator_drops_it() -> None:
    base = "a" * 51 + "-." + "b" * 20
    shortened = fit_name(base, limit=LABEL_VALUE_MAX)
    assert re.fullmatch(r"a{51}-[0-9a-f]{10}", shortened)


def test_the_moor_sync_label_keeps_its_established_shape() -> None:
    """The `moor.dev/sync` value on objects already in clusters: 52 characters, a dash, 10 hex digits."""
    key = "team-a." + long_name(80)
    shortened = fit_name(key, limit=LABEL_VALUE_MAX)
    assert re.fullmatch(re.escape(key[:52].rstrip(".-")) + r"-[0-9a-f]{10}", shortened)


def test_a_suffix_leaving_no_room_for_a_hash_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="cannot end with"):
        fit_name("abcdef" * 3, "." + "x" * 10, limit=16)
