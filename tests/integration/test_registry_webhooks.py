"""Registry webhooks: the real distribution registry, configured to notify `moor run --webhook-port`
with a static `Authorization: Bearer` token, makes a `crane push` scan the ImageRepositories of that
image at once (their interval is an hour: only the webhook can explain the scan), and the ImagePolicy
follows. Docker Hub's form (`?token=` in the URL) triggers too; a wrong token triggers nothing.

The module runs its own control plane and controller (the session's has no receiver) and its own
registry (whose notifications name this receiver).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from moor.web.registry_events import DISTRIBUTION_EVENTS
from tests.integration.test_image_scan import image_policy, image_repository, push, registry_secrets, wait_status
from tests.support.moor_fixtures import Moor
from tests.support.registry_fixtures import Registry
from tests.support.webhook_fixtures import (  # noqa: F401
    Receiver,
    notifying_registry,
    receiver,
    receiver_kubectl,
    receiver_moor,
)

pytestmark = pytest.mark.cluster


def test_a_push_to_the_registry_scans_its_image_repositories_at_once(
    receiver_moor: Moor,  # noqa: F811
    notifying_registry: Registry,  # noqa: F811
    receiver: Receiver,  # noqa: F811
    tmp_path: Path,
) -> None:
    moor, registry = receiver_moor, notifying_registry
    repository = f"hooks/{moor.namespace}/app"
    push(registry, tmp_path, repository, "1.0.0")
    registry_secrets(moor, registry)
    image_repository(moor, registry, repository)  # interval 1h
    image_policy(moor, {"policy": {"semver": {"range": ">=1.0.0"}}})
    wait_status(moor, "imagepolicy", "latest tag 1.0.0", lambda s: s.get("latestTag") == "1.0.0")

    push(registry, tmp_path, repository, "1.1.0")
    scanned = wait_status(
        moor, "imagerepository", "the pushed tag scanned", lambda s: s.get("tagCount") == 2, timeout=30
    )
    assert scanned["newestTags"][0] == "1.1.0"
    wait_status(moor, "imagepolicy", "latest tag 1.1.0", lambda s: s.get("latestTag") == "1.1.0", timeout=30)
    assert "distribution push of" in receiver.controller.log()


def test_a_wrong_token_triggers_nothing_and_docker_hubs_form_is_accepted(
    receiver_moor: Moor,  # noqa: F811
    notifying_registry: Registry,  # noqa: F811
    receiver: Receiver,  # noqa: F811
    tmp_path: Path,
) -> None:
    moor, registry = receiver_moor, notifying_registry
    repository = f"hooks/{moor.namespace}/hub"
    push(registry, tmp_path, repository, "1.0.0")
    registry_secrets(moor, registry)
    image_repository(moor, registry, repository)
    wait_status(moor, "imagerepository", "first scan", lambda s: s.get("tagCount") == 1)

    event = {
        "events": [
            {
                "action": "push",
                "target": {
                    "repository": repository,
                    "tag": "1.0.0",
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                },
                "request": {"host": registry.host},
            }
        ]
    }
    body = json.dumps(event).encode()
    status, answer = receiver.post(body, {"Content-Type": DISTRIBUTION_EVENTS, "Authorization": "Bearer wrong"})
    assert status == 401 and "does not match" in answer["error"]
    status, answer = receiver.post(body, {"Content-Type": DISTRIBUTION_EVENTS})
    assert status == 401

    status, answer = receiver.post(
        body, {"Content-Type": DISTRIBUTION_EVENTS, "Authorization": f"Bearer {receiver.token}"}
    )
    assert (status, answer["triggered"]) == (202, [f"{moor.namespace}/app"])
    hub = json.dumps({"push_data": {"tag": "x"}, "repository": {"repo_name": "nobody/nothing"}}).encode()
    status, answer = receiver.post(hub, {"Content-Type": "application/json"}, query=f"?token={receiver.token}")
    assert (status, answer["triggered"]) == (200, [])
