"""`moor build`: what a Sync would apply, rendered by the controller's own path, printed as YAML.

`moor build --path DIR` needs no cluster (what CI runs on a pull request): the Sync is described by
flags or by `--sync-file`, read with the same checks as the controller's, and rendered with
`moor.controller.rendering.phased_objects`: the same renderers, validation and errors (hooks printed after
the objects). Without a cluster
only the built-in kinds' scope is known: objects of other kinds keep the namespace Git gives them
(unless their CRD is in the same render). `moor build sync NAME` reads the Sync and its GitRepository from the cluster,
fetches the revision with the controller's source code and renders it exactly as a reconcile would.

Exit 0: rendered; 1: the manifests are wrong (the message names the file, document and line); 2: a
usage error (no such Sync, a bad flag, an unreachable cluster).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import click
import yaml

from moor import render
from moor.cli.options import Target, run_async, target_options
from moor.cli.syncs import fetch
from moor.cluster.discovery import Discovery, ResourceType
from moor.controller.rendering import helm_values_from, phased_objects
from moor.controller.source_store import SourceStore
from moor.errors import MoorError
from moor.objects import KubeObject, split_api_version
from moor.plan import DuplicateObjectError, MissingNamespaceError, Phases
from moor.resources import API_VERSION, GITREPOSITORY, SYNC, SyncSpec
from moor.source import ArtifactCache

MANIFEST_ERRORS = (render.RenderError, MissingNamespaceError, DuplicateObjectError)
"""What is wrong in the manifests themselves: exit 1, as a failed check in CI."""
OFFLINE_NAMESPACE = "default"
KEY_FILE_ENTRY = "identity.agekey"


class BuildInputError(MoorError):
    """A file named on the command line (a Sync file, a key file) that cannot be used."""


BUILTIN_GROUPS = frozenset(
    {
        *("", "apps", "batch", "autoscaling", "policy", "events.k8s.io", "coordination.k8s.io", "discovery.k8s.io"),
        *("networking.k8s.io", "rbac.authorization.k8s.io", "storage.k8s.io", "scheduling.k8s.io", "node.k8s.io"),
        *("apiextensions.k8s.io", "admissionregistration.k8s.io", "certificates.k8s.io", "apiregistration.k8s.io"),
        "flowcontrol.apiserver.k8s.io",
    }
)
"""API groups every Kubernetes cluster serves, whose kinds' scope is known without asking one."""
BUILTIN_CLUSTER_SCOPED = frozenset(
    {
        *("Namespace", "Node", "PersistentVolume", "ComponentStatus", "ClusterRole", "ClusterRoleBinding"),
        *("StorageClass", "CSIDriver", "CSINode", "VolumeAttachment", "PriorityClass", "RuntimeClass"),
        *("CustomResourceDefinition", "APIService", "IngressClass", "CertificateSigningRequest"),
        *("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration", "ValidatingAdmissionPolicy"),
        *("ValidatingAdmissionPolicyBinding", "FlowSchema", "PriorityLevelConfiguration"),
    }
)


class OfflineDiscovery(Discovery):
    """Discovery without a cluster: nothing is requested; the built-in kinds have their known scope, and
    other kinds none (objects keep the namespace Git gives them, unless their CRD is in the render)."""

    def __init__(self) -> None:  # no client: this discovery never asks a server
        self.server_version = ""

    async def ensure_loaded(self) -> None:
        return None

    async def refresh(self, *, force: bool = True) -> None:
        return None

    def served(self) -> tuple[ResourceType, ...]:
        return ()

    def known_namespaced(self, api_version: str, kind: str) -> bool | None:
        if split_api_version(api_version)[0] not in BUILTIN_GROUPS:
            return None
        return kind not in BUILTIN_CLUSTER_SCOPED


def build_output_option(command: Any) -> Any:
    return click.option(
        "-o",
        "--output",
        type=click.Choice(["yaml", "json"]),
        default="yaml",
        show_default=True,
        help="yaml: a multi-document stream; json: one array.",
    )(command)


def decryption_option(command: Any) -> Any:
    return click.option(
        "--decryption-keys",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        default=None,
        help="An age key file (AGE-SECRET-KEY-1…) that decrypts SOPS documents (default: none).",
    )(command)


