"""Health of Services, PVCs, Namespaces, CRDs, objects with a Ready condition, and of a whole set."""

from typing import Any

from moor.health import HealthState, HealthStatus, aggregate, assess_health, failures
from tests.unit.fixtures import load

HEALTHY, PROGRESSING, FAILED = HealthState.HEALTHY, HealthState.PROGRESSING, HealthState.FAILED


def verdict(obj: dict[str, Any]) -> tuple[HealthState, str]:
    status = assess_health(obj)
    return status.state, status.message


def test_a_cluster_ip_service_is_healthy_at_once() -> None:
    assert verdict(load("service-web-live")) == (HEALTHY, "Service guestbook/web: ClusterIP service")


def test_a_load_balancer_service_waits_for_an_address() -> None:
    service = load("service-web-live")
    service["spec"]["type"] = "LoadBalancer"
    assert verdict(service) == (PROGRESSING, "Service guestbook/web: waiting for a load balancer address")
    service["status"] = {"loadBalancer": {"ingress": [{"ip": "203.0.113.7", "ipMode": "VIP"}]}}
    assert verdict(service) == (HEALTHY, "Service guestbook/web: load balancer at 203.0.113.7")


def pvc(phase: str | None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data", "namespace": "guestbook"},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "1Gi"}},
            "volumeName": "pvc-3f1e",
        },
        "status": {"phase": phase} if phase else {},
    }


def test_persistent_volume_claims_are_healthy_when_bound() -> None:
    assert verdict(pvc("Bound")) == (HEALTHY, "PersistentVolumeClaim guestbook/data: bound to volume pvc-3f1e")
    assert verdict(pvc("Pending")) == (
        PROGRESSING,
        "PersistentVolumeClaim guestbook/data: waiting for a volume to bind",
    )
    assert verdict(pvc(None))[0] is PROGRESSING
    assert verdict(pvc("Lost")) == (FAILED, "PersistentVolumeClaim guestbook/data: lost its volume")


def namespace(phase: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "guestbook"}, "status": {"phase": phase}}


def test_namespaces_are_healthy_when_active_and_progressing_when_terminating() -> None:
    assert verdict(namespace("Active")) == (HEALTHY, "Namespace guestbook: active")
    assert verdict(namespace("Terminating")) == (PROGRESSING, "Namespace guestbook: terminating")


def test_an_established_crd_is_healthy() -> None:
    assert verdict(load("crd-widgets")) == (HEALTHY, "CustomResourceDefinition widgets.example.com: established")


def test_a_crd_not_yet_established_is_progressing() -> None:
    crd = load("crd-widgets")
    crd["status"]["conditions"] = crd["status"]["conditions"][:1]
    assert verdict(crd) == (PROGRESSING, "CustomResourceDefinition widgets.example.com: waiting to be established")


def test_a_crd_whose_names_conflict_has_failed() -> None:
    crd = load("crd-widgets")
    crd["status"]["conditions"] = [
        {
            "type": "NamesAccepted",
            "status": "False",
            "reason": "MultipleNamesNotAllowed",
            "message": '"widgets" is already in use',
        },
        {"type": "Established", "status": "False", "reason": "NotAccepted", "message": "not all names are accepted"},
    ]
    assert verdict(crd) == (
        FAILED,
        "CustomResourceDefinition widgets.example.com: names not accepted "
        '(MultipleNamesNotAllowed: "widgets" is already in use)',
    )


def custom(*conditions: dict[str, Any], generation: int = 3, observed: int | None = 3) -> dict[str, Any]:
    status: dict[str, Any] = {"conditions": list(conditions)}
    if observed is not None:
        status["observedGeneration"] = observed
    return {
        "apiVersion": "cert-manager.io/v1",
        "kind": "Certificate",
        "metadata": {"name": "web-tls", "namespace": "guestbook", "generation": generation},
        "status": status,
    }


def ready(status: str, reason: str = "", message: str = "", **extra: Any) -> dict[str, Any]:
    return {"type": "Ready", "status": status, "reason": reason, "message": message, **extra}


def test_objects_with_a_ready_condition_follow_it() -> None:
    assert verdict(custom(ready("True", "Ready", "Certificate is up to date and has not expired"))) == (
        HEALTHY,
        "Certificate guestbook/web-tls: Ready: Certificate is up to date and has not expired",
    )
    assert verdict(custom(ready("False", "Failed", "the issuer rejected the request"))) == (
        FAILED,
        "Certificate guestbook/web-tls: not ready: Failed: the issuer rejected the request",
    )
    assert verdict(custom(ready("Unknown", "Pending")))[0] is PROGRESSING


def test_not_ready_while_reconciling_or_issuing_is_progressing() -> None:
    issuing = {"type": "Issuing", "status": "True", "reason": "DoesNotExist"}
    assert verdict(custom(ready("False", "DoesNotExist", "secret not found"), issuing)) == (
        PROGRESSING,
        "Certificate guestbook/web-tls: not ready yet: DoesNotExist: secret not found",
    )
    reconciling = {"type": "Reconciling", "status": "True", "reason": "Progressing"}
    assert verdict(custom(ready("False", "Progressing"), reconciling))[0] is PROGRESSING


def test_stalled_is_failed_whatever_ready_says() -> None:
    stalled = {"type": "Stalled", "status": "True", "reason": "InvalidSpec", "message": "bad url"}
    assert verdict(custom(ready("Unknown"), stalled)) == (
        FAILED,
        "Certificate guestbook/web-tls: stalled: InvalidSpec: bad url",
    )


