"""A Sync's next status from the one before and how a pass ended (record/sync_status.py)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

from moor.objects import ObjectRef
from moor.plan import Drift
from moor.record import sync_status
from moor.resources import conditions

REVISION = "main@sha1:" + "b" * 40
OLD = "main@sha1:" + "a" * 40


def condition(status: dict, type_: str = conditions.READY) -> conditions.Condition | None:
    return conditions.get_condition(status.get("conditions"), type_)


def waiting_for_approval() -> dict:
    status = {"lastAppliedRevision": OLD, "history": [{"revision": OLD, "result": "Succeeded"}]}
    return sync_status.awaiting_approval(status, REVISION, "revision b waits for approval", generation=3)


def test_approval_pending_then_applied_clears_the_wait() -> None:
    waiting = waiting_for_approval()
    assert waiting["pendingRevision"] == REVISION
    assert condition(waiting, conditions.AWAITING_APPROVAL).status == conditions.TRUE

    done = sync_status.applied(waiting, REVISION, generation=3)
    assert condition(done, conditions.AWAITING_APPROVAL) is None
    assert "pendingRevision" not in done
    ready = condition(done)
    assert (ready.status, ready.reason, ready.observed_generation) == (conditions.TRUE, conditions.SUCCEEDED, 3)
    assert done["lastAttemptedRevision"] == REVISION


def test_no_function_changes_the_status_it_was_given() -> None:
    before = waiting_for_approval()
    kept = copy.deepcopy(before)
    drift = Drift(ObjectRef("", "v1", "ConfigMap", "team", "settings"), ("/data/color",), "kubectl-patch", "Update")
    sync_status.applied(before, REVISION, 3)
    sync_status.with_drift(before, [drift], 3)
    sync_status.failed(before, conditions.APPLY_FAILED, "refused", 3, stalled=False, revision=REVISION)
    sync_status.observed(before, 4, "now")
    sync_status.with_history(before, {"revision": REVISION, "result": "Succeeded"}, retry=True)
    assert before == kept


def test_drift_left_in_place_is_listed_and_goes_when_there_is_none() -> None:
    drift = Drift(ObjectRef("", "v1", "ConfigMap", "team", "settings"), ("/data/color",), "kubectl-patch", "Update")
    drifted = sync_status.with_drift({}, [drift], generation=2)
    assert drifted["drift"][0]["paths"] == ["/data/color"]
    shown = condition(drifted, conditions.DRIFTED)
    assert shown is not None and shown.reason == conditions.DRIFT_DETECTED
    assert "1 object(s) differ from Git" in shown.message and "kubectl-patch" in shown.message
    clean = sync_status.with_drift(drifted, [], generation=2)
    assert "drift" not in clean and condition(clean, conditions.DRIFTED) is None


def test_a_failure_says_why_and_whether_retrying_can_help() -> None:
    failed = sync_status.failed({}, conditions.BUILD_FAILED, "kustomize failed", 1, stalled=True, revision=REVISION)
    ready = condition(failed)
    assert (ready.status, ready.reason, ready.message) == (
        conditions.FALSE,
        conditions.BUILD_FAILED,
        "kustomize failed",
    )
    assert condition(failed, conditions.STALLED) is not None
    assert failed["lastAttemptedRevision"] == REVISION
    no_revision = sync_status.failed({}, conditions.SOURCE_NOT_READY, "no artifact", 1, stalled=False, revision="")
    assert "lastAttemptedRevision" not in no_revision


def test_a_rollback_holds_the_failed_revision_and_names_both() -> None:
    now = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
    status = sync_status.rolled_back(
        {},
        failed_revision=REVISION,
        reason=conditions.HEALTH_CHECK_FAILED,
        detail="not healthy after 4s",
        rolled_back_to=OLD,
        generation=5,
        now=now,
    )
    assert status["rollback"] == {
        "failedRevision": REVISION,
        "reason": conditions.HEALTH_CHECK_FAILED,
        "message": "not healthy after 4s",
        "rolledBackTo": OLD,
        "at": "2026-12-02T10:00:00Z",
    }
    ready = condition(status)
    assert ready is not None and ready.reason == conditions.ROLLED_BACK
    assert ready.message == sync_status.rolled_back_message(REVISION, conditions.HEALTH_CHECK_FAILED, OLD)
    assert status["lastAttemptedRevision"] == REVISION


def test_the_same_result_at_the_same_revision_is_not_history_again() -> None:
    status = {"history": [{"revision": REVISION, "result": conditions.APPLY_FAILED}]}
    again = {"has_record": False, "changed_anything": False}
    assert not sync_status.worth_recording(status, REVISION, conditions.APPLY_FAILED, **again)
    assert sync_status.worth_recording(status, REVISION, conditions.SUCCEEDED, **again)
    assert sync_status.worth_recording(status, OLD, conditions.APPLY_FAILED, **again)
    assert sync_status.worth_recording(
        status, REVISION, conditions.APPLY_FAILED, has_record=True, changed_anything=False
    )
    assert not sync_status.worth_recording({}, "", conditions.SOURCE_NOT_READY, **again), "no revision, no history"


def test_history_is_newest_first_bounded_and_a_retry_replaces_its_entry() -> None:
    status: dict = {}
    for number in range(sync_status.HISTORY_LENGTH + 2):
        status = sync_status.with_history(status, {"revision": f"r{number}", "startedAt": f"t{number}"}, retry=False)
    assert len(status["history"]) == sync_status.HISTORY_LENGTH
    assert status["history"][0]["revision"] == f"r{sync_status.HISTORY_LENGTH + 1}"
    retried = sync_status.with_history(status, {"revision": "r-again", "startedAt": "later"}, retry=True)
    assert retried["history"][0] == {"revision": "r-again", "startedAt": status["history"][0]["startedAt"]}
    assert retried["history"][1:] == status["history"][1:]


def test_observed_answers_a_reconcile_request() -> None:
    assert sync_status.observed({}, 7) == {"observedGeneration": 7}
    asked = sync_status.observed({}, 7, "2026-12-02T10:00:00Z")
    assert asked["lastHandledReconcileAt"] == "2026-12-02T10:00:00Z"
