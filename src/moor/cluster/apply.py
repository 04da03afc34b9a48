"""The apply engine: validate a whole change set with server-side dry runs, then write it in stages.

What is atomic: every object is dry-run before anything is written, and one rejection stops the
whole set. The exception is an object whose CustomResourceDefinition or Namespace is created by the
same set: the API server cannot validate it until that CRD or Namespace exists, so the set is
written in two stages, CRDs and Namespaces first, and those deferred objects are dry-run right after
the first stage, still before any other object is written. If one of them is rejected, only the new
CRDs and Namespaces of the first stage have been written.

With `Waves`, the objects after the first stage are written one wave at a time, lowest first: the
caller's `before` is awaited once the first stage is written (to run the pre hooks, which may need the
set's CRDs and Namespaces, as Helm installs a chart's crds/ before its hooks), and its `reached` after
each wave (to wait until that wave is healthy, or run the hooks beside it). Every object is still
dry-run before the first write, so a set the API server rejects runs no hook; a later wave is written
only once `reached` returned for the earlier ones.

Requests run concurrently within a bound, as one task group: when the cluster itself fails (unreachable,
timed out, answering 429/502/503/504) or anything unexpected is raised, the other requests are cancelled,
and none is still running once `apply_set` or `delete_all` has returned or raised.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from moor.cluster.api import KubeApi, UnknownKind
from moor.cluster.client import ApiError, ApiUnreachable
from moor.errors import MoorError
from moor.objects import Identity, KubeObject, ObjectRef

CRD_GROUP = "apiextensions.k8s.io"
T = TypeVar("T")


@dataclass(frozen=True)
class Rejection:
    """One object the API server refused, with its reason as the server gave it."""

    ref: ObjectRef
    reason: str

    def __str__(self) -> str:
        return f"{self.ref}: {self.reason}"


class ChangeSetRejected(MoorError):
    def __init__(self, rejections: Sequence[Rejection], *, written: Sequence[ObjectRef] = ()) -> None:
        self.rejections = list(rejections)
        self.written = list(written)
        listed = "; ".join(str(rejection) for rejection in self.rejections)
        prefix = "the API server rejected" if not written else "after the first stage, the API server rejected"
        super().__init__(f"{prefix} {len(self.rejections)} object(s), so nothing else was written: {listed}")


@dataclass
class ApplyOutcome:
    created: list[ObjectRef] = field(default_factory=list)
    configured: list[ObjectRef] = field(default_factory=list)
    deleted: list[ObjectRef] = field(default_factory=list)
    applied_versions: dict[ObjectRef, int] = field(default_factory=dict)
    """The resourceVersion each apply returned: health waits until the live cache has caught up."""


@dataclass(frozen=True)
class Waves:
    """How a change set is written in waves: each object's wave, every wave of the pass (also those with
    nothing to write), what to await once a wave is written, and what to await before the first wave."""

    of: Callable[[KubeObject], int]
    numbers: Sequence[int]
    reached: Callable[[int, ApplyOutcome], Awaitable[None]]
    before: Callable[[], Awaitable[None]] | None = None


def is_first_stage(obj: KubeObject) -> bool:
    """CRDs and Namespaces go first: other objects of the set may need them to exist."""
    ref = ObjectRef.of(obj)
    return (ref.group, ref.kind) in {(CRD_GROUP, "CustomResourceDefinition"), ("", "Namespace")}


class Applier:
    def __init__(self, api: KubeApi, *, concurrency: int = 16, force: bool = False) -> None:
        self.api = api
        self.force = force
        self._forced: set[Identity] = set()
        self._limit = asyncio.Semaphore(concurrency)

    async def apply_set(
        self,
        changes: Sequence[KubeObject],
        existing: Iterable[ObjectRef] = (),
        *,
        take_over: Iterable[ObjectRef] = (),
        before_writes: Callable[[], Awaitable[None]] | None = None,
        waves: Waves | None = None,
    ) -> ApplyOutcome:
        """Dry-runs every object in `changes`, then writes them; `existing` are those already live.

        Objects in `take_over` are applied with force even without the applier's `force`, taking their
        fields back from whoever holds them (what correcting drift means). `before_writes` is awaited once
        every dry run has passed, before the first write. With `waves`, the objects after the first stage
        are written wave by wave.
        """
        live = {ref.identity for ref in existing}
        self._forced = {ref.identity for ref in take_over}
        first = [obj for obj in changes if is_first_stage(obj)]
        rest = [obj for obj in changes if not is_first_stage(obj)]
        arriving_crds = {_crd_kind(obj) for obj in first if ObjectRef.of(obj).kind == "CustomResourceDefinition"}
        arriving_namespaces = {ObjectRef.of(obj).name for obj in first if ObjectRef.of(obj).kind == "Namespace"}

        deferred: list[KubeObject] = []
        rejections: list[Rejection] = []
        errors = await self._bounded(self._dry_run, changes)
        unknown = [
            i
            for i, e in enumerate(errors)
            if isinstance(e, UnknownKind) and _group_kind(changes[i]) not in arriving_crds
        ]
        if unknown:
            # A CRD applied a moment ago (by an earlier pass) may be missing from discovery, which is only
            # refreshed every few seconds on its own: refresh once and try those objects again.
            await self.api.discovery.refresh()
            retried = await self._bounded(self._dry_run, [changes[i] for i in unknown])
            for index, error in zip(unknown, retried, strict=True):
                errors[index] = error
        for obj, error in zip(changes, errors, strict=True):
            if error is None:
                continue
            if _waits_for_first_stage(obj, error, arriving_crds, arriving_namespaces):
                deferred.append(obj)
            else:
                rejections.append(Rejection(ObjectRef.of(obj), _reason(error)))
        if rejections:
            raise ChangeSetRejected(rejections)
        if before_writes is not None:
            await before_writes()

        outcome = ApplyOutcome()
        await self._write(first, live, outcome)
        if deferred:
            await self._wait_for_crds([obj for obj in first if ObjectRef.of(obj).kind == "CustomResourceDefinition"])
            await self._wait_until_served(deferred)
            errors = await self._bounded(self._dry_run, deferred)
            rejections = [Rejection(ObjectRef.of(o), _reason(e)) for o, e in zip(deferred, errors, strict=True) if e]
            if rejections:
                raise ChangeSetRejected(rejections, written=[*outcome.created, *outcome.configured])
        if waves is None:
            await self._write(rest, live, outcome)
            return outcome
        if waves.before is not None:
            await waves.before()
        for number in sorted({*waves.numbers, *(waves.of(obj) for obj in rest)}):
            await self._write([obj for obj in rest if waves.of(obj) == number], live, outcome)
            await waves.reached(number, outcome)
        return outcome

    async def write_hook(self, hook: KubeObject, *, recreate: bool, within: float = 60.0) -> KubeObject:
        """Writes one hook and returns it as the server has it: created when it has a generateName (the server
        names it), else applied, after deleting (and waiting for the end of) what an earlier pass left of it
        when `recreate`. The API server's refusals raise ApiError."""
        if not (hook.get("metadata") or {}).get("name"):
            async with self._limit:
                return await self.api.create(hook)
        ref = ObjectRef.of(hook)
        async with self._limit:
            if recreate and await self.api.delete(ref):

                async def gone() -> bool:
                    return await self.api.get(ref) is None

                if not await _poll(gone, within):
                    raise MoorError(f"{ref}, left by an earlier pass, was not deleted within {within:.0f}s")
            return await self.api.apply(hook, force=True)

    async def delete_all(self, refs: Sequence[ObjectRef], outcome: ApplyOutcome) -> list[Rejection]:
        """Deletes in the given order, one kind-group at a time so CRs go before CRDs, objects before Namespaces."""
        failures: list[Rejection] = []
        for batch in _consecutive_by_kind(refs):
            results = await self._bounded(self._delete, batch)
            for ref, error in zip(batch, results, strict=True):
                if error is None:
                    outcome.deleted.append(ref)
                else:
                    failures.append(Rejection(ref, _reason(error)))
        return failures

    async def _write(self, objects: Sequence[KubeObject], live: set[Identity], outcome: ApplyOutcome) -> None:
        async def apply(obj: KubeObject) -> None:
            applied = await self.api.apply(obj, force=self._forcing(obj), metadata_only=True)
            version = str(applied.get("metadata", {}).get("resourceVersion", ""))
            if version.isdigit():
                outcome.applied_versions[ObjectRef.of(obj)] = int(version)

        results = await self._bounded(apply, objects)
        failures: list[Rejection] = []
        for obj, error in zip(objects, results, strict=True):
            ref = ObjectRef.of(obj)
            if error is not None:
                failures.append(Rejection(ref, _reason(error)))
            elif ref.identity in live:
                outcome.configured.append(ref)
            else:
                outcome.created.append(ref)
        if failures:
            raise ChangeSetRejected(failures, written=[*outcome.created, *outcome.configured])

    async def _dry_run(self, obj: KubeObject) -> None:
        await self.api.apply(obj, dry_run=True, force=self._forcing(obj), metadata_only=True)

    def _forcing(self, obj: KubeObject) -> bool:
        return self.force or ObjectRef.of(obj).identity in self._forced

    async def _delete(self, ref: ObjectRef) -> None:
        await self.api.delete(ref)

    async def _bounded(self, action: Callable[[T], Awaitable[None]], items: Sequence[T]) -> list[Exception | None]:
        """Runs `action` on every item with bounded concurrency; returns each item's error or None.

        Only the object's own errors are collected (the API server refused it, or does not serve its kind).
        Any other error, a transport failure among them, fails the whole call: the other requests are
        cancelled and awaited, so none is still running when it raises.
        """
        errors: list[Exception | None] = [None] * len(items)

        async def one(index: int, item: T) -> None:
            async with self._limit:
                try:
                    await action(item)
                except (ApiError, UnknownKind) as error:
                    if _fails_the_set(error):
                        raise
                    errors[index] = error

        try:
            async with asyncio.TaskGroup() as group:
                for index, item in enumerate(items):
                    group.create_task(one(index, item))
        except ExceptionGroup as failed:
            raise _first_error(failed) from None
        return errors

    async def _wait_for_crds(self, crds: Sequence[KubeObject], within: float = 60.0) -> None:
        """Waits until each CRD is Established (it usually takes a few tens of milliseconds, and everything
        else waits for it)."""
        for crd in crds:
            ref = ObjectRef.of(crd)

            async def established(ref: ObjectRef = ref) -> bool:
                live = await self.api.get(ref)
                conditions = ((live or {}).get("status") or {}).get("conditions") or []
                return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)

            if not await _poll(established, within):
                raise MoorError(f"{ref} was not Established within {within:.0f}s")

    async def _wait_until_served(self, objects: Sequence[KubeObject], within: float = 10.0) -> None:
        """An Established CRD reaches the API server's discovery document a moment later: refreshes discovery
        until it lists every kind of `objects`. After `within` seconds it lets the dry runs name what is still
        not served."""
        kinds = {(ref.api_version, ref.kind) for ref in map(ObjectRef.of, objects)}

        async def served() -> bool:
            await self.api.discovery.refresh()
            return all(self.api.discovery.known_namespaced(*kind) is not None for kind in kinds)

        await _poll(served, within)