def test_a_ready_condition_about_an_older_generation_is_progressing() -> None:
    assert verdict(custom(ready("True"), observed=2)) == (
        PROGRESSING,
        "Certificate guestbook/web-tls: waiting for generation 3 to be observed",
    )
    assert verdict(custom(ready("True", observedGeneration=2), observed=None))[0] is PROGRESSING
    assert verdict(custom(ready("True", observedGeneration=3), observed=None))[0] is HEALTHY


def test_everything_else_is_healthy_when_it_exists() -> None:
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": "guestbook"}}
    assert verdict(config) == (HEALTHY, "ConfigMap guestbook/settings: exists")
    assert assess_health(config).ref is not None


def test_aggregate_is_the_worst_state_listing_unhealthy_objects_worst_first() -> None:
    statuses = [
        assess_health(load("deployment-web-live")),
        assess_health(load("statefulset-db-rolling")),
        assess_health(load("job-migrate-failed")),
    ]
    total = aggregate(statuses)
    assert total.state is FAILED
    assert total.message == (
        "2 of 3 objects not healthy: "
        "Job guestbook/migrate: failed (BackoffLimitExceeded: Job has reached the specified backoff limit); "
        "StatefulSet guestbook/db: rolling update to db-84f5c6d7b9: 1 of 3 replicas updated"
    )


def test_aggregate_of_healthy_or_no_objects_is_healthy() -> None:
    assert aggregate([assess_health(load("deployment-web-live"))]) == HealthStatus(HEALTHY, "1 object healthy")
    assert aggregate([]) == HealthStatus(HEALTHY, "no objects to check")


def test_aggregate_lists_at_most_five_objects() -> None:
    many = [HealthStatus(PROGRESSING, f"Pod ns/p{i}: pending") for i in range(7)]
    message = aggregate(many).message
    assert message.startswith("7 of 7 objects not healthy: Pod ns/p0: pending;")
    assert message.endswith("Pod ns/p4: pending; and 2 more")


def test_health_states_are_ordered_by_severity() -> None:
    assert HEALTHY.severity < PROGRESSING.severity < FAILED.severity
    assert str(HealthStatus(FAILED, "Job ns/j: failed")) == "Failed: Job ns/j: failed"


def test_not_ready_is_failed_only_when_the_reason_says_the_controller_failed() -> None:
    for reason in ("ReconciliationFailed", "ReconcileError", "InvalidSpec"):
        assert verdict(custom(ready("False", reason, "it broke")))[0] is FAILED, reason
    assert verdict(custom(ready("False", "Creating", "the database is being created"))) == (
        PROGRESSING,
        "Certificate guestbook/web-tls: not ready yet: Creating: the database is being created",
    )
    assert verdict(custom(ready("False", "DependencyNotReady")))[0] is PROGRESSING


def ingress_object(*addresses: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "web", "namespace": "guestbook"},
        "spec": {"rules": [{"host": "shop.example.com"}]},
        "status": {"loadBalancer": {"ingress": list(addresses)}} if addresses else {"loadBalancer": {}},
    }


def test_an_ingress_names_its_address_and_is_not_waited_for_without_one() -> None:
    assert verdict(ingress_object({"ip": "203.0.113.9"}, {"hostname": "lb.example.com"})) == (
        HEALTHY,
        "Ingress guestbook/web: published at 203.0.113.9, lb.example.com",
    )
    assert verdict(ingress_object()) == (
        HEALTHY,
        "Ingress guestbook/web: no address published by an ingress controller (not waited for)",
    )


def api_service(*conditions: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "apiregistration.k8s.io/v1",
        "kind": "APIService",
        "metadata": {"name": "v1beta1.metrics.k8s.io"},
        "spec": {"group": "metrics.k8s.io", "version": "v1beta1", "service": {"name": "metrics", "namespace": "kube"}},
        "status": {"conditions": list(conditions)},
    }


def available(status: str, reason: str, message: str) -> dict[str, Any]:
    return {"type": "Available", "status": status, "reason": reason, "message": message}


def test_an_api_service_is_healthy_when_available_and_progressing_until_then() -> None:
    assert verdict(api_service(available("True", "Passed", "all checks passed"))) == (
        HEALTHY,
        "APIService v1beta1.metrics.k8s.io: available (Passed: all checks passed)",
    )
    assert verdict(api_service(available("False", "MissingEndpoints", "endpoints for service/metrics have none"))) == (
        PROGRESSING,
        "APIService v1beta1.metrics.k8s.io: not available yet "
        "(MissingEndpoints: endpoints for service/metrics have none)",
    )
    assert verdict(api_service()) == (
        PROGRESSING,
        "APIService v1beta1.metrics.k8s.io: waiting for the API aggregator to check it",
    )


def test_failures_name_the_failed_objects_and_count_the_rest() -> None:
    statuses = [
        assess_health(load("deployment-web-live")),
        assess_health(load("statefulset-db-rolling")),
        assess_health(load("job-migrate-failed")),
    ]
    assert failures(statuses) == HealthStatus(
        FAILED,
        "1 of 3 objects failed: "
        "Job guestbook/migrate: failed (BackoffLimitExceeded: Job has reached the specified backoff limit) "
        "(1 more not healthy yet)",
    )
    assert failures(statuses[2:]).message.startswith("1 of 1 object failed: Job guestbook/migrate")
