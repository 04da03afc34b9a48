"""A Sync's spec as a typed value: what to render from which source, and how to keep it true."""

from __future__ import annotations

import copy
import functools
import json
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Any

from moor.health.cel import HealthChecks, InvalidHealthCheck, compile_checks
from moor.health.library import library_checks
from moor.resources.fields import DNS1123_LABEL, FieldReader, SpecError
from moor.resources.kinds import GITREPOSITORY, HELMREPOSITORY, OCIREPOSITORY

DEFAULT_PATH = "."
DEFAULT_INTERVAL = timedelta(minutes=5)
DEFAULT_RETRY_INTERVAL = timedelta(seconds=30)
DEFAULT_TIMEOUT = timedelta(minutes=3)
DEFAULT_PRUNE = True
DEFAULT_WAIT = True

SOURCE_KINDS = (GITREPOSITORY.kind, OCIREPOSITORY.kind, HELMREPOSITORY.kind)
JSON_POINTER = re.compile(r"(/([^~/]|~[01])*)+")
HELM_RELEASE_MAX_LENGTH = 53
DEFAULT_VALUES_KEY = "values.yaml"
DEFAULT_CHART_VERSION = "*"
CHART_NAME = re.compile(r"[a-z0-9]([-a-z0-9_.]*[a-z0-9])?")
DATA_KEY = re.compile(r"[-._a-zA-Z0-9]+")
MAX_VALUES_FROM = 32
MAX_HEALTH_CHECKS = 64


class DriftMode(StrEnum):
    CORRECT = "correct"  # put the Git state back and report what was changed
    ALERT = "alert"  # report drift (Drifted condition, events) but leave the cluster alone
    IGNORE = "ignore"  # neither report nor correct between revisions


class ApprovalMode(StrEnum):
    AUTO = "auto"  # apply every new revision as it arrives
    MANUAL = "manual"  # a new revision waits for `moor approve`


class DecryptionProvider(StrEnum):
    SOPS = "sops"  # SOPS-encrypted documents, decrypted with age identities


@dataclass(frozen=True)
class SourceRef:
    kind: str
    name: str
    namespace: str


@dataclass(frozen=True, order=True)
class DependencyRef:
    """Another Sync that must be Ready before this one is applied."""

    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


class ValuesKind(StrEnum):
    CONFIG_MAP = "ConfigMap"
    SECRET = "Secret"


@dataclass(frozen=True)
class ValuesReference:
    """One key of a ConfigMap or Secret in the Sync's namespace holding a YAML mapping of Helm values."""

    kind: ValuesKind
    name: str
    key: str = DEFAULT_VALUES_KEY
    optional: bool = False  # a missing object or key is skipped instead of failing the Sync

    def __str__(self) -> str:
        return f"the {self.kind} {self.name!r} (key {self.key!r})"


@dataclass(frozen=True)
class ChartRef:
    """A chart of a HelmRepository: its name and the versions admitted (exact, or a semver range)."""

    name: str
    version: str = DEFAULT_CHART_VERSION


@dataclass(frozen=True)
class HelmSpec:
    values_files: tuple[str, ...] = ()  # relative to the chart directory (the path), merged in order
    values: Mapping[str, Any] = field(default_factory=dict, hash=False)
    release_name: str | None = None  # defaults to the Sync's name (the controller decides)
    values_from: tuple[ValuesReference, ...] = ()  # merged in order after values_files, before values
    prune_crds: bool = False  # the chart's crds/ are pruned like other objects (never, by default, as in Helm)


@dataclass(frozen=True)
class DriftIgnoreRule:
    """Fields that someone else owns on matching objects: never reported or corrected."""

    kind: str
    paths: tuple[str, ...]  # JSON pointers, e.g. /spec/replicas
    name: str | None = None  # every object of the kind when None
    namespace: str | None = None  # any namespace when None

    def matches(self, kind: str, namespace: str, name: str) -> bool:
        return (
            self.kind == kind
            and (self.name is None or self.name == name)
            and (self.namespace is None or self.namespace == namespace)
        )


