"""Which rendered objects are hooks, in which phase and wave they run, and what their delete policies are."""

from __future__ import annotations

from typing import Any

import pytest

from moor.objects import KubeObject
from moor.plan import DeletePolicy, Phase, PhaseError, main_waves, place, split_phases, wave_of


def obj(name: str, kind: str = "Job", **annotations: str) -> KubeObject:
    api_version = "batch/v1" if kind == "Job" else "v1"
    metadata: dict[str, Any] = {"name": name, "namespace": "apps"}
    if annotations:
        metadata["annotations"] = annotations
    return {"apiVersion": api_version, "kind": kind, "metadata": metadata}


def helm(name: str, hook: str, **more: str) -> KubeObject:
    return obj(name, **{"helm.sh/hook": hook, **more})


def argo(name: str, hook: str, **more: str) -> KubeObject:
    return obj(name, **{"argocd.argoproj.io/hook": hook, **more})


def test_an_object_without_annotations_is_a_main_object_of_wave_zero() -> None:
    placement = place(obj("web", "ConfigMap"), is_upgrade=False)

    assert (placement.phase, placement.wave, placement.hook) == (Phase.MAIN, 0, False)


@pytest.mark.parametrize(
    ("hook", "is_upgrade", "phase"),
    [
        ("pre-install", False, Phase.PRE),
        ("pre-install", True, Phase.SKIP),
        ("pre-upgrade", True, Phase.PRE),
        ("pre-upgrade", False, Phase.SKIP),
        ("pre-install,pre-upgrade", True, Phase.PRE),
        ("post-install", False, Phase.POST),
        ("post-upgrade", True, Phase.POST),
        ("pre-delete", False, Phase.SKIP),
        ("post-rollback", True, Phase.SKIP),
        ("test", False, Phase.TEST),
        ("test-success", True, Phase.TEST),
    ],
)
def test_helm_hooks_run_in_the_phase_of_an_install_or_an_upgrade(hook: str, is_upgrade: bool, phase: Phase) -> None:
    assert place(helm("migrate", hook), is_upgrade=is_upgrade).phase is phase


def test_a_helm_hook_weight_is_its_wave_and_its_default_delete_policy_is_before_hook_creation() -> None:
    placement = place(helm("migrate", "pre-upgrade", **{"helm.sh/hook-weight": "-5"}), is_upgrade=True)

    assert (placement.wave, placement.kind_of_hook) == (-5, "pre-upgrade")
    assert placement.delete_policies == {DeletePolicy.BEFORE_HOOK_CREATION}


def test_helm_delete_policies_are_read() -> None:
    hook = helm("migrate", "post-install", **{"helm.sh/hook-delete-policy": "hook-succeeded, hook-failed"})

    assert place(hook, is_upgrade=False).delete_policies == {DeletePolicy.HOOK_SUCCEEDED, DeletePolicy.HOOK_FAILED}


@pytest.mark.parametrize(
    ("hook", "phase", "is_hook"),
    [
        ("PreSync", Phase.PRE, True),
        ("Sync", Phase.MAIN, True),
        ("PostSync", Phase.POST, True),
        ("SyncFail", Phase.FAIL, True),
        ("Skip", Phase.SKIP, False),
    ],
)
def test_argo_cd_hooks(hook: str, phase: Phase, is_hook: bool) -> None:
    placement = place(argo("migrate", hook), is_upgrade=True)

    assert (placement.phase, placement.hook) == (phase, is_hook)


def test_argo_cd_waves_and_delete_policies() -> None:
    hook = argo(
        "migrate",
        "PreSync",
        **{"argocd.argoproj.io/sync-wave": "3", "argocd.argoproj.io/hook-delete-policy": "HookSucceeded"},
    )

    placement = place(hook, is_upgrade=False)

    assert (placement.wave, placement.delete_policies) == (3, {DeletePolicy.HOOK_SUCCEEDED})


def test_a_sync_wave_orders_main_objects_too() -> None:
    objects = [obj("a", "ConfigMap", **{"argocd.argoproj.io/sync-wave": "1"}), obj("b", "ConfigMap")]
    objects.append(obj("c", "ConfigMap", **{"moor.dev/wave": "-1"}))

    assert [wave_of(o) for o in objects] == [1, 0, -1]
    assert main_waves(objects) == [-1, 0, 1]