@click.group(invoke_without_command=True)
@click.option(
    "--path",
    "local_path",
    type=click.Path(exists=True, path_type=Path),
    help="The directory to render (plain YAML, a kustomization or a Helm chart); no cluster is needed.",
)
@click.option(
    "--helm-values",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    multiple=True,
    help="A values file for a chart (repeatable; later files win), as spec.helm.valuesFiles.",
)
@click.option("--release-name", default=None, help="The chart's release name, as spec.helm.releaseName.")
@click.option("--target-namespace", default=None, help="As spec.targetNamespace.")
@click.option(
    "--sync-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="A Sync manifest whose spec (helm, targetNamespace, …) and name to use; --path replaces its path.",
)
@decryption_option
@build_output_option
@target_options
def build(
    target: Target,
    local_path: Path | None,
    helm_values: tuple[Path, ...],
    release_name: str | None,
    target_namespace: str | None,
    sync_file: Path | None,
    decryption_keys: Path | None,
    output: str,
) -> None:
    """Render what a Sync would apply and print it: `--path DIR` offline, or `build sync NAME`."""
    if click.get_current_context().invoked_subcommand is not None:
        if local_path is not None or helm_values or sync_file:
            raise click.UsageError("with `build sync NAME`, give --path after NAME; the Sync gives the rest")
        return
    if local_path is None:
        raise click.UsageError("give --path DIR to render a local directory, or `moor build sync NAME`")
    sync = _offline_sync(local_path, helm_values, release_name, target_namespace, sync_file, target.namespace)
    raise SystemExit(run_async(_build_offline(sync, local_path, decryption_keys, output)))


@build.command("sync")
@click.argument("name")
@click.option(
    "--path",
    "local_path",
    type=click.Path(exists=True, path_type=Path),
    help="Render this local directory with the Sync's settings instead of its source's revision.",
)
@click.option("--revision", default=None, help="Render this revision of the source (default: its current one).")
@decryption_option
@build_output_option
@target_options
def build_sync(
    target: Target,
    name: str,
    local_path: Path | None,
    revision: str | None,
    decryption_keys: Path | None,
    output: str,
) -> None:
    """Render what the Sync NAME would apply, from its source's revision (or a local --path)."""
    raise SystemExit(run_async(_build_sync(target, name, local_path, revision, decryption_keys, output)))


async def _build_offline(sync: KubeObject, directory: Path, key_file: Path | None, output: str) -> int:
    root = checkout_root(directory)
    keys = _keys_from_file(key_file)
    try:
        spec = SyncSpec.from_object(sync)
        objects = with_hooks(
            *await phased_objects(sync, spec, root, OfflineDiscovery(), keys, keep_encrypted=keys is None)
        )
    except MANIFEST_ERRORS as error:
        return _manifest_error(error)
    _print_objects(objects, output)
    return 0


async def _build_sync(
    target: Target, name: str, local_path: Path | None, revision: str | None, key_file: Path | None, output: str
) -> int:
    namespace = target.resolve_namespace()
    async with target.connect() as api:
        sync = await fetch(api, SYNC.kind, namespace, name)
        spec = SyncSpec.from_object(sync)
        keys = _keys_from_file(key_file)
        with tempfile.TemporaryDirectory(prefix="moor-build-") as scratch:
            try:
                if local_path is not None:
                    root = checkout_root(local_path)
                    local_spec = _with_path(sync, _relative_path(local_path, root))
                    local = SyncSpec.from_object(local_spec)
                    values = await helm_values_from(local_spec, local, api)
                    objects = with_hooks(
                        *await phased_objects(
                            local_spec,
                            local,
                            root,
                            api.discovery,
                            keys,
                            keep_encrypted=keys is None,
                            values_from=values,
                        )
                    )
                else:
                    repository = await fetch(api, spec.source_ref.kind, spec.source_ref.namespace, spec.source_ref.name)
                    sources = SourceStore(api, ArtifactCache(Path(scratch)))
                    if revision is None:
                        artifact = await sources.newest(repository, spec)
                    else:
                        artifact = await sources.artifact(repository, revision)
                    values = await helm_values_from(sync, spec, api)
                    objects = with_hooks(
                        *await phased_objects(
                            sync,
                            spec,
                            artifact.path,
                            api.discovery,
                            keys,
                            keep_encrypted=keys is None,
                            values_from=values,
                        )
                    )
            except MANIFEST_ERRORS as error:
                return _manifest_error(error)
    _print_objects(objects, output)
    return 0


