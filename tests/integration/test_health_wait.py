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


def autoscaler(name: str, target: str) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
            "minReplicas": 1,
            "maxReplicas": 3,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}},
                }
            ],
        },
    }


def test_an_autoscaler_without_metrics_is_healthy_and_one_without_a_target_fails(
    moor: Moor, git_repo: GitWorkspace
) -> None:
    """The local cluster has no metrics server, like many real ones: that alone must not fail a Sync."""
    git_repo.write("app/web.yaml", manifest(deployment("web"), autoscaler("web", "web")))
    git_repo.commit("a deployment and its autoscaler")
    git_repo.push()
    moor.source_and_sync(git_repo, "./app", sync_spec="timeout: 10m")
    moor.wait_condition("sync", "app", "True", timeout=120)

    git_repo.write("app/typo.yaml", manifest(autoscaler("typo", "wbe")))
    commit = git_repo.commit("an autoscaler of a deployment that does not exist")
    git_repo.push()
    moor.reconcile()

    condition = moor.wait_condition("sync", "app", "False", reason="HealthCheckFailed", revision=commit, timeout=180)
    assert "HorizontalPodAutoscaler" in condition["message"] and "typo" in condition["message"]
    assert "FailedGetScale" in condition["message"]
