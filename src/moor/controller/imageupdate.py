"""Reconciling an ImageUpdate: set the marked image references to their policies' latest images in Git,
commit and push; then follow each commit to the cluster and, when a Sync rolls it back, record its tags
as failed in their ImagePolicies, so they are not proposed again.

One pass: follow the commits pushed before (a Sync that rolled one back marks its tags failed; a Sync
that found it healthy ends the watch) -> clone the checkout branch -> read the markers under
`update.path` -> set them from the policies (a policy whose latest tag failed is held where it is) ->
commit and push (rebasing on a moved branch). A pass that would write the same thing as the last one
(same GitRepository revision, same policy images) clones nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from moor.automation.files import TreeUpdate, marked_files, marker_outside, referenced_policies, update_tree, write_tree
from moor.automation.following import failed_tag, is_failed, resolve_followed, uses_repository
from moor.automation.message import AUTOMATION_TRAILER, commit_message
from moor.automation.setters import ImageRef, PolicyName, SetterError
from moor.automation.setters import MarkerInvalid as MarkerInvalidError
from moor.automation.setters import PolicyNotFound as PolicyNotFoundError
from moor.automation.writeback import Author, Edit, Pushed, SigningKey, Target, WriteBackError, write_back
from moor.cluster.api import KubeApi
from moor.controller.scheduling import Requeue, cluster_failed, jittered
from moor.controller.secrets import SecretMissing, read_secret
from moor.controller.source_status import INVALID_SPEC, SourceReporter
from moor.errors import MoorError
from moor.objects import KubeObject, ObjectRef
from moor.record.events import NORMAL, WARNING, EventRecorder
from moor.record.metrics import Metrics
from moor.record.status import write_status
from moor.resources import API_VERSION, GITREPOSITORY, GROUP, IMAGEPOLICY, SYNC, VERSION, GitRepositorySpec, SpecError
from moor.resources.conditions import format_time
from moor.resources.imageupdate import PER_POLICY_BRANCH_PREFIX, ImageUpdateSpec, PushStrategy
from moor.resources.reconcile_request import reconcile_request, reconcile_token
from moor.source.auth import GitAuth
from moor.source.errors import SourceError

log = logging.getLogger(__name__)

Lookup = Callable[[str, str, str], KubeObject | None]

# Condition reasons
PUSHED = "Pushed"
UP_TO_DATE = "UpToDate"
SOURCE_NOT_FOUND = "SourceNotFound"
MARKER_INVALID = "MarkerInvalid"
POLICY_NOT_FOUND = "PolicyNotFound"
POLICY_NOT_READY = "PolicyNotReady"
SECRET_MISSING = "SecretMissing"
ACCESS_DENIED = "AccessDenied"
# Event reasons
IMAGE_ROLLED_BACK = "ImageRolledBack"
IMAGE_HEALTHY = "ImageHealthy"

FOLLOWED_LIMIT = 10
"""Commits followed to the cluster at once; older ones are dropped."""
SSH_SIGNING_KEY, GPG_SIGNING_KEY = "identity", "git.asc"


@dataclass(frozen=True)
class _Pass:
    """What a pass found and wrote, for the status."""

    branch: str
    policies: dict[PolicyName, ImageRef | None]
    held: frozenset[PolicyName]
    pushed: list[tuple[Pushed, TreeUpdate]]


class ImageUpdateReconciler:
    def __init__(
        self,
        api: KubeApi,
        events: EventRecorder,
        metrics: Metrics,
        lookup: Lookup,
        workdir: Path,
        *,
        cross_namespace: bool = True,
    ) -> None:
        self.api = api
        self.cross_namespace = cross_namespace
        """False: a marker naming an ImagePolicy of another namespace is refused (`--no-cross-namespace-refs`)."""
        self.events = events
        self.lookup = lookup
        self.workdir = workdir
        self.report = SourceReporter(api, events, metrics)
        self._unchanged: dict[tuple[str, str], tuple[Any, ...]] = {}
        """Per ImageUpdate: what its last pass that found nothing more to write saw."""

    async def reconcile(self, obj: KubeObject, failures: int) -> Requeue:
        """One pass (see the module's docstring); never raises."""
        status: dict[str, Any] = dict(obj.get("status") or {})
        interval = 60.0
        try:
            try:
                spec = ImageUpdateSpec.from_object(obj)
            except SpecError as error:
                await self.report.failed(obj, status, INVALID_SPEC, str(error), stalled=True)
                return Requeue.never()
            if spec.suspend:
                return Requeue.never()
            interval = spec.interval.total_seconds()
            try:
                message = await self._pass(obj, spec, status)
            except MoorError as error:
                if cluster_failed(error):
                    raise
                reason, stalled = _reason(error)
                await self.report.failed(obj, status, reason, str(error), stalled=stalled)
                return Requeue.backoff(interval, failures) if not stalled else Requeue.after(jittered(interval))
            await self.report.ready(obj, status, message)
            return Requeue.after(jittered(interval))
        except Exception as error:
            await self.report.report_error(obj, error, status)
            return Requeue.after_error(error, interval, failures)

    async def report_error(self, obj: KubeObject, error: Exception) -> None:
        await self.report.report_error(obj, error)

    def forget(self, obj: KubeObject) -> None:
        ref = ObjectRef.of(obj)
        self._unchanged.pop((ref.namespace, ref.name), None)

    # -- one pass ----------------------------------------------------------------------------------

    async def _pass(self, obj: KubeObject, spec: ImageUpdateSpec, status: dict[str, Any]) -> str:
        ref = ObjectRef.of(obj)
        repository = self.lookup(GITREPOSITORY.kind, ref.namespace, spec.repository)
        if repository is None:
            raise GitRepositoryMissing(
                f"{_describe(obj)}: the GitRepository {ref.namespace}/{spec.repository} does not exist"
            )
        repository_spec = GitRepositorySpec.from_object(repository)
        branch = spec.checkout_branch or repository_spec.ref.branch
        if branch is None:
            raise SpecError(
                _describe(obj),
                "spec.git.checkout.branch",
                f"is required: the GitRepository {spec.repository} follows {repository_spec.ref}, not a branch",
            )
        await self._follow(obj, repository, status)
        # Only a push to the branch the GitRepository follows shows up in its revision.
        remembered = spec.strategy is PushStrategy.BRANCH and (spec.push_branch or branch) == repository_spec.ref.branch
        fingerprint = self._fingerprint(obj, repository, status) if remembered else None
        key = (ref.namespace, ref.name)
        if fingerprint is not None and self._unchanged.get(key) == fingerprint:
            return str(_ready_message(status) or f"{branch} is up to date")
        before = self._policy_statuses(status)
        auth = await self._auth(repository, repository_spec)
        signing = await self._signing_key(obj, spec)
        automation = f"{ref.namespace}/{ref.name}"
        author = Author(spec.author_name, spec.author_email)
        result = await self._write(spec, repository_spec, auth, branch, author, signing, automation)
        self._record(status, result)
        if result.pushed:  # followed from now on, even if the controller stops before the end of the pass
            await write_status(self.api, obj, status)
        for pushed, update in result.pushed:
            moves = ", ".join(sorted({f"{c.policy} {c.old} -> {c.new}" for c in update.changes}))
            await self.events.emit(
                obj, NORMAL, PUSHED, f"pushed {pushed.commit[:12]} to {pushed.branch}: {moves}", revision=pushed.commit
            )
        if result.pushed:
            self._unchanged.pop(key, None)
            if any(pushed.branch == repository_spec.ref.branch for pushed, _ in result.pushed):
                # Rolled out now, not at the repository's interval.
                await self.api.merge_patch(ObjectRef.of(repository), reconcile_request(reconcile_token()))
            pushed_to = ", ".join(f"{p.commit[:12]} to {p.branch}" for p, _ in result.pushed)
            return f"pushed {pushed_to}"
        # Remembered only if no policy moved while the pass ran: a tag chosen meanwhile was not written, and
        # the pass queued by its change must clone again.
        seen = self._fingerprint(obj, repository, status) if remembered else None
        if seen is not None and self._policy_statuses(status) == before:
            self._unchanged[key] = seen
        held = f"; holding {', '.join(map(str, sorted(result.held)))} (latest tag failed)" if result.held else ""
        return f"{result.branch} is up to date with {len(result.policies)} image policies{held}"

    async def _write(
        self,
        spec: ImageUpdateSpec,
        repository_spec: GitRepositorySpec,
        auth: GitAuth | None,
        branch: str,
        author: Author,
        signing: SigningKey | None,
        automation: str,
    ) -> _Pass:
        seen: dict[PolicyName, ImageRef | None] = {}
        held: set[PolicyName] = set()
        own_namespace = automation.partition("/")[0]
        timeout = repository_spec.timeout.total_seconds() * 2

        def edit_for(only: PolicyName | None, push_branch: str) -> Edit:
            async def edit(tree: Path) -> str | None:
                files = await asyncio.to_thread(marked_files, tree, spec.path)
                self._check_namespaces(files, own_namespace)
                policies = referenced_policies(files)
                images, holding = self._policies(policies, files)
                seen.update(images)
                held.update(holding)
                if only is not None:
                    holding = frozenset(policies - {only}) | (holding & {only})
                update = update_tree(files, images, holding)
                if not update.changes:
                    return None
                await asyncio.to_thread(write_tree, tree, update)
                updates.append(update)
                chosen = {name: image for name, image in images.items() if image is not None}
                return commit_message(
                    spec.message_template, update.changes, chosen, automation=automation, branch=push_branch
                )

            return edit

        updates: list[TreeUpdate] = []
        pushed: list[tuple[Pushed, TreeUpdate]] = []
        if spec.strategy is PushStrategy.BRANCH:
            push_branch = spec.push_branch or branch
            target = Target(repository_spec.url, auth, branch, push_branch, timeout, workdir=self.workdir)
            done = await write_back(target, edit_for(None, push_branch), author, signing)
            if done is not None:
                pushed.append((done, updates[-1]))
            return _Pass(push_branch, seen, frozenset(held), pushed)
        # PerPolicy: one look at the checkout branch names the policies, then one review branch each.
        survey = Target(repository_spec.url, auth, branch, branch, timeout, workdir=self.workdir)

        async def survey_policies(tree: Path) -> None:
            for name in await asyncio.to_thread(_referenced, tree, spec.path):
                seen.setdefault(name, None)

        await write_back(survey, survey_policies, author)
        for policy in sorted(seen):
            push_branch = _review_branch(policy)
            target = Target(
                repository_spec.url,
                auth,
                branch,
                push_branch,
                timeout,
                replace_own=f"{AUTOMATION_TRAILER}: {automation}",
                workdir=self.workdir,
            )
            done = await write_back(target, edit_for(policy, push_branch), author, signing)
            if done is not None:
                pushed.append((done, updates[-1]))
        return _Pass(branch, seen, frozenset(held), pushed)

    def _check_namespaces(self, files: Mapping[str, str], namespace: str) -> None:
        outside = None if self.cross_namespace else marker_outside(files, namespace)
        if outside is not None:
            file, marker = outside
            raise CrossNamespaceRefused(
                file,
                marker.line,
                f"the marker names the ImagePolicy {marker.policy}, outside the ImageUpdate's namespace {namespace}: "
                "this controller refuses cross-namespace references (--no-cross-namespace-refs)",
            )

    def _policies(
        self, names: set[PolicyName], files: Mapping[str, str]
    ) -> tuple[dict[PolicyName, ImageRef | None], frozenset[PolicyName]]:
        """The latest image of each existing policy (None: none yet) and the policies held at a failed tag."""
        images: dict[PolicyName, ImageRef | None] = {}
        held: set[PolicyName] = set()
        for name in names:
            policy = self.lookup(IMAGEPOLICY.kind, name.namespace, name.name)
            if policy is None:
                continue
            policy_status = policy.get("status") or {}
            latest = policy_status.get("latestImage")
            images[name] = ImageRef.parse(str(latest)) if latest else None
            if is_failed(policy_status, policy_status.get("latestTag"), policy_status.get("latestDigest")):
                held.add(name)
        return images, frozenset(held)

    # -- health: following pushed commits to the cluster -----------------------------------------

    async def _follow(self, obj: KubeObject, repository: KubeObject, status: dict[str, Any]) -> None:
        """Ends the watch of the followed commits the Syncs of `repository` resolved (following.py); the tags
        of a rolled-back commit go into their ImagePolicies' `status.failedTags`."""
        followed = list(status.get("followedCommits") or [])
        if not followed:
            return
        still, outcomes = resolve_followed(followed, await self._syncs_of(repository))
        for outcome in outcomes:
            sync_ref = ObjectRef.of(outcome.sync)
            commit = str(outcome.entry.get("commit") or "")
            if not outcome.rolled_back:
                moved = ", ".join(f"{i.get('image')} {i.get('tag')}" for i in outcome.entry.get("images") or [])
                message = f"commit {commit[:12]} ({moved}) is healthy in the Sync {sync_ref.namespace}/{sync_ref.name}"
                await self.events.emit(obj, NORMAL, IMAGE_HEALTHY, message, revision=commit)
                continue
            rollback = (outcome.sync.get("status") or {}).get("rollback") or {}
            for image in outcome.entry.get("images") or []:
                await self._mark_failed(obj, image, sync_ref, rollback)
        status["followedCommits"] = list(still) or None

    async def _mark_failed(
        self, obj: KubeObject, image: Mapping[str, Any], sync: ObjectRef, rollback: Mapping[str, Any]
    ) -> None:
        namespace, _, name = str(image.get("policy") or "").partition("/")
        policy_ref = ObjectRef(GROUP, VERSION, IMAGEPOLICY.kind, namespace, name)
        policy = await self.api.get(policy_ref)
        if policy is None or not image.get("tag"):
            return
        failed = list((policy.get("status") or {}).get("failedTags") or [])
        if not is_failed({"failedTags": failed}, image.get("tag"), image.get("digest")):
            failed.append(failed_tag(image, f"{sync.namespace}/{sync.name}", rollback, format_time(datetime.now(UTC))))
            policy = await self.api.merge_patch(policy_ref, {"status": {"failedTags": failed}}, subresource="status")
        message = (
            f"image {image.get('image') or name} {image.get('tag')} of the ImagePolicy {namespace}/{name} was rolled "
            f"back by the Sync {sync.namespace}/{sync.name}; it is recorded as failed and will not be proposed again"
        )
        revision = str(rollback.get("failedRevision") or "")
        for subject in (obj, policy):
            await self.events.emit(subject, WARNING, IMAGE_ROLLED_BACK, message, revision=revision)

    async def _syncs_of(self, repository: KubeObject) -> list[KubeObject]:
        resource = await self.api.discovery.resolve(API_VERSION, SYNC.kind)
        if resource is None:
            return []
        ref = ObjectRef.of(repository)
        listing = await self.api.list(resource)
        return [sync for sync in listing.items if uses_repository(sync, ref.namespace, ref.name)]

    # -- inputs ----------------------------------------------------------------------------------

    def _fingerprint(
        self, obj: KubeObject, repository: KubeObject, status: Mapping[str, Any]
    ) -> tuple[Any, ...] | None:
        """What decides a pass's outcome, as far as it can be known without cloning; None: always clone."""
        revision = ((repository.get("status") or {}).get("artifact") or {}).get("revision")
        if not revision:
            return None
        generation = obj["metadata"].get("generation")
        return (generation, repository["metadata"].get("generation"), revision, self._policy_statuses(status))

    def _policy_statuses(self, status: Mapping[str, Any]) -> tuple[tuple[str, str, str], ...]:
        """The status of each policy the last pass observed, as the informer holds it now."""
        policies = []
        for entry in status.get("observedPolicies") or []:
            namespace, _, name = str(entry.get("policy") or "").partition("/")
            policy = self.lookup(IMAGEPOLICY.kind, namespace, name)
            policies.append((namespace, name, repr((policy or {}).get("status"))))
        return tuple(policies)

    async def _auth(self, repository: KubeObject, spec: GitRepositorySpec) -> GitAuth | None:
        if not spec.secret_name:
            return None
        return GitAuth.from_secret((await read_secret(self.api, repository, spec.secret_name)).data)

    async def _signing_key(self, obj: KubeObject, spec: ImageUpdateSpec) -> SigningKey | None:
        if spec.signing_key is None:
            return None
        data = (await read_secret(self.api, obj, spec.signing_key.secret_name)).data
        if data.get(SSH_SIGNING_KEY):
            return SigningKey("ssh", data[SSH_SIGNING_KEY])
        if data.get(GPG_SIGNING_KEY):
            return SigningKey("gpg", data[GPG_SIGNING_KEY])
        raise SpecError(
            _describe(obj),
            "spec.git.commit.signingKey.secretRef",
            f"names the Secret {spec.signing_key.secret_name}, which holds neither {SSH_SIGNING_KEY!r} (an SSH "
            f"private key) nor {GPG_SIGNING_KEY!r} (an armoured GPG private key)",
        )

    # -- status ----------------------------------------------------------------------------------

    def _record(self, status: dict[str, Any], result: _Pass) -> None:
        status["observedPolicies"] = [
            {"policy": str(name), "image": str(image) if image else None}
            for name, image in sorted(result.policies.items())
        ] or None
        if not result.pushed:
            return
        now = format_time(datetime.now(UTC))
        last, _ = result.pushed[-1]
        status["lastCommit"] = last.commit
        status["lastPushBranch"] = last.branch
        status["lastPushTime"] = now
        changes = [change for _, pushed_update in result.pushed for change in pushed_update.changes]
        status["lastChanges"] = [
            {
                "file": change.file,
                "line": change.line,
                "policy": str(change.policy),
                "field": str(change.field),
                "old": change.old,
                "new": change.new,
            }
            for change in changes
        ]
        followed = list(status.get("followedCommits") or [])
        for pushed, pushed_update in result.pushed:
            images = []
            for policy in sorted({change.policy for change in pushed_update.changes}):
                image = result.policies.get(policy)
                if image is not None and image.tag:
                    images.append(
                        {"policy": str(policy), "image": image.name, "tag": image.tag, "digest": image.digest}
                    )
            followed.append({"commit": pushed.commit, "branch": pushed.branch, "pushedAt": now, "images": images})
        status["followedCommits"] = followed[-FOLLOWED_LIMIT:]


class CrossNamespaceRefused(SetterError):
    """A marker names an ImagePolicy of another namespace, and the controller refuses such references."""


class GitRepositoryMissing(MoorError):
    """The GitRepository an ImageUpdate writes to does not exist (yet)."""


def _referenced(tree: Path, path: str) -> set[PolicyName]:
    return referenced_policies(marked_files(tree, path))


def _review_branch(policy: PolicyName) -> str:
    return f"{PER_POLICY_BRANCH_PREFIX}{policy.namespace}-{policy.name}"


def _reason(error: MoorError) -> tuple[str, bool]:
    """The condition reason of a pass's failure, and whether only a change of the inputs can fix it."""
    if isinstance(error, CrossNamespaceRefused):
        return ACCESS_DENIED, True
    if isinstance(error, MarkerInvalidError):
        return MARKER_INVALID, True
    if isinstance(error, PolicyNotFoundError):
        return POLICY_NOT_FOUND, True
    if isinstance(error, SetterError):
        return POLICY_NOT_READY, True
    if isinstance(error, WriteBackError | SourceError):
        return error.reason, False
    if isinstance(error, SecretMissing):
        return SECRET_MISSING, False
    if isinstance(error, GitRepositoryMissing):
        return SOURCE_NOT_FOUND, False
    if isinstance(error, SpecError):
        return INVALID_SPEC, True
    return "ReconcileError", False


def _ready_message(status: Mapping[str, Any]) -> str | None:
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Ready" and condition.get("status") == "True":
            return str(condition.get("message") or "")
    return None


def _describe(obj: KubeObject) -> str:
    ref = ObjectRef.of(obj)
    return f"ImageUpdate {ref.namespace}/{ref.name}"
