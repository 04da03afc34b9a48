"""Health of HorizontalPodAutoscalers: Argo CD's rule, except that missing metrics are no failure."""

from __future__ import annotations

import json
from typing import Any

from moor.health import HealthState, assess_health

HEALTHY, PROGRESSING, FAILED = HealthState.HEALTHY, HealthState.PROGRESSING, HealthState.FAILED


def verdict(obj: dict[str, Any]) -> tuple[HealthState, str]:
    status = assess_health(obj)
    return status.state, status.message


def hpa(*conditions: dict[str, Any], current: int = 3, api_version: str = "autoscaling/v2") -> dict[str, Any]:
    return {
        "apiVersion": api_version,
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web", "namespace": "shop", "generation": 1},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 2,
            "maxReplicas": 10,
        },
        "status": {"observedGeneration": 1, "currentReplicas": current, "conditions": list(conditions)},
    }


def condition(type_: str, status: str, reason: str, message: str = "") -> dict[str, Any]:
    return {"type": type_, "status": status, "reason": reason, "message": message}


ABLE = condition("AbleToScale", "True", "ReadyForNewScale", "recommended size matches current size")
ACTIVE = condition("ScalingActive", "True", "ValidMetricFound", "the HPA was able to calculate a replica count")
WITHIN = condition("ScalingLimited", "False", "DesiredWithinRange", "the desired count is within the range")


def test_an_autoscaler_that_can_scale_is_healthy_and_says_how_many_replicas_run() -> None:
    assert verdict(hpa(ABLE, ACTIVE, WITHIN)) == (
        HEALTHY,
        "HorizontalPodAutoscaler shop/web: 3 replicas (min 2, max 10)",
    )


def test_a_limited_autoscaler_is_healthy_and_says_why() -> None:
    limited = condition(
        "ScalingLimited", "True", "TooManyReplicas", "the desired replica count is more than the maximum"
    )
    assert verdict(hpa(ABLE, ACTIVE, limited, current=10)) == (
        HEALTHY,
        "HorizontalPodAutoscaler shop/web: 10 replicas (min 2, max 10), limited: TooManyReplicas: "
        "the desired replica count is more than the maximum",
    )


def test_an_autoscaler_that_cannot_reach_its_target_has_failed() -> None:
    missing = condition("AbleToScale", "False", "FailedGetScale", 'deployments/scale.apps "web" not found')
    assert verdict(hpa(missing)) == (
        FAILED,
        "HorizontalPodAutoscaler shop/web: AbleToScale is False "
        '(FailedGetScale: deployments/scale.apps "web" not found)',
    )
    assert verdict(hpa(condition("AbleToScale", "False", "FailedUpdateScale")))[0] is FAILED
    assert verdict(hpa(ABLE, condition("ScalingActive", "False", "InvalidSelector")))[0] is FAILED


def test_missing_metrics_are_reported_but_no_failure() -> None:
    no_metrics = condition(
        "ScalingActive", "False", "FailedGetResourceMetric", "unable to fetch metrics from resource metrics API"
    )
    assert verdict(hpa(ABLE, no_metrics)) == (
        HEALTHY,
        "HorizontalPodAutoscaler shop/web: 3 replicas (min 2, max 10), not scaling "
        "(FailedGetResourceMetric: unable to fetch metrics from resource metrics API)",
    )


def test_an_autoscaler_of_a_target_scaled_to_zero_is_healthy() -> None:
    disabled = condition(
        "ScalingActive", "False", "ScalingDisabled", "scaling is disabled since the replica count is zero"
    )
    assert verdict(hpa(ABLE, disabled))[0] is HEALTHY


def test_an_autoscaler_not_yet_looked_at_is_progressing() -> None:
    assert verdict(hpa()) == (
        PROGRESSING,
        "HorizontalPodAutoscaler shop/web: waiting for the autoscaler to read its target's scale",
    )
    newer = hpa(ABLE, ACTIVE)
    newer["metadata"]["generation"] = 2
    assert verdict(newer) == (PROGRESSING, "HorizontalPodAutoscaler shop/web: waiting for generation 2 to be observed")


def test_autoscaling_v1_conditions_are_read_from_their_annotation() -> None:
    v1 = hpa(api_version="autoscaling/v1")
    del v1["status"]["conditions"]
    v1["metadata"]["annotations"] = {
        "autoscaling.alpha.kubernetes.io/conditions": json.dumps(
            [ABLE, condition("ScalingActive", "False", "FailedGetResourceMetric", "missing request for cpu")]
        )
    }
    assert verdict(v1)[1].endswith("not scaling (FailedGetResourceMetric: missing request for cpu)")
    missing = condition("AbleToScale", "False", "FailedGetScale")
    v1["metadata"]["annotations"]["autoscaling.alpha.kubernetes.io/conditions"] = json.dumps([missing])
    assert verdict(v1)[0] is FAILED
    v1["metadata"]["annotations"]["autoscaling.alpha.kubernetes.io/conditions"] = "not json"
    assert verdict(v1)[0] is PROGRESSING
