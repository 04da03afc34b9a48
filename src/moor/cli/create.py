"""`moor create source git NAME …` and `moor create sync NAME …`: a correct object from flags.

The object is checked with the controller's own reading of the spec (GitRepositorySpec, SyncSpec), then
applied (server-side, as `moor`) and awaited until Ready, or with `--export` printed as YAML for Git.
Exit 0: created (and Ready); 1: created but not Ready in time; 2: a usage error or an invalid spec.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click
import yaml

from moor.cli.options import Target, run_async, target_options
from moor.cli.syncs import request_and_wait
from moor.objects import KubeObject, ObjectRef
from moor.resources import API_VERSION, GITREPOSITORY, SYNC, GitRepositorySpec, SyncSpec

F = Callable[..., Any]


def apply_options(command: F) -> F:
    """--export, --wait/--no-wait and --timeout, shared by every create verb."""
    command = click.option("--export", is_flag=True, help="Print the object as YAML instead of applying it.")(command)
    command = click.option("--wait/--no-wait", default=True, show_default=True, help="Wait until the object is Ready.")(
        command
    )
    return click.option("--timeout", type=float, default=120.0, show_default=True, help="Seconds to wait.")(command)


@click.group()
def create() -> None:
    """Create a source or a Sync from flags (or print it with --export)."""


@create.group("source")
def create_source() -> None:
    """Create a source."""


@create_source.command("git")
@click.argument("name")
@click.option("--url", required=True, help="https://, ssh://, file:// or git@host:path.")
@click.option("--branch", default=None, help="Follow the newest commit of this branch.")
@click.option("--tag", default=None, help="Use this fixed tag.")
@click.option("--semver", default=None, help='Use the highest tag in this semver range (">=1.0.0 <2.0.0").')
@click.option("--commit", default=None, help="Use this fixed commit (40 hex digits).")
@click.option("--interval", default="1m", show_default=True, help="How often to look for a new revision.")
@click.option("--secret-ref", default=None, help="A Secret with username/password, bearerToken or identity.")
@apply_options
@target_options
def create_source_git(
    target: Target,
    name: str,
    url: str,
    branch: str | None,
    tag: str | None,
    semver: str | None,
    commit: str | None,
    interval: str,
    secret_ref: str | None,
    export: bool,
    wait: bool,
    timeout: float,
) -> None:
    """Create the GitRepository NAME."""
    refs = {
        key: value for key, value in (("branch", branch), ("tag", tag), ("semver", semver), ("commit", commit)) if value
    }
    if len(refs) != 1:
        raise click.UsageError("give exactly one of --branch, --tag, --semver or --commit")
    spec: dict[str, Any] = {"url": url, "ref": refs, "interval": interval}
    if secret_ref:
        spec["secretRef"] = {"name": secret_ref}
    obj = _object(GITREPOSITORY.kind, name, target, spec)
    GitRepositorySpec.from_object(obj)
    raise SystemExit(run_async(_create(target, obj, export, wait, timeout)))


@create.command("sync")
@click.argument("name")
@click.option(
    "--source", "source_ref", required=True, help="The GitRepository: NAME, NAMESPACE/NAME or GitRepository/NAME."
)
@click.option("--path", default=".", show_default=True, help="The path in the repository to apply.")
@click.option("--interval", default="5m", show_default=True, help="How often to re-check everything.")
@click.option("--apply-timeout", default=None, help="Time for apply and health (spec.timeout).")
@click.option("--prune/--no-prune", default=True, show_default=True, help="Delete what was removed from Git.")
@click.option(
    "--health/--no-health", "healthy", default=True, show_default=True, help="Ready only when healthy (spec.wait)."
)
@click.option("--target-namespace", default=None, help="Namespace for namespaced objects that set none.")
@click.option("--depends-on", multiple=True, help="A Sync that must be Ready first (repeatable).")
@click.option("--service-account", default=None, help="Apply as this ServiceAccount.")
@apply_options
@target_options
def create_sync(
    target: Target,
    name: str,
    source_ref: str,
    path: str,
    interval: str,
    apply_timeout: str | None,
    prune: bool,
    healthy: bool,
    target_namespace: str | None,
    depends_on: tuple[str, ...],
    service_account: str | None,
    export: bool,
    wait: bool,
    timeout: float,
) -> None:
    """Create the Sync NAME of a path of a source."""
    spec: dict[str, Any] = {
        "sourceRef": _source_ref(source_ref),
        "path": path,
        "interval": interval,
        "prune": prune,
        "wait": healthy,
    }
    optional = {"timeout": apply_timeout, "targetNamespace": target_namespace, "serviceAccountName": service_account}
    spec |= {key: value for key, value in optional.items() if value}
    if depends_on:
        spec["dependsOn"] = [{"name": dependency} for dependency in depends_on]
    obj = _object(SYNC.kind, name, target, spec)
    SyncSpec.from_object(obj)
    raise SystemExit(run_async(_create(target, obj, export, wait, timeout)))


def _source_ref(text: str) -> dict[str, str]:
    """`NAME`, `NAMESPACE/NAME` or `GitRepository/NAME` (kind names are capitalised, namespaces not)."""
    first, _, rest = text.partition("/")
    if not rest:
        return {"kind": GITREPOSITORY.kind, "name": first}
    if first == GITREPOSITORY.kind:
        return {"kind": GITREPOSITORY.kind, "name": rest}
    return {"kind": GITREPOSITORY.kind, "namespace": first, "name": rest}


def _object(kind: str, name: str, target: Target, spec: dict[str, Any]) -> KubeObject:
    metadata: dict[str, Any] = {"name": name}
    if target.namespace:
        metadata["namespace"] = target.namespace
    return {"apiVersion": API_VERSION, "kind": kind, "metadata": metadata, "spec": spec}


async def _create(target: Target, obj: KubeObject, export: bool, wait: bool, timeout: float) -> int:
    if export:
        click.echo(yaml.safe_dump(obj, sort_keys=False), nl=False)
        return 0
    namespace = target.resolve_namespace()
    obj["metadata"]["namespace"] = namespace
    ref = ObjectRef.of(obj)
    async with target.connect() as api:
        await api.apply(obj, force=True)
        click.echo(f"{ref.kind} {namespace}/{ref.name} applied", err=True)
        if not wait:
            return 0
        ready = await request_and_wait(api, ref.kind, namespace, ref.name, timeout)
    return 0 if ready else 1
