"""No Secret value leaves the server: a Secret shows its keys and whether each differs from Git."""

from __future__ import annotations

import json

from moor.web.ui import pages
from moor.web.ui.overview import Page, Query, State, row_of
from moor.web.ui.redaction import CHANGED, UNCHANGED, secret_keys, shown

VALUE = "s3cr3t-value"


def secret() -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "db",
            "namespace": "team",
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": json.dumps({"data": {"p": VALUE}})},
            "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:data": {"f:p": {}}}}],
        },
        "data": {"password": "czNjcjN0LXZhbHVl", "user": "YWRtaW4="},
        "stringData": {"token": VALUE},
    }


def test_a_secret_shows_keys_and_changed_or_not_never_values() -> None:
    redacted = shown(secret(), changed_keys={"password"})
    assert redacted["data"] == {"password": CHANGED, "user": UNCHANGED}
    assert redacted["stringData"] == {"token": UNCHANGED}
    text = json.dumps(redacted)
    assert VALUE not in text and "czNjcjN0LXZhbHVl" not in text and "YWRtaW4=" not in text
    assert "managedFields" not in redacted["metadata"]
    assert secret_keys(secret()) == ["password", "token", "user"]


def test_other_objects_keep_their_data() -> None:
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "v"}}
    assert shown(config)["data"] == {"k": "v"}


def test_a_secret_whose_data_is_not_a_mapping_is_hidden_whole() -> None:
    odd = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}, "data": VALUE}
    assert shown(odd)["data"] == UNCHANGED


def test_every_text_on_a_page_is_escaped() -> None:
    hostile = {
        "apiVersion": "moor.dev/v1",
        "kind": "Sync",
        "metadata": {"name": "web", "namespace": "team"},
        "status": {"conditions": [{"type": "Ready", "status": "False", "message": "<script>alert(1)</script>"}]},
    }
    row = row_of(hostile)
    html = pages.overview_content(Page((row,), 1, 1, 1, dict.fromkeys(State, 0)), Query())
    assert "<script>" not in html and "&lt;script&gt;" in html
