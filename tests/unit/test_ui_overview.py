"""The overview's rows: state, search, filter, sorting and paging, done on the server for any number of Syncs."""

from __future__ import annotations

import time
from typing import Any

from moor.web.ui.overview import Query, SortKey, State, row_of, select, source_url_of


def sync(name: str, namespace: str = "team", *, ready: str | None = "True", **status: Any) -> dict[str, Any]:
    conditions = [{"type": "Ready", "status": ready, "reason": "Succeeded", "message": "applied"}] if ready else []
    return {
        "apiVersion": "moor.dev/v1",
        "kind": "Sync",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"sourceRef": {"kind": "GitRepository", "name": "repo"}},
        "status": {"conditions": conditions, **status},
    }


def test_a_row_says_state_revision_drift_pending_and_who_deployed() -> None:
    obj = sync(
        "web",
        lastAppliedRevision="main@sha1:" + "a" * 40,
        drift=[{"kind": "ConfigMap", "name": "x"}, {"kind": "Secret", "name": "y"}],
        pendingRevision="main@sha1:" + "b" * 40,
        history=[{"finishedAt": "2026-01-02T03:04:05Z", "author": "Ada <ada@example.com>", "approvedBy": "bob"}],
    )
    row = row_of(obj, "https://github.com/org/app.git")
    assert row.state is State.READY
    assert row.drift == 2
    assert row.pending.endswith("b" * 40)
    assert (row.deployed_by, row.approved_by) == ("Ada", "bob")
    assert row.commit_link == "https://github.com/org/app/commit/" + "a" * 40


def test_states_waiting_suspended_failed_and_unknown() -> None:
    waiting = sync("a", ready="False")
    waiting["status"]["conditions"].append({"type": "AwaitingApproval", "status": "True", "message": "waits"})
    suspended = sync("b")
    suspended["spec"]["suspend"] = True
    assert row_of(waiting).state is State.WAITING
    assert row_of(suspended).state is State.SUSPENDED
    assert row_of(sync("c", ready="False")).state is State.FAILED
    assert row_of(sync("d", ready=None)).state is State.UNKNOWN


def test_no_commit_link_for_a_url_that_is_not_a_web_host() -> None:
    row = row_of(sync("web", lastAppliedRevision="main@sha1:" + "a" * 40), "file:///srv/git/app.git")
    assert row.commit_link == ""


def test_the_source_url_comes_from_the_syncs_git_repository() -> None:
    repository = {"spec": {"url": "https://gitlab.com/g/app"}}
    found = source_url_of(
        sync("web"),
        lambda kind, ns, name: repository if (kind, ns, name) == ("GitRepository", "team", "repo") else None,
    )
    assert found == "https://gitlab.com/g/app"


def test_search_filter_sort_and_page() -> None:
    rows = [row_of(sync(f"app-{i:04d}", ready="True" if i % 3 else "False")) for i in range(100)]
    page = select(rows, Query(search="app-00", state=State.FAILED, sort=SortKey.NAME, descending=True, page=2, size=25))
    assert page.total == 34  # app-0000 ... app-0099, every third failed
    assert page.pages == 2 and page.number == 2
    assert [row.name for row in page.rows][:2] == ["app-0024", "app-0021"]
    assert page.counts[State.READY] == 66 and page.counts[State.FAILED] == 34


def test_every_word_of_a_search_must_match() -> None:
    rows = [row_of(sync("web", "shop")), row_of(sync("web", "blog")), row_of(sync("api", "shop"))]
    assert [r.namespace + "/" + r.name for r in select(rows, Query(search="SHOP web")).rows] == ["shop/web"]


def test_a_page_past_the_end_shows_the_last_page() -> None:
    rows = [row_of(sync(f"s{i}")) for i in range(10)]
    page = select(rows, Query(page=99, size=25))
    assert page.number == 1 and len(page.rows) == 10


def test_query_parameters_out_of_range_fall_back_to_defaults_and_round_trip() -> None:
    query = Query.parse({"q": " web ", "state": "failed", "sort": "drift", "order": "desc", "page": "3", "size": "100"})
    assert query == Query("web", State.FAILED, SortKey.DRIFT, True, 3, 100)
    assert Query.parse(query.to_params()) == query
    assert Query.parse({"page": "-4", "size": "100000", "sort": "evil", "state": "<script>"}) == Query()
    assert Query().to_params() == {}


def test_five_thousand_syncs_are_one_quick_page() -> None:
    objects = [sync(f"app-{i:05d}", f"ns-{i % 50}") for i in range(5000)]
    started = time.perf_counter()
    rows = [row_of(obj) for obj in objects]
    page = select(rows, Query(sort=SortKey.STATE))
    assert len(page.rows) == 50 and page.total == 5000
    assert time.perf_counter() - started < 5.0  # generous: the bench measures it; this catches a blow-up
