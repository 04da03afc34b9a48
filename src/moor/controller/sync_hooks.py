"""A revision's hooks, run in their phases and waves: each wave written, waited on until every hook in it
is done (a Job complete), its delete policies applied; a hook that fails, or is not done within the
Sync's timeout, fails the revision (HookFailed). `SyncReconciler.converge` decides when hooks are due."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from moor.cluster.apply import Applier, ApplyOutcome, Waves
from moor.cluster.client import ApiError
from moor.controller.scheduling import cluster_failed
from moor.controller.sync_report import HOOK_FAILED, Attempt, SyncFailed, SyncReporter
from moor.errors import MoorError
from moor.health import HealthState, HealthStatus
from moor.health.wait import poll_until_healthy
from moor.objects import ObjectRef
from moor.plan import DeletePolicy, DesiredSet, Hook, ObjectChange, Phase, Phases, main_waves, wave_of
from moor.resources import SyncSpec, format_duration

log = logging.getLogger(__name__)


class HealthGate(Protocol):
    """Waits until objects are healthy, raising SyncFailed (HealthCheckFailed) when they are not."""

    def __call__(
        self,
        attempt: Attempt,
        spec: SyncSpec,
        refs: Sequence[ObjectRef],
        applied: Mapping[ObjectRef, int] | None = None,
        *,
        what: str = "",
    ) -> Awaitable[None]: ...


@dataclass
class HookRunner:
    """Writes and waits on the hooks of one pass; `waves` hands the main objects' wave gate to the applier."""

    applier_of: Callable[[Attempt, SyncSpec], Applier]
    """The applier a Sync's writes go through (as its service account, when it has one)."""
    report: SyncReporter
    check_health: HealthGate

    def waves(
        self, attempt: Attempt, spec: SyncSpec, desired: DesiredSet, phases: Phases, writes: Sequence[ObjectChange]
    ) -> Waves | None:
        """How the main objects are written when `phases` has hooks to run (the pre hooks once the first stage,
        CRDs and Namespaces, is written), or they use more than one wave: each wave healthy before the next is
        written. None when one stage is all there is."""
        numbers = main_waves(desired.objects)
        hook_waves = dict(phases.waves_of(Phase.MAIN))
        pre = phases.waves_of(Phase.PRE)
        if not hook_waves and not pre and (len(numbers) < 2 or not writes):
            return None
        every = sorted({*numbers, *hook_waves})
        refs_of: dict[int, list[ObjectRef]] = {}
        for obj, ref in zip(desired.objects, desired.refs, strict=True):
            refs_of.setdefault(wave_of(obj), []).append(ref)

        async def reached(number: int, outcome: ApplyOutcome) -> None:
            if number in hook_waves:
                await self.run_wave(attempt, spec, hook_waves[number])
            if number != every[-1] and refs_of.get(number):
                what = f"wave {number} is"
                await self.check_health(attempt, spec, refs_of[number], outcome.applied_versions, what=what)

        async def before() -> None:
            for _, hooks in pre:
                await self.run_wave(attempt, spec, hooks)

        return Waves(wave_of, every, reached, before if pre else None)

    async def run(self, attempt: Attempt, spec: SyncSpec, phases: Phases, phase: Phase) -> None:
        """Runs the hooks of `phase`, one wave at a time: a wave must complete before the next one starts."""
        for _, hooks in phases.waves_of(phase):
            await self.run_wave(attempt, spec, hooks)

    async def run_after_failure(self, attempt: Attempt, spec: SyncSpec, phases: Phases) -> None:
        """After a failure, the fail hooks: their own failure is recorded and logged, never reported in its place."""
        try:
            await self.run(attempt, spec, phases, Phase.FAIL)
        except SyncFailed as failure:
            log.warning("%s: a fail hook failed too: %s", attempt.ref, failure)

    async def run_wave(self, attempt: Attempt, spec: SyncSpec, hooks: Sequence[Hook]) -> None:
        """Writes the hooks of one wave, waits until all are done (a Job complete), applies their delete
        policies, and fails the revision (HookFailed) when one failed or did not finish in spec.timeout."""
        applier = self.applier_of(attempt, spec)
        written: list[tuple[Hook, ObjectRef]] = []
        for hook in hooks:
            recreate = DeletePolicy.BEFORE_HOOK_CREATION in hook.delete_policies
            try:
                live = await applier.write_hook(hook.obj, recreate=recreate)
            except ApiError as error:
                if cluster_failed(error):
                    raise
                note_hook(attempt, hook, hook.ref, "Failed")
                message = f"revision {attempt.revision}: {hook.describe()} was refused: {error}"
                raise SyncFailed(HOOK_FAILED, message, revision_failed=True) from None
            except MoorError as error:
                note_hook(attempt, hook, hook.ref, "Failed")
                raise SyncFailed(HOOK_FAILED, f"revision {attempt.revision}: {error}", revision_failed=True) from None
            written.append((hook, replace(hook.ref, name=str(live["metadata"]["name"]))))
        names = {ref: hook.describe(ref.name) for hook, ref in written}

        async def still_waiting(health: HealthStatus) -> None:
            waiting = ", ".join(names.values())
            message = f"revision {attempt.revision}: waiting for {waiting} to complete: {health.message}"
            await self.report.waiting(attempt, message)

        statuses = await poll_until_healthy(
            applier.api.get,
            [ref for _, ref in written],
            spec.timeout.total_seconds(),
            still_waiting=still_waiting,
            checks=spec.health_checks,
        )
        done: list[ObjectRef] = []
        failed: list[str] = []
        for hook, ref in written:
            status = statuses[ref]
            result = "Succeeded" if status.healthy else "Failed"
            note_hook(attempt, hook, ref, result)
            policy = DeletePolicy.HOOK_SUCCEEDED if status.healthy else DeletePolicy.HOOK_FAILED
            if policy in hook.delete_policies:
                done.append(ref)
            if not status.healthy:
                why = (
                    status.message
                    if status.state is HealthState.FAILED
                    else f"not done after {format_duration(spec.timeout)}: {status.message}"
                )
                failed.append(f"{names[ref]} failed: {why}")
        if done:
            for rejection in await applier.delete_all(done, ApplyOutcome()):
                log.warning("%s: could not delete a hook as its delete policy asks: %s", attempt.ref, rejection)
        if failed:
            raise SyncFailed(HOOK_FAILED, f"revision {attempt.revision}: {'; '.join(failed)}", revision_failed=True)


def note_hook(attempt: Attempt, hook: Hook, ref: ObjectRef, result: str) -> None:
    """Adds a hook's outcome to the attempt (its record) and to status.hooks."""
    entry = {
        "phase": str(hook.phase),
        "hook": hook.kind_of_hook,
        "wave": hook.wave,
        **ref.to_dict(),
        "result": result,
    }
    attempt.hooks.append(entry)
    attempt.status["hooks"] = list(attempt.hooks)