@dataclass(frozen=True)
class DriftSpec:
    mode: DriftMode = DriftMode.CORRECT
    ignore: tuple[DriftIgnoreRule, ...] = ()

    def ignored_paths(self, kind: str, namespace: str, name: str) -> tuple[str, ...]:
        """Every ignored JSON pointer that applies to one object."""
        return tuple(path for rule in self.ignore if rule.matches(kind, namespace, name) for path in rule.paths)


@dataclass(frozen=True)
class DecryptionSpec:
    """How to decrypt encrypted documents of the rendered output before they are applied."""

    secret_name: str  # Secret in the Sync's namespace; keys ending in `.agekey` hold age identities
    provider: DecryptionProvider = DecryptionProvider.SOPS


@dataclass(frozen=True)
class SyncSpec:
    source_ref: SourceRef
    chart: ChartRef | None = None  # with a HelmRepository source (required there, refused elsewhere)
    path: str = DEFAULT_PATH  # relative to the artifact's root, normalised, `.` for the root itself
    helm: HelmSpec | None = None
    target_namespace: str | None = None
    interval: timedelta = DEFAULT_INTERVAL
    retry_interval: timedelta = DEFAULT_RETRY_INTERVAL
    timeout: timedelta = DEFAULT_TIMEOUT
    prune: bool = DEFAULT_PRUNE
    allow_empty: bool = False
    wait: bool = DEFAULT_WAIT
    force: bool = False
    depends_on: tuple[DependencyRef, ...] = ()
    service_account_name: str | None = None
    drift: DriftSpec = DriftSpec()
    rollback_on_failure: bool = False
    approval: ApprovalMode = ApprovalMode.AUTO
    decryption: DecryptionSpec | None = None
    suspend: bool = False
    # spec.healthChecks compiled, in front of the built-in library: how this Sync judges its objects' health.
    health_checks: HealthChecks = field(default_factory=library_checks, compare=False, hash=False)
    git_notes: bool = False  # a finished deployment is noted on its commit (refs/notes), GitRepository sources only

    @classmethod
    def from_object(cls, obj: Mapping[str, Any]) -> SyncSpec:
        """Reads and checks a Sync custom resource, filling in the CRD's defaults and its namespace."""
        spec = FieldReader.spec_of(obj)
        own_namespace = str((obj.get("metadata") or {}).get("namespace") or "")
        source_ref = _read_source_ref(spec, own_namespace)
        return cls(
            source_ref=source_ref,
            chart=_read_chart(spec, source_ref),
            path=_relative_path(
                spec, "path", spec.optional_str("path", max_length=1024) or DEFAULT_PATH, base="the repository root"
            ),
            helm=_read_helm(spec.child("helm")),
            target_namespace=spec.name("targetNamespace", label=True),
            interval=spec.duration("interval", DEFAULT_INTERVAL),
            retry_interval=spec.duration("retryInterval", DEFAULT_RETRY_INTERVAL),
            timeout=spec.duration("timeout", DEFAULT_TIMEOUT),
            prune=spec.boolean("prune", DEFAULT_PRUNE),
            allow_empty=spec.boolean("allowEmpty", False),
            wait=spec.boolean("wait", DEFAULT_WAIT),
            force=spec.boolean("force", False),
            depends_on=tuple(
                DependencyRef(
                    namespace=entry.name("namespace", label=True) or own_namespace,
                    name=entry.required_name("name"),
                )
                for entry in spec.items("dependsOn")
            ),
            service_account_name=spec.name("serviceAccountName"),
            drift=_read_drift(spec.child("drift")),
            rollback_on_failure=_read_flag(spec.child("rollback"), "onFailure"),
            approval=_read_approval(spec.child("approval")),
            decryption=_read_decryption(spec.child("decryption")),
            suspend=spec.boolean("suspend", False),
            health_checks=_read_health_checks(spec),
            git_notes=_read_git_notes(spec, source_ref),
        )


