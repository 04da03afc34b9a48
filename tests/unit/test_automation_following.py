"""Following pushed commits: rolled back, healthy, superseded; failed tags with and without digests."""

from typing import Any

from moor.automation.following import failed_tag, is_failed, resolve_followed, uses_repository

A, B, C = "a" * 40, "b" * 40, "c" * 40


def sync(name: str = "app", **status: Any) -> dict[str, Any]:
    return {
        "kind": "Sync",
        "metadata": {"name": name, "namespace": "apps"},
        "spec": {"sourceRef": {"kind": "GitRepository", "name": "repo"}},
        "status": status,
    }


def followed(*commits: str) -> list[dict[str, Any]]:
    return [{"commit": commit, "images": [{"policy": "apps/web", "tag": commit[0]}]} for commit in commits]


def test_a_rolled_back_commit_is_resolved_and_the_ones_before_it_are_superseded() -> None:
    rolled_back = sync(rollback={"failedRevision": f"main@sha1:{B}", "reason": "HealthCheckFailed"})

    still, outcomes = resolve_followed(followed(A, B, C), [rolled_back])

    assert [entry["commit"] for entry in still] == [C]
    assert [(o.entry["commit"], o.rolled_back) for o in outcomes] == [(B, True)]


def test_a_rollback_wins_over_another_syncs_health() -> None:
    healthy, failed = sync("one", lastHealthyRevision=f"main@sha1:{A}"), sync("two", rollback={"failedRevision": A})

    _, [outcome] = resolve_followed(followed(A), [healthy, failed])

    assert outcome.rolled_back and outcome.sync["metadata"]["name"] == "two"


def test_a_commit_no_sync_has_reached_is_still_followed() -> None:
    still, outcomes = resolve_followed(followed(A), [sync(lastHealthyRevision="not a revision")])
    assert len(still) == 1 and outcomes == []


def test_failed_tags_match_by_tag_and_by_digest_when_both_know_it() -> None:
    status = {"failedTags": [{"tag": "1.5", "digest": "sha256:old"}, {"tag": "1.6"}]}

    assert is_failed(status, "1.5") and is_failed(status, "1.5", "sha256:old") and is_failed(status, "1.6", "sha256:x")
    assert not is_failed(status, "1.5", "sha256:new"), "the tag was pushed again with other content"
    assert not is_failed(status, "1.7") and not is_failed(status, None)


def test_the_failed_tag_entry_names_the_sync_revision_and_reason() -> None:
    rollback = {"failedRevision": f"main@sha1:{A}", "reason": "HealthCheckFailed", "at": "2026-01-01T00:00:00Z"}
    image = {"policy": "apps/web", "tag": "1.5", "digest": "sha256:ff"}

    assert failed_tag(image, "apps/app", rollback, "now") == {
        "tag": "1.5",
        "digest": "sha256:ff",
        "reason": "HealthCheckFailed",
        "sync": "apps/app",
        "revision": f"main@sha1:{A}",
        "at": "2026-01-01T00:00:00Z",
    }


def test_syncs_of_a_repository() -> None:
    other = {**sync(), "spec": {"sourceRef": {"kind": "GitRepository", "name": "repo", "namespace": "elsewhere"}}}
    assert uses_repository(sync(), "apps", "repo")
    assert not uses_repository(other, "apps", "repo") and uses_repository(other, "elsewhere", "repo")
    assert not uses_repository(
        {**sync(), "spec": {"sourceRef": {"kind": "OCIRepository", "name": "repo"}}}, "apps", "repo"
    )
