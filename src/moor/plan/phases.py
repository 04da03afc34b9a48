"""Phases and waves: which rendered objects are hooks, when each runs, and in what order the rest is applied.

A pass runs in phases: `pre` hooks by wave (each wave complete before the next; only the set's CRDs and
Namespaces go before them), the `main` objects by wave (each wave healthy before the next; main-phase
hooks beside their wave), then `post` hooks once the main objects are healthy; `fail` hooks run when
any of that fails. `skip` objects are never applied, nor `test` hooks (Helm's tests are for `helm test`).
Hooks are not inventoried: they are created for the pass, and their delete policy says when they go.

Three spellings say the same thing; the first present wins: Moor's own (`moor.dev/phase`, `moor.dev/wave`,
`moor.dev/delete-policy`), Argo CD's (`argocd.argoproj.io/hook`, `argocd.argoproj.io/sync-wave`,
`argocd.argoproj.io/hook-delete-policy`), then Helm's (`helm.sh/hook`, `helm.sh/hook-weight`,
`helm.sh/hook-delete-policy`). Pure: annotations in, placements out.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from moor.errors import MoorError
from moor.objects import KubeObject, ObjectRef

MOOR_PHASE = "moor.dev/phase"
MOOR_WAVE = "moor.dev/wave"
MOOR_DELETE_POLICY = "moor.dev/delete-policy"
ARGO_HOOK = "argocd.argoproj.io/hook"
ARGO_WAVE = "argocd.argoproj.io/sync-wave"
ARGO_DELETE_POLICY = "argocd.argoproj.io/hook-delete-policy"
HELM_HOOK = "helm.sh/hook"
HELM_WEIGHT = "helm.sh/hook-weight"
HELM_DELETE_POLICY = "helm.sh/hook-delete-policy"
HOOK_LABEL = "moor.dev/hook-of"
"""Label on every hook a Sync runs (value: the Sync's key), in place of `moor.dev/sync`: hooks are not watched."""


class PhaseError(MoorError):
    """An object's phase, wave or delete-policy annotation holds a value Moor does not know."""


class Phase(enum.StrEnum):
    PRE = "pre"
    MAIN = "main"
    POST = "post"
    FAIL = "fail"
    SKIP = "skip"
    TEST = "test"


class DeletePolicy(enum.StrEnum):
    BEFORE_HOOK_CREATION = "before-hook-creation"
    HOOK_SUCCEEDED = "hook-succeeded"
    HOOK_FAILED = "hook-failed"


_RUN_ORDER = (Phase.PRE, Phase.MAIN, Phase.POST, Phase.FAIL)

_MOOR_PHASES = {phase.value: phase for phase in (Phase.PRE, Phase.MAIN, Phase.POST, Phase.FAIL, Phase.SKIP)}
_ARGO_HOOKS = {"PreSync": Phase.PRE, "Sync": Phase.MAIN, "PostSync": Phase.POST, "SyncFail": Phase.FAIL}
_ARGO_NEVER = {"Skip", "PreDelete", "PostDelete"}
_HELM_INSTALL = {"pre-install": Phase.PRE, "post-install": Phase.POST}
_HELM_UPGRADE = {"pre-upgrade": Phase.PRE, "post-upgrade": Phase.POST}
_HELM_NEVER = {"pre-delete", "post-delete", "pre-rollback", "post-rollback"}
_HELM_TESTS = {"test", "test-success"}
_DELETE_POLICIES = {
    **{policy.value: policy for policy in DeletePolicy},
    "BeforeHookCreation": DeletePolicy.BEFORE_HOOK_CREATION,
    "HookSucceeded": DeletePolicy.HOOK_SUCCEEDED,
    "HookFailed": DeletePolicy.HOOK_FAILED,
}


@dataclass(frozen=True)
class Placement:
    """Where one rendered object belongs in a pass."""

    phase: Phase
    wave: int
    hook: bool
    """Created for the pass and kept out of the inventory (every pre, post and fail object; Argo CD's Sync hooks)."""
    kind_of_hook: str = ""
    """What the annotation called it, for messages: `pre-upgrade`, `PreSync`, `pre`."""
    delete_policies: frozenset[DeletePolicy] = frozenset()


@dataclass(frozen=True)
class Hook:
    """One hook of a pass, ready to create (its name may be empty when the object has `generateName`)."""

    obj: KubeObject
    phase: Phase
    wave: int
    kind_of_hook: str
    delete_policies: frozenset[DeletePolicy]

    @property
    def ref(self) -> ObjectRef:
        return ObjectRef.of(self.obj)

    @property
    def generate_name(self) -> str:
        return str((self.obj.get("metadata") or {}).get("generateName") or "")

    def describe(self, name: str = "") -> str:
        """`pre-upgrade hook Job ns/migrate (wave 0)`; `name` is the one the server generated, if any."""
        ref = self.ref
        shown = name or ref.name or f"{self.generate_name}*"
        where = f"{ref.namespace}/" if ref.namespace else ""
        return f"{self.kind_of_hook} hook {ref.kind} {where}{shown} (wave {self.wave})"


@dataclass(frozen=True)
class Skipped:
    """A rendered object a pass does not apply, and why."""

    ref: ObjectRef
    why: str


@dataclass(frozen=True)
class Phases:
    """The hooks of one render and the objects it leaves out; the main objects travel apart (a DesiredSet)."""

    hooks: tuple[Hook, ...] = ()
    skipped: tuple[Skipped, ...] = ()

    def waves_of(self, phase: Phase) -> list[tuple[int, list[Hook]]]:
        """The hooks of `phase` grouped by wave, lowest first, in render order within a wave."""
        grouped: dict[int, list[Hook]] = {}
        for hook in self.hooks:
            if hook.phase is phase:
                grouped.setdefault(hook.wave, []).append(hook)
        return sorted(grouped.items())

    def placed(self, prepare: Callable[[KubeObject], KubeObject]) -> Phases:
        """The same hooks with each object passed through `prepare` (labels and namespace)."""
        return replace(self, hooks=tuple(replace(hook, obj=prepare(hook.obj)) for hook in self.hooks))


def split_phases(objects: Iterable[KubeObject], *, is_upgrade: bool) -> tuple[list[KubeObject], Phases]:
    """The main objects (in their order) and the hooks and skipped objects of a render, placed for a pass
    that installs (`is_upgrade` False) or upgrades."""
    main: list[KubeObject] = []
    hooks: list[Hook] = []
    skipped: list[Skipped] = []
    for obj in objects:
        placement = place(obj, is_upgrade=is_upgrade)
        if placement.phase is Phase.SKIP or placement.phase is Phase.TEST:
            skipped.append(Skipped(ObjectRef.of(obj), _why_skipped(placement)))
        elif placement.hook:
            hooks.append(Hook(obj, placement.phase, placement.wave, placement.kind_of_hook, placement.delete_policies))
        else:
            main.append(obj)
    order = {phase: index for index, phase in enumerate(_RUN_ORDER)}
    hooks.sort(key=lambda hook: (order[hook.phase], hook.wave))  # stable: render order within a wave
    return main, Phases(tuple(hooks), tuple(skipped))


def place(obj: Mapping[str, Any], *, is_upgrade: bool) -> Placement:
    """The phase, wave and delete policies of one object; PhaseError names the object and the bad value."""
    annotations = _annotations(obj)
    policies = _delete_policies(obj, annotations)
    if MOOR_PHASE in annotations:
        value = annotations[MOOR_PHASE].strip()
        phase = _MOOR_PHASES.get(value)
        if phase is None:
            known = ", ".join(_MOOR_PHASES)
            raise PhaseError(f"{_name(obj)} has {MOOR_PHASE}: {value!r}; it must be one of {known}")
        hook = phase in (Phase.PRE, Phase.POST, Phase.FAIL)
        return Placement(phase, wave_of(obj), hook, value, policies if hook else frozenset())
    if ARGO_HOOK in annotations:
        return _argo_placement(obj, annotations[ARGO_HOOK], policies)
    if HELM_HOOK in annotations:
        return _helm_placement(obj, annotations, policies, is_upgrade=is_upgrade)
    return Placement(Phase.MAIN, wave_of(obj), hook=False)


def wave_of(obj: Mapping[str, Any]) -> int:
    """An object's wave: `moor.dev/wave`, else `argocd.argoproj.io/sync-wave`, else a Helm hook's weight, else 0."""
    annotations = _annotations(obj)
    for key in (MOOR_WAVE, ARGO_WAVE, HELM_WEIGHT):
        if key in annotations:
            if key == HELM_WEIGHT and HELM_HOOK not in annotations:
                continue
            return _integer(obj, key, annotations[key])
    return 0


def main_waves(objects: Sequence[Mapping[str, Any]]) -> list[int]:
    """Every wave the main objects use, lowest first."""
    return sorted({wave_of(obj) for obj in objects})


def _argo_placement(obj: Mapping[str, Any], value: str, policies: frozenset[DeletePolicy]) -> Placement:
    names = _listed(value)
    if any(name in _ARGO_NEVER for name in names):
        return Placement(Phase.SKIP, 0, hook=False, kind_of_hook=",".join(names))
    unknown = [name for name in names if name not in _ARGO_HOOKS]
    if unknown or not names:
        known = ", ".join([*_ARGO_HOOKS, "Skip"])
        raise PhaseError(f"{_name(obj)} has {ARGO_HOOK}: {value!r}; each hook must be one of {known}")
    phase = _earliest(_ARGO_HOOKS[name] for name in names)
    kind = next(name for name in names if _ARGO_HOOKS[name] is phase)
    return Placement(phase, wave_of(obj), hook=True, kind_of_hook=kind, delete_policies=policies)


def _helm_placement(
    obj: Mapping[str, Any], annotations: Mapping[str, str], policies: frozenset[DeletePolicy], *, is_upgrade: bool
) -> Placement:
    value = annotations[HELM_HOOK]
    names = _listed(value)
    known = {*_HELM_INSTALL, *_HELM_UPGRADE, *_HELM_NEVER, *_HELM_TESTS}
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        listed = ", ".join(sorted(known))
        raise PhaseError(f"{_name(obj)} has {HELM_HOOK}: {value!r}; each hook must be one of {listed}")
    wave = wave_of(obj)
    if any(name in _HELM_TESTS for name in names):
        return Placement(Phase.TEST, wave, hook=True, kind_of_hook=",".join(names))
    now = _HELM_UPGRADE if is_upgrade else _HELM_INSTALL
    due = [name for name in names if name in now]
    if not due:
        return Placement(Phase.SKIP, wave, hook=True, kind_of_hook=",".join(names))
    phase = _earliest(now[name] for name in due)
    kind = next(name for name in due if now[name] is phase)
    return Placement(phase, wave, hook=True, kind_of_hook=kind, delete_policies=policies)


def _delete_policies(obj: Mapping[str, Any], annotations: Mapping[str, str]) -> frozenset[DeletePolicy]:
    """The first delete-policy annotation present, read; without any, before-hook-creation (Helm's and Argo
    CD's default)."""
    for key in (MOOR_DELETE_POLICY, ARGO_DELETE_POLICY, HELM_DELETE_POLICY):
        if key not in annotations:
            continue
        policies = set()
        for name in _listed(annotations[key]):
            policy = _DELETE_POLICIES.get(name)
            if policy is None:
                known = ", ".join(sorted(_DELETE_POLICIES))
                raise PhaseError(f"{_name(obj)} has {key}: {annotations[key]!r}; each policy must be one of {known}")
            policies.add(policy)
        return frozenset(policies or {DeletePolicy.BEFORE_HOOK_CREATION})
    return frozenset({DeletePolicy.BEFORE_HOOK_CREATION})


def _why_skipped(placement: Placement) -> str:
    if placement.phase is Phase.TEST:
        return f"a {placement.kind_of_hook} hook: run by `helm test`, never by a sync"
    if not placement.hook:
        return f"annotated to be skipped ({placement.kind_of_hook or 'skip'})"
    return f"a {placement.kind_of_hook} hook: not run by this pass"


def _earliest(phases: Iterable[Phase]) -> Phase:
    return min(phases, key=_RUN_ORDER.index)


def _listed(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _integer(obj: Mapping[str, Any], key: str, value: str) -> int:
    try:
        return int(value.strip())
    except ValueError:
        raise PhaseError(f"{_name(obj)} has {key}: {value!r}, which is not an integer") from None


def _annotations(obj: Mapping[str, Any]) -> dict[str, str]:
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    return {str(key): str(value) for key, value in annotations.items()}


def _name(obj: Mapping[str, Any]) -> str:
    ref = ObjectRef.of(obj)
    if not ref.name:
        generated = (obj.get("metadata") or {}).get("generateName") or ""
        ref = replace(ref, name=f"{generated}*")
    return str(ref)