def health_checks_of(sync: Mapping[str, Any]) -> HealthChecks:
    """The checks the controller judges a Sync's objects by (the library alone when its spec is unusable)."""
    try:
        return SyncSpec.from_object(sync).health_checks
    except SpecError:
        return library_checks()


def _read_source_ref(spec: FieldReader, own_namespace: str) -> SourceRef:
    ref = spec.child("sourceRef")
    if ref is None:
        raise spec.error("sourceRef", "is required: name the GitRepository, OCIRepository or HelmRepository to read")
    kind = ref.optional_str("kind") or GITREPOSITORY.kind
    if kind not in SOURCE_KINDS:
        raise ref.error("kind", f"must be one of {', '.join(SOURCE_KINDS)}, not {kind!r}")
    return SourceRef(
        kind=kind,
        name=ref.required_name("name"),
        namespace=ref.name("namespace", label=True) or own_namespace,
    )


def _read_chart(spec: FieldReader, source_ref: SourceRef) -> ChartRef | None:
    chart = spec.child("chart")
    if source_ref.kind != HELMREPOSITORY.kind:
        if chart is not None:
            raise spec.error("chart", f"is only for a HelmRepository source, and the source is a {source_ref.kind}")
        return None
    if chart is None:
        raise spec.error("chart", "is required with a HelmRepository source: name the chart (and a version or range)")
    name = chart.required_str("name", max_length=250)
    if not CHART_NAME.fullmatch(name) or ".." in name:
        raise chart.error("name", f"must be a chart name (lower case letters, digits, '-', '_', '.'), not {name!r}")
    version = chart.optional_str("version", max_length=256) or DEFAULT_CHART_VERSION
    return ChartRef(name=name, version=version.strip() or DEFAULT_CHART_VERSION)


def _relative_path(reader: FieldReader, key: str, path: str, *, base: str) -> str:
    """`./apps/` -> `apps`, `./` -> `.`: a path that can be joined to `base` without leaving it."""
    if path.startswith("/"):
        raise reader.error(key, f"must be relative to {base}: absolute paths are not allowed, not {path!r}")
    if ".." in path.split("/"):
        raise reader.error(key, f"must not contain '..' segments, not {path!r}")
    return posixpath.normpath("./" + path)


def _read_helm(helm: FieldReader | None) -> HelmSpec | None:
    if helm is None:
        return None
    values = helm.data.get("values")
    if values is not None and not isinstance(values, Mapping):
        raise helm.error("values", "must be an object")
    release_name = helm.optional_str("releaseName", max_length=HELM_RELEASE_MAX_LENGTH)
    if release_name is not None and not DNS1123_LABEL.fullmatch(release_name):
        raise helm.error("releaseName", f"must be a DNS-1123 label, not {release_name!r}")
    return HelmSpec(
        values_files=tuple(
            _relative_path(helm, "valuesFiles", path, base="the chart") for path in helm.strings("valuesFiles")
        ),
        values=copy.deepcopy(dict(values or {})),
        release_name=release_name,
        values_from=_read_values_from(helm),
        prune_crds=helm.boolean("pruneCRDs", False),
    )


def _read_values_from(helm: FieldReader) -> tuple[ValuesReference, ...]:
    entries = helm.items("valuesFrom")
    if len(entries) > MAX_VALUES_FROM:
        raise helm.error("valuesFrom", f"may name at most {MAX_VALUES_FROM} objects, not {len(entries)}")
    return tuple(
        ValuesReference(
            kind=_required_values_kind(entry),
            name=entry.required_name("name"),
            key=entry.optional_str("key", pattern=DATA_KEY, max_length=253) or DEFAULT_VALUES_KEY,
            optional=entry.boolean("optional", False),
        )
        for entry in entries
    )


