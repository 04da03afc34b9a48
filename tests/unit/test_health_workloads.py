"""Health of workloads: Deployment, StatefulSet, DaemonSet, ReplicaSet, Job and Pod."""

from typing import Any

from moor.health import HealthState, assess_health
from tests.unit.fixtures import load

HEALTHY, PROGRESSING, FAILED = HealthState.HEALTHY, HealthState.PROGRESSING, HealthState.FAILED


def verdict(obj: dict[str, Any]) -> tuple[HealthState, str]:
    status = assess_health(obj)
    return status.state, status.message


# Deployment


def test_a_rolled_out_deployment_is_healthy() -> None:
    assert verdict(load("deployment-web-live")) == (HEALTHY, "Deployment guestbook/web: 3 of 3 replicas available")


def test_a_deployment_with_unavailable_replicas_is_progressing() -> None:
    deployment = load("deployment-web-live")
    deployment["status"].update(availableReplicas=1, readyReplicas=1)
    assert verdict(deployment) == (PROGRESSING, "Deployment guestbook/web: 1 of 3 replicas available")


def test_a_deployment_whose_new_generation_is_not_observed_is_progressing() -> None:
    deployment = load("deployment-web-live")
    deployment["metadata"]["generation"] = 2
    assert verdict(deployment) == (
        PROGRESSING,
        "Deployment guestbook/web: waiting for the controller to observe generation 2",
    )


def test_a_deployment_mid_rollout_reports_updated_then_old_replicas() -> None:
    deployment = load("deployment-web-live")
    deployment["status"].update(updatedReplicas=1, replicas=4)
    assert verdict(deployment)[1] == "Deployment guestbook/web: 1 of 3 replicas updated"
    deployment["status"].update(updatedReplicas=3, replicas=4)
    assert verdict(deployment) == (PROGRESSING, "Deployment guestbook/web: 1 old replica pending termination")


def test_a_deployment_past_its_progress_deadline_has_failed() -> None:
    deployment = load("deployment-web-live")
    deployment["status"]["availableReplicas"] = 0
    deployment["status"]["conditions"][1].update(
        status="False",
        reason="ProgressDeadlineExceeded",
        message='ReplicaSet "web-7d9f8c6b5d" has timed out progressing.',
    )
    assert verdict(deployment) == (
        FAILED,
        "Deployment guestbook/web: rollout exceeded its progress deadline "
        '(ProgressDeadlineExceeded: ReplicaSet "web-7d9f8c6b5d" has timed out progressing.)',
    )


def test_a_deployment_that_cannot_create_pods_has_failed() -> None:
    deployment = load("deployment-web-live")
    deployment["status"]["conditions"].append(
        {
            "type": "ReplicaFailure",
            "status": "True",
            "reason": "FailedCreate",
            "message": 'pods "web-x" is forbidden: exceeded quota',
        }
    )
    state, message = verdict(deployment)
    assert state is FAILED
    assert message.startswith("Deployment guestbook/web: cannot create pods (FailedCreate: pods")


def test_a_paused_deployment_is_healthy_so_nothing_waits_for_it() -> None:
    deployment = load("deployment-web-live")
    deployment["spec"]["paused"] = True
    deployment["status"]["availableReplicas"] = 0
    assert verdict(deployment) == (HEALTHY, "Deployment guestbook/web: rollout paused, not waiting for it")


def test_a_deployment_scaled_to_zero_is_healthy() -> None:
    deployment = load("deployment-web-live")
    deployment["spec"]["replicas"] = 0
    deployment["status"] = {"observedGeneration": 1}
    assert verdict(deployment) == (HEALTHY, "Deployment guestbook/web: scaled to zero")


def test_a_just_created_deployment_without_status_is_progressing() -> None:
    deployment = load("deployment-web-desired")
    deployment["metadata"]["generation"] = 1
    assert verdict(deployment)[0] is PROGRESSING


# StatefulSet


def test_a_statefulset_mid_rolling_update_is_progressing() -> None:
    assert verdict(load("statefulset-db-rolling")) == (
        PROGRESSING,
        "StatefulSet guestbook/db: rolling update to db-84f5c6d7b9: 1 of 3 replicas updated",
    )


