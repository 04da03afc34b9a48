"""`moor push artifact oci://host/repository:tag --path DIR --source URL --revision REV`: CI publishes a
directory as an OCI artifact in Flux's layout, with no cluster credentials at all.

Registry credentials: `--creds user:password` (or `$MOOR_REGISTRY_CREDS`), else the docker config
(`$DOCKER_CONFIG/config.json`, `~/.docker/config.json`), else none. `--ca-file` trusts a private CA.
Prints the manifest's digest (`-o json`/`yaml`: the reference, digest, revision and annotations).
Exit 0: pushed; 1: the registry could not be reached or failed; 2: a usage error, a bad URL or
directory, or credentials the registry refused.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from moor.cli.options import output_option, print_document, run_async
from moor.source.errors import RegistryUnreachable
from moor.source.oci import OciReference, RegistryClient, RegistryCredentials, from_docker_config, push
from moor.source.oci.errors import RegistryError


@click.group("push")
def push_group() -> None:
    """Publish to a registry."""


@push_group.command("artifact")
@click.argument("url")
@click.option(
    "--path",
    "directory",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="The directory to publish (`.git` folders are left out).",
)
@click.option("--source", required=True, help="Where the content comes from, e.g. the Git repository's URL.")
@click.option("--revision", required=True, help="Its revision there, e.g. main@sha1:<commit>.")
@click.option(
    "--creds",
    envvar="MOOR_REGISTRY_CREDS",
    default=None,
    help="user:password for the registry (default: $MOOR_REGISTRY_CREDS, else the docker config).",
)
@click.option(
    "--ca-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="PEM of a CA to trust for the registry's certificate.",
)
@click.option("--insecure-http", is_flag=True, help="Speak plain HTTP to the registry (a local test registry).")
@click.option("--timeout", type=float, default=60.0, show_default=True, help="Seconds per request.")
@output_option
def push_artifact(
    url: str,
    directory: Path,
    source: str,
    revision: str,
    creds: str | None,
    ca_file: Path | None,
    insecure_http: bool,
    timeout: float,
    output: str,
) -> None:
    """Push DIR as the artifact URL (oci://host/repository:tag)."""
    reference = OciReference.parse(url)
    if reference.tag is None or reference.digest is not None:
        raise click.UsageError("the URL must end in a tag: oci://host/repository:tag")
    credentials = _credentials(creds, reference.registry)
    ca_pem = ca_file.read_bytes() if ca_file else None
    client = RegistryClient(
        reference.registry, credentials, ca_pem=ca_pem, timeout=timeout, insecure_http=insecure_http
    )
    raise SystemExit(run_async(_push(client, reference, directory, source, revision, output)))


async def _push(
    client: RegistryClient, reference: OciReference, directory: Path, source: str, revision: str, output: str
) -> int:
    try:
        async with client:
            digest = await push(client, reference, directory, source=source, revision=revision)
    except (RegistryUnreachable, RegistryError) as error:
        click.echo(f"error: {error}", err=True)
        return 1
    if output == "table":
        click.echo(digest)
    else:
        print_document(
            {
                "url": str(reference),
                "digest": digest,
                "revision": f"{reference.tag}@{digest}",
                "source": source,
                "originRevision": revision,
            },
            output,
        )
    return 0


def _credentials(creds: str | None, registry: str) -> RegistryCredentials | None:
    """--creds, else the docker config's entry for the registry, else None (anonymous)."""
    if creds is not None:
        username, colon, password = creds.partition(":")
        if not colon or not username:
            raise click.UsageError("--creds takes user:password")
        return RegistryCredentials(username, password)
    folder = os.environ.get("DOCKER_CONFIG")
    config = Path(folder) / "config.json" if folder else Path.home() / ".docker" / "config.json"
    if not config.is_file():
        return None
    return from_docker_config(config.read_bytes(), registry, str(config))