def _required_values_kind(entry: FieldReader) -> ValuesKind:
    if not entry.has("kind"):
        raise entry.error("kind", "is required: ConfigMap or Secret")
    return entry.choice("kind", ValuesKind, ValuesKind.CONFIG_MAP)


def _read_drift(drift: FieldReader | None) -> DriftSpec:
    if drift is None:
        return DriftSpec()
    rules = []
    for entry in drift.items("ignore"):
        paths = entry.strings("paths")
        if not paths:
            raise entry.error("paths", "is required: list JSON pointers such as /spec/replicas")
        for path in paths:
            if not JSON_POINTER.fullmatch(path):
                raise entry.error("paths", f"must hold JSON pointers such as /spec/replicas, not {path!r}")
        rules.append(
            DriftIgnoreRule(
                kind=entry.required_str("kind", max_length=63),
                paths=tuple(paths),
                name=entry.name("name"),
                namespace=entry.name("namespace", label=True),
            )
        )
    return DriftSpec(mode=drift.choice("mode", DriftMode, DriftMode.CORRECT), ignore=tuple(rules))


def _read_flag(section: FieldReader | None, key: str) -> bool:
    return False if section is None else section.boolean(key, False)


def _read_approval(approval: FieldReader | None) -> ApprovalMode:
    return ApprovalMode.AUTO if approval is None else approval.choice("mode", ApprovalMode, ApprovalMode.AUTO)


def _read_decryption(decryption: FieldReader | None) -> DecryptionSpec | None:
    if decryption is None:
        return None
    secret = decryption.child("secretRef")
    if secret is None:
        raise decryption.error("secretRef", "is required: name the Secret holding the age keys (*.agekey)")
    return DecryptionSpec(
        secret_name=secret.required_name("name"),
        provider=decryption.choice("provider", DecryptionProvider, DecryptionProvider.SOPS),
    )


def _read_git_notes(spec: FieldReader, source_ref: SourceRef) -> bool:
    history = spec.child("history")
    notes = _read_flag(history, "gitNotes")
    if notes and history is not None and source_ref.kind != GITREPOSITORY.kind:
        raise history.error("gitNotes", f"needs a GitRepository source, and the source is a {source_ref.kind}")
    return notes


def _read_health_checks(spec: FieldReader) -> HealthChecks:
    """The Sync's own CEL checks in front of the library's; a bad entry names its index and expression."""
    entries = spec.items("healthChecks")
    if not entries:
        return library_checks()
    if len(entries) > MAX_HEALTH_CHECKS:
        raise spec.error("healthChecks", f"may hold at most {MAX_HEALTH_CHECKS} entries, not {len(entries)}")
    try:
        return _compiled(json.dumps([entry.data for entry in entries], sort_keys=True))
    except InvalidHealthCheck as error:
        raise _naming_the_entry(spec, entries, error) from None
    except TypeError:  # not plain data: the entry that is not says which
        raise _naming_the_entry(spec, entries, InvalidHealthCheck("not plain data")) from None


@functools.lru_cache(maxsize=256)
def _compiled(entries: str) -> HealthChecks:
    """`healthChecks` (as JSON) compiled in front of the library, once per distinct list: the spec is read
    on every pass, and Syncs that share entries share their compiled checks and verdicts."""
    return library_checks().overridden_by(compile_checks(json.loads(entries)))


def _naming_the_entry(spec: FieldReader, entries: list[FieldReader], error: InvalidHealthCheck) -> SpecError:
    """The SpecError for the first entry of `entries` that does not compile (only looked for once one failed)."""
    for entry in entries:
        try:
            compile_checks([entry.data])
        except InvalidHealthCheck as failed:
            return SpecError(entry.obj, entry.path, f"is not a usable health check: {failed}")
    return spec.error("healthChecks", f"is not usable: {error}")
