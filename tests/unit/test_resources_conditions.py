from datetime import UTC, datetime, timedelta

import pytest

from moor.resources import Condition, get_condition, is_condition_true, remove_condition, set_condition
from moor.resources import conditions as c

T0 = datetime(2026, 11, 26, 10, 0, 0, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5)


def ready(status: str, reason: str, message: str = "", generation: int = 1) -> Condition:
    return Condition(type=c.READY, status=status, reason=reason, message=message, observed_generation=generation)


def test_a_new_condition_is_appended_with_the_transition_time() -> None:
    conditions = set_condition([], ready(c.TRUE, c.SUCCEEDED, "Applied revision main@sha1:abc"), now=T0)
    assert conditions == [
        {
            "type": "Ready",
            "status": "True",
            "observedGeneration": 1,
            "lastTransitionTime": "2026-11-26T10:00:00Z",
            "reason": "Succeeded",
            "message": "Applied revision main@sha1:abc",
        }
    ]


def test_the_transition_time_stays_while_the_status_stays() -> None:
    first = set_condition(None, ready(c.FALSE, c.PROGRESSING, "Applying"), now=T0)
    second = set_condition(first, ready(c.FALSE, c.APPLY_FAILED, "Deployment web is invalid", generation=2), now=T1)
    condition = get_condition(second, c.READY)
    assert condition == Condition(
        type="Ready",
        status="False",
        reason="ApplyFailed",
        message="Deployment web is invalid",
        observed_generation=2,
        last_transition_time=T0,
    )


def test_the_transition_time_moves_when_the_status_changes() -> None:
    first = set_condition(None, ready(c.FALSE, c.PROGRESSING), now=T0)
    second = set_condition(first, ready(c.TRUE, c.SUCCEEDED), now=T1)
    assert second[0]["lastTransitionTime"] == "2026-11-26T10:05:00Z"


def test_other_conditions_and_their_order_are_kept() -> None:
    conditions = set_condition(None, ready(c.UNKNOWN, c.PROGRESSING), now=T0)
    conditions = set_condition(conditions, Condition(type=c.RECONCILING, status=c.TRUE, reason=c.PROGRESSING), now=T0)
    conditions = set_condition(conditions, ready(c.TRUE, c.SUCCEEDED), now=T1)
    assert [entry["type"] for entry in conditions] == ["Ready", "Reconciling"]
    assert is_condition_true(conditions, c.READY)
    assert is_condition_true(conditions, c.RECONCILING)
    assert not is_condition_true(conditions, c.STALLED)


def test_the_input_list_is_not_changed() -> None:
    original = set_condition(None, ready(c.FALSE, c.PROGRESSING), now=T0)
    snapshot = [dict(entry) for entry in original]
    set_condition(original, ready(c.TRUE, c.SUCCEEDED), now=T1)
    remove_condition(original, c.READY)
    assert original == snapshot


def test_removing_a_condition() -> None:
    conditions = set_condition(None, Condition(type=c.DRIFTED, status=c.TRUE, reason=c.DRIFT_DETECTED), now=T0)
    conditions = set_condition(conditions, ready(c.TRUE, c.SUCCEEDED), now=T0)
    assert [entry["type"] for entry in remove_condition(conditions, c.DRIFTED)] == ["Ready"]
    assert get_condition(remove_condition(conditions, c.DRIFTED), c.DRIFTED) is None


def test_reading_a_condition_written_by_the_api_server() -> None:
    live = [
        {
            "type": "Ready",
            "status": "False",
            "observedGeneration": 4,
            "lastTransitionTime": "2026-11-26T10:00:00Z",
            "reason": "Some_Reason:v2",
            "message": "waiting",
        }
    ]
    condition = get_condition(live, "Ready")
    assert condition is not None
    assert condition.last_transition_time == T0
    assert condition.reason == "Some_Reason:v2"
    assert not condition.is_true


def test_reasons_are_camel_case_and_statuses_are_fixed() -> None:
    with pytest.raises(ValueError, match=r"CamelCase"):
        set_condition(None, ready(c.TRUE, "apply failed"))
    with pytest.raises(ValueError, match=r"True, False or Unknown"):
        set_condition(None, ready("true", c.SUCCEEDED))


def test_long_messages_are_cut_to_the_api_limit() -> None:
    conditions = set_condition(None, ready(c.FALSE, c.BUILD_FAILED, "x" * 40000), now=T0)
    assert len(conditions[0]["message"]) == c.MESSAGE_MAX_LENGTH
    assert conditions[0]["message"].endswith("…")


def test_naive_times_are_taken_as_utc() -> None:
    assert c.format_time(datetime(2026, 1, 2, 3, 4, 5, 999)) == "2026-01-02T03:04:05Z"