def test_a_statefulset_with_every_replica_on_the_current_revision_is_healthy() -> None:
    sts = load("statefulset-db-rolling")
    sts["status"].update(currentRevision="db-84f5c6d7b9", updatedReplicas=3, currentReplicas=3)
    assert verdict(sts) == (HEALTHY, "StatefulSet guestbook/db: 3 of 3 replicas ready")


def test_a_statefulset_with_unready_replicas_is_progressing() -> None:
    sts = load("statefulset-db-rolling")
    sts["status"]["readyReplicas"] = 2
    assert verdict(sts) == (PROGRESSING, "StatefulSet guestbook/db: 2 of 3 replicas ready")


def test_a_partitioned_statefulset_is_healthy_once_the_replicas_above_the_partition_are_updated() -> None:
    sts = load("statefulset-db-rolling")
    sts["spec"]["updateStrategy"]["rollingUpdate"]["partition"] = 2
    assert verdict(sts) == (
        HEALTHY,
        "StatefulSet guestbook/db: 3 of 3 replicas ready, rollout partitioned at ordinal 2",
    )
    sts["spec"]["updateStrategy"]["rollingUpdate"]["partition"] = 1
    assert verdict(sts) == (
        PROGRESSING,
        "StatefulSet guestbook/db: partitioned rollout: 1 of 2 replicas from ordinal 1 updated",
    )


def test_an_on_delete_statefulset_is_healthy_when_ready() -> None:
    sts = load("statefulset-db-rolling")
    sts["spec"]["updateStrategy"] = {"type": "OnDelete"}
    assert verdict(sts)[0] is HEALTHY


def test_a_statefulset_whose_generation_is_not_observed_is_progressing() -> None:
    sts = load("statefulset-db-rolling")
    sts["status"]["observedGeneration"] = 1
    assert verdict(sts)[0] is PROGRESSING


# DaemonSet


def test_a_rolled_out_daemonset_is_healthy() -> None:
    assert verdict(load("daemonset-node-agent")) == (HEALTHY, "DaemonSet monitoring/node-agent: 4 of 4 pods available")


def test_a_daemonset_mid_update_or_with_unavailable_pods_is_progressing() -> None:
    ds = load("daemonset-node-agent")
    ds["status"]["updatedNumberScheduled"] = 2
    assert verdict(ds) == (PROGRESSING, "DaemonSet monitoring/node-agent: 2 of 4 pods updated")
    ds = load("daemonset-node-agent")
    ds["status"]["numberAvailable"] = 3
    assert verdict(ds) == (PROGRESSING, "DaemonSet monitoring/node-agent: 3 of 4 pods available")


def test_an_on_delete_daemonset_does_not_wait_for_updates() -> None:
    ds = load("daemonset-node-agent")
    ds["spec"]["updateStrategy"] = {"type": "OnDelete"}
    ds["status"]["updatedNumberScheduled"] = 0
    assert verdict(ds)[0] is HEALTHY


# ReplicaSet


def replica_set(**status: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": "web-7d9f8c6b5d", "namespace": "guestbook", "generation": 1},
        "spec": {"replicas": 2},
        "status": {"observedGeneration": 1, **status},
    }


def test_replica_sets_by_availability_and_failure() -> None:
    assert verdict(replica_set(replicas=2, availableReplicas=2)) == (
        HEALTHY,
        "ReplicaSet guestbook/web-7d9f8c6b5d: 2 of 2 replicas available",
    )
    assert verdict(replica_set(replicas=2, availableReplicas=1))[0] is PROGRESSING
    failure = {"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate", "message": "quota"}
    assert verdict(replica_set(conditions=[failure]))[0] is FAILED


# Job


def test_a_job_past_its_backoff_limit_has_failed() -> None:
    assert verdict(load("job-migrate-failed")) == (
        FAILED,
        "Job guestbook/migrate: failed (BackoffLimitExceeded: Job has reached the specified backoff limit)",
    )


def test_a_completed_job_is_healthy_and_a_running_one_progressing() -> None:
    job = load("job-migrate-failed")
    job["status"] = {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}
    assert verdict(job) == (HEALTHY, "Job guestbook/migrate: completed")
    job["status"] = {"active": 1, "ready": 0}
    assert verdict(job) == (PROGRESSING, "Job guestbook/migrate: running: 1 active, 0 of 1 succeeded")


