"""The health wait ends as soon as an object has failed, naming it, instead of running out the timeout."""

from __future__ import annotations

from typing import Any

from tests.support.git_fixtures import GitWorkspace
from tests.support.moor_fixtures import Moor, deployment, manifest


def failing_job(name: str) -> dict[str, Any]:
    """A Job that fails two seconds after it starts: its Pod can be scheduled nowhere, and its deadline passes."""
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "activeDeadlineSeconds": 2,
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "nodeSelector": {"moor.dev/no-such-node": "true"},
                    "containers": [{"name": name, "image": "busybox:1.36", "command": ["true"]}],
                }
            },
        },
    }


def test_a_failed_object_ends_the_wait_before_the_timeout(moor: Moor, git_repo: GitWorkspace) -> None:
    git_repo.write("app/web.yaml", manifest(deployment("stuck", never_ready=True)))
    git_repo.write("app/migrate.yaml", manifest(failing_job("migrate")))
    git_repo.commit("a deployment that never becomes ready and a job that fails")
    git_repo.push()
    moor.source_and_sync(git_repo, "./app", sync_spec="timeout: 10m")

    # Well within the ten minutes the Sync would otherwise wait for the Deployment.
    condition = moor.wait_condition("sync", "app", "False", reason="HealthCheckFailed", timeout=180)

    assert "Job" in condition["message"] and "migrate" in condition["message"]
    assert "failed" in condition["message"]
    assert moor.exists("deployment", "stuck"), "the revision was applied; only its health failed"
