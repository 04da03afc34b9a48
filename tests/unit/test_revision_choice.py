"""Which revision a Sync holds: Git's newest, a pin, the last healthy one after a failure, or the
current one while a new revision awaits approval."""

from __future__ import annotations

from moor.controller.revision_choice import (
    APPROVED_REVISION_ANNOTATION,
    PIN_ANNOTATION,
    PINNED_SOURCE_ANNOTATION,
    Hold,
    choose_revision,
)

V1, V2, V3 = "main@sha1:" + "1" * 40, "main@sha1:" + "2" * 40, "main@sha1:" + "3" * 40


def test_git_newest_by_default() -> None:
    choice = choose_revision(V2, {"lastAppliedRevision": V1}, {}, manual_approval=False)
    assert (choice.hold, choice.revision) == (Hold.LATEST, V2)


def test_a_pin_holds_while_git_stays_and_is_released_when_git_moves() -> None:
    pin = {PIN_ANNOTATION: V1, PINNED_SOURCE_ANNOTATION: V2}
    held = choose_revision(V2, {}, pin, manual_approval=False)
    assert (held.hold, held.revision, held.pin_released) == (Hold.PINNED, V1, False)
    moved = choose_revision(V3, {}, pin, manual_approval=False)
    assert (moved.hold, moved.revision, moved.pin_released) == (Hold.LATEST, V3, True)


def test_a_failed_revision_is_not_retried_until_git_moves_on() -> None:
    status = {"lastHealthyRevision": V1, "rollback": {"failedRevision": V2}}
    held = choose_revision(V2, status, {}, manual_approval=False)
    assert (held.hold, held.revision) == (Hold.AFTER_FAILURE, V1)
    assert choose_revision(V3, status, {}, manual_approval=False).hold is Hold.LATEST


def test_manual_approval_waits_for_exactly_the_new_revision() -> None:
    status = {"lastAppliedRevision": V1}
    waiting = choose_revision(V2, status, {}, manual_approval=True)
    assert (waiting.hold, waiting.revision, waiting.source_revision) == (Hold.AWAITING_APPROVAL, V1, V2)
    approved = choose_revision(V2, status, {APPROVED_REVISION_ANNOTATION: V2}, manual_approval=True)
    assert approved.hold is Hold.LATEST
    superseded = choose_revision(V3, status, {APPROVED_REVISION_ANNOTATION: V2}, manual_approval=True)
    assert superseded.hold is Hold.AWAITING_APPROVAL
    already = choose_revision(V1, status, {}, manual_approval=True)
    assert already.hold is Hold.LATEST, "the applied revision itself needs no new approval"
