"""Conditions in plain words."""

from __future__ import annotations

from moor.web.ui.wording import describe, describe_all


def test_awaiting_approval_names_the_revision() -> None:
    status = {"pendingRevision": "main@sha1:" + "abc1234" + "0" * 33}
    sentence = describe({"type": "AwaitingApproval", "status": "True", "message": "m"}, status)
    assert sentence.text == "Waiting for approval of main@abc123400000 by someone who may approve."
    assert not sentence.healthy and sentence.detail == "m"


def test_drift_counts_objects() -> None:
    status = {"drift": [{}, {}]}
    assert describe({"type": "Drifted", "status": "True"}, status).text == "2 objects in the cluster differ from Git."
    assert describe({"type": "Drifted", "status": "True"}, {"drift": [{}]}).text.startswith(
        "1 object in the cluster differs"
    )


def test_reasons_become_sentences_and_ready_comes_first() -> None:
    obj = {
        "status": {
            "conditions": [
                {"type": "Stalled", "status": "True", "reason": "BuildFailed"},
                {"type": "Ready", "status": "False", "reason": "HealthCheckFailed", "message": "web: 0/1 ready"},
            ]
        }
    }
    sentences = describe_all(obj)
    assert sentences[0].type == "Ready"
    assert sentences[0].text == "The objects were applied but did not become healthy in time."
    assert not sentences[0].healthy
    assert sentences[1].text.startswith("Stalled")


def test_an_unknown_reason_is_still_said() -> None:
    assert describe({"type": "Ready", "status": "False", "reason": "Mystery"}, {}).text == "Ready is False (Mystery)."