async def _poll(check: Callable[[], Awaitable[bool]], within: float) -> bool:
    """Calls `check` until it answers True (then True) or `within` seconds have passed (then False); the pause
    between calls starts at 10 ms and doubles up to 200 ms."""
    deadline = time.monotonic() + within
    pause = 0.01
    while not await check():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(pause)
        pause = min(pause * 2, 0.2)
    return True


def _fails_the_set(error: Exception) -> bool:
    """The cluster, not the object, failed (unreachable, timed out, overloaded, unavailable): stop the set."""
    return isinstance(error, ApiUnreachable) or (isinstance(error, ApiError) and error.status in (429, 502, 503, 504))


def _first_error(group: BaseExceptionGroup[Exception]) -> Exception:
    """The first error of a task group, nested groups unwrapped: the one to raise in its place."""
    first = group.exceptions[0]
    return _first_error(first) if isinstance(first, BaseExceptionGroup) else first


def _group_kind(obj: KubeObject) -> tuple[str, str]:
    ref = ObjectRef.of(obj)
    return ref.group, ref.kind


def _crd_kind(crd: KubeObject) -> tuple[str, str]:
    spec = crd.get("spec") or {}
    return str(spec.get("group", "")), str((spec.get("names") or {}).get("kind", ""))


def _waits_for_first_stage(
    obj: KubeObject,
    error: Exception,
    arriving_crds: set[tuple[str, str]],
    arriving_namespaces: set[str],
) -> bool:
    ref = ObjectRef.of(obj)
    if isinstance(error, UnknownKind):
        return (ref.group, ref.kind) in arriving_crds
    return (
        isinstance(error, ApiError)
        and error.not_found
        and ref.namespace in arriving_namespaces
        and "namespaces" in str(error).lower()
    )


def _reason(error: Exception) -> str:
    if isinstance(error, ApiError) and error.causes:
        details = "; ".join(
            f"{cause.get('field', '')}: {cause.get('message', '')}".strip(": ") for cause in error.causes
        )
        return f"{error} ({details})" if details not in str(error) else str(error)
    if isinstance(error, UnknownKind):
        return f"the cluster does not serve kind {error.ref.kind} in {error.ref.api_version}"
    return str(error)


def _consecutive_by_kind(refs: Sequence[ObjectRef]) -> list[list[ObjectRef]]:
    batches: list[list[ObjectRef]] = []
    for ref in refs:
        if batches and (batches[-1][0].group, batches[-1][0].kind) == (ref.group, ref.kind):
            batches[-1].append(ref)
        else:
            batches.append([ref])
    return batches