def test_a_suspended_job_is_healthy_so_nothing_waits_for_it() -> None:
    job = load("job-migrate-failed")
    job["spec"]["suspend"] = True
    job["status"] = {}
    assert verdict(job) == (HEALTHY, "Job guestbook/migrate: suspended, not waiting for it")


# Pod


def test_a_crash_looping_pod_has_failed() -> None:
    state, message = verdict(load("pod-web-crashloop"))
    assert state is FAILED
    assert message.startswith(
        "Pod guestbook/web-7d9f8c6b5d-x2k8p: container web is in CrashLoopBackOff (back-off 1m20s restarting"
    )


def test_a_pod_that_cannot_pull_its_image_has_failed() -> None:
    pod = load("pod-web-crashloop")
    pod["status"]["phase"] = "Pending"
    pod["status"]["containerStatuses"][0]["state"] = {
        "waiting": {"reason": "ImagePullBackOff", "message": 'Back-off pulling image "ghcr.io/example/guestbook:1.4.3"'}
    }
    assert verdict(pod) == (
        FAILED,
        "Pod guestbook/web-7d9f8c6b5d-x2k8p: container web is in ImagePullBackOff "
        '(Back-off pulling image "ghcr.io/example/guestbook:1.4.3")',
    )


def test_a_running_ready_pod_is_healthy_and_an_unready_one_progressing() -> None:
    pod = load("pod-web-crashloop")
    pod["status"]["containerStatuses"][0]["state"] = {"running": {"startedAt": "2026-11-02T09:20:00Z"}}
    assert verdict(pod) == (
        PROGRESSING,
        "Pod guestbook/web-7d9f8c6b5d-x2k8p: running, not ready "
        "(ContainersNotReady: containers with unready status: [web])",
    )
    for condition in pod["status"]["conditions"]:
        condition["status"] = "True"
    assert verdict(pod) == (HEALTHY, "Pod guestbook/web-7d9f8c6b5d-x2k8p: running and ready")


def test_a_pod_that_cannot_be_scheduled_is_progressing_with_the_reason() -> None:
    pod = load("pod-web-crashloop")
    pod["status"] = {
        "phase": "Pending",
        "conditions": [
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": "0/3 nodes are available: 3 Insufficient cpu.",
            }
        ],
    }
    assert verdict(pod) == (
        PROGRESSING,
        "Pod guestbook/web-7d9f8c6b5d-x2k8p: not scheduled yet "
        "(Unschedulable: 0/3 nodes are available: 3 Insufficient cpu.)",
    )


def test_a_failed_or_succeeded_pod() -> None:
    pod = load("pod-web-crashloop")
    pod["spec"]["restartPolicy"] = "Never"
    pod["status"]["phase"] = "Failed"
    pod["status"]["containerStatuses"][0]["state"] = {"terminated": {"exitCode": 2, "reason": "Error"}}
    assert verdict(pod) == (
        FAILED,
        "Pod guestbook/web-7d9f8c6b5d-x2k8p: failed (container web exited with code 2 (Error))",
    )
    pod["status"]["phase"] = "Succeeded"
    assert verdict(pod) == (HEALTHY, "Pod guestbook/web-7d9f8c6b5d-x2k8p: completed")


def test_a_never_restarting_pod_with_a_failed_container_has_failed_while_still_running() -> None:
    pod = load("pod-web-crashloop")
    pod["spec"]["restartPolicy"] = "Never"
    pod["status"]["containerStatuses"][0]["state"] = {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}
    assert verdict(pod) == (
        FAILED,
        "Pod guestbook/web-7d9f8c6b5d-x2k8p: container web exited with code 137 (OOMKilled)",
    )


def test_an_object_being_deleted_is_progressing() -> None:
    deployment = load("deployment-web-live")
    deployment["metadata"]["deletionTimestamp"] = "2026-11-03T10:00:00Z"
    assert verdict(deployment) == (PROGRESSING, "Deployment guestbook/web: being deleted")