def with_hooks(objects: list[KubeObject], phases: Phases) -> list[KubeObject]:
    """What a render applies: the objects a Sync keeps, then the hooks its passes would run."""
    return [*objects, *(hook.obj for hook in phases.hooks)]


def checkout_root(directory: Path) -> Path:
    """The Git checkout `directory` is in (so overlays find their bases), else the directory itself."""
    directory = directory.resolve()
    start = directory if directory.is_dir() else directory.parent
    return next((parent for parent in (start, *start.parents) if (parent / ".git").exists()), start)


def _relative_path(path: Path, root: Path) -> str:
    return Path(os.path.relpath(path.resolve(), root)).as_posix()


def _offline_sync(
    directory: Path,
    helm_values: Sequence[Path],
    release_name: str | None,
    target_namespace: str | None,
    sync_file: Path | None,
    namespace: str | None,
) -> KubeObject:
    """The Sync an offline build renders for: `--sync-file`'s (or a Sync named after the directory),
    with the path and the flags given on the command line."""
    sync = _read_sync_file(sync_file) if sync_file else _sync_named(directory.resolve().name or "build")
    metadata = sync["metadata"]
    metadata["namespace"] = namespace or metadata.get("namespace") or OFFLINE_NAMESPACE
    root = checkout_root(directory)
    sync = _with_path(sync, _relative_path(directory, root))
    spec: dict[str, Any] = sync["spec"]
    if target_namespace:
        spec["targetNamespace"] = target_namespace
    if helm_values or release_name:
        helm = spec["helm"] = dict(spec.get("helm") or {})
        chart = directory.resolve()
        if helm_values:
            helm["valuesFiles"] = [Path(os.path.relpath(path.resolve(), chart)).as_posix() for path in helm_values]
        if release_name:
            helm["releaseName"] = release_name
    return sync


def _sync_named(name: str) -> KubeObject:
    return {
        "apiVersion": API_VERSION,
        "kind": SYNC.kind,
        "metadata": {"name": name},
        "spec": {"sourceRef": {"kind": GITREPOSITORY.kind, "name": name}},
    }


def _read_sync_file(path: Path) -> KubeObject:
    try:
        documents = [document for document in yaml.safe_load_all(path.read_text(encoding="utf-8")) if document]
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise BuildInputError(f"the Sync file {path} cannot be read: {error}") from None
    syncs = [
        d
        for d in documents
        if isinstance(d, dict) and d.get("kind") == SYNC.kind and d.get("apiVersion") == API_VERSION
    ]
    if len(syncs) != 1:
        raise BuildInputError(f"the Sync file {path} must hold exactly one {API_VERSION} Sync, not {len(syncs)}")
    sync: KubeObject = json.loads(json.dumps(syncs[0]))  # a deep copy, plain data only
    if not isinstance(sync.get("metadata"), dict) or not sync["metadata"].get("name"):
        raise BuildInputError(f"the Sync in {path} has no metadata.name")
    return sync


def _with_path(sync: Mapping[str, Any], path: str) -> KubeObject:
    """A copy of `sync` rendering `path` of the checkout."""
    return {**sync, "spec": {**(sync.get("spec") or {}), "path": path}}


def _keys_from_file(path: Path | None) -> render.DecryptionKeys | None:
    if path is None:
        return None
    try:
        data = path.read_bytes()
    except OSError as error:
        raise BuildInputError(f"the key file {path} cannot be read: {error.strerror or error}") from None
    try:
        return render.decryption_keys({KEY_FILE_ENTRY: data}, f"the key file {path}")
    except render.RenderError as error:
        raise BuildInputError(str(error)) from None


def _manifest_error(error: MoorError) -> int:
    click.echo(f"error: {error}", err=True)
    return 1


def _print_objects(objects: Sequence[KubeObject], output: str) -> None:
    if output == "json":
        click.echo(json.dumps(list(objects), indent=2))
    else:
        click.echo(yaml.safe_dump_all(objects, sort_keys=False, allow_unicode=True), nl=False)