def test_moor_spelling_wins_over_argo_cd_and_helm() -> None:
    hook = obj(
        "migrate",
        **{"moor.dev/phase": "post", "moor.dev/wave": "2", "argocd.argoproj.io/hook": "PreSync"},
        **{"helm.sh/hook": "pre-install", "moor.dev/delete-policy": "hook-succeeded"},
    )

    placement = place(hook, is_upgrade=False)

    assert (placement.phase, placement.wave, placement.hook) == (Phase.POST, 2, True)
    assert placement.delete_policies == {DeletePolicy.HOOK_SUCCEEDED}


def test_a_moor_main_object_with_a_wave_is_not_a_hook() -> None:
    placement = place(obj("web", "ConfigMap", **{"moor.dev/phase": "main", "moor.dev/wave": "4"}), is_upgrade=False)

    assert (placement.phase, placement.wave, placement.hook) == (Phase.MAIN, 4, False)


def test_a_helm_weight_without_a_hook_is_no_wave() -> None:
    assert wave_of(obj("web", "ConfigMap", **{"helm.sh/hook-weight": "7"})) == 0


@pytest.mark.parametrize(
    ("annotations", "words"),
    [
        ({"helm.sh/hook": "pre-install", "helm.sh/hook-weight": "first"}, ["helm.sh/hook-weight", "'first'"]),
        ({"helm.sh/hook": "pre-instal"}, ["helm.sh/hook", "'pre-instal'"]),
        ({"argocd.argoproj.io/hook": "BeforeSync"}, ["argocd.argoproj.io/hook", "'BeforeSync'"]),
        ({"argocd.argoproj.io/sync-wave": "1.5"}, ["sync-wave", "not an integer"]),
        ({"moor.dev/phase": "later"}, ["moor.dev/phase", "'later'"]),
        ({"helm.sh/hook": "pre-install", "helm.sh/hook-delete-policy": "never"}, ["hook-delete-policy", "'never'"]),
    ],
)
def test_bad_values_name_the_object_and_the_annotation(annotations: dict[str, str], words: list[str]) -> None:
    with pytest.raises(PhaseError) as raised:
        place(obj("migrate", **annotations), is_upgrade=False)

    message = str(raised.value)
    assert "apps/migrate" in message and "Job" in message
    for word in words:
        assert word in message


def test_split_phases_orders_hooks_and_keeps_the_main_objects_in_render_order() -> None:
    objects = [
        obj("config", "ConfigMap"),
        helm("after", "post-install"),
        helm("second", "pre-install", **{"helm.sh/hook-weight": "0"}),
        helm("first", "pre-install", **{"helm.sh/hook-weight": "-1"}),
        helm("tests", "test"),
        argo("cleanup", "SyncFail"),
        obj("web", "ConfigMap", **{"argocd.argoproj.io/sync-wave": "1"}),
        argo("never", "Skip"),
    ]

    main, phases = split_phases(objects, is_upgrade=False)

    assert [o["metadata"]["name"] for o in main] == ["config", "web"]
    assert [(wave, [h.ref.name for h in hooks]) for wave, hooks in phases.waves_of(Phase.PRE)] == [
        (-1, ["first"]),
        (0, ["second"]),
    ]
    assert [h.ref.name for _, hooks in phases.waves_of(Phase.POST) for h in hooks] == ["after"]
    assert [h.ref.name for _, hooks in phases.waves_of(Phase.FAIL) for h in hooks] == ["cleanup"]
    assert sorted(skipped.ref.name for skipped in phases.skipped) == ["never", "tests"]
    assert "helm test" in next(s.why for s in phases.skipped if s.ref.name == "tests")


def test_a_hook_with_a_generate_name_is_described_by_it() -> None:
    hook: KubeObject = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"generateName": "migrate-", "namespace": "apps", "annotations": {"helm.sh/hook": "pre-install"}},
    }

    _, phases = split_phases([hook], is_upgrade=False)

    assert phases.hooks[0].generate_name == "migrate-"
    assert phases.hooks[0].describe() == "pre-install hook Job apps/migrate-* (wave 0)"
    assert phases.hooks[0].describe("migrate-x7k2p") == "pre-install hook Job apps/migrate-x7k2p (wave 0)"
