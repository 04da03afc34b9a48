"""`moor convert`: Flux and Argo CD manifests in, the equivalent Moor objects out (no cluster needed)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
import yaml

from moor.convert import convert_documents
from moor.errors import MoorError

_SUFFIXES = (".yaml", ".yml", ".json")


class UnreadableInput(MoorError):
    """An input file that is missing or is not YAML."""


@click.command()
@click.argument("inputs", nargs=-1, type=click.Path(allow_dash=True, path_type=Path))
@click.option("-o", "--output", type=click.Choice(["yaml", "json"]), default="yaml", show_default=True)
@click.option("-n", "--namespace", default=None, help="Put every converted object into this namespace.")
def convert(inputs: tuple[Path, ...], output: str, namespace: str | None) -> None:
    """Convert Flux (sources, Kustomization, HelmRelease) and Argo CD (Application, AppProject) manifests
    to Moor's; files, directories (their YAML files) or - for stdin. Each field that cannot be carried
    over is named on stderr with the reason; other objects pass through unchanged."""
    documents = [document for source in inputs or (Path("-"),) for document in _read(source)]
    conversion = convert_documents(documents, namespace=namespace)
    for note in conversion.notes:
        click.echo(f"note: {note}", err=True)
    if output == "json":
        click.echo(json.dumps(list(conversion.objects), indent=2))
    else:
        click.echo(yaml.safe_dump_all(list(conversion.objects), sort_keys=False, explicit_start=True), nl=False)


def _read(source: Path) -> list[dict[str, Any]]:
    if str(source) == "-":
        return _parse(sys.stdin.read(), "stdin")
    if source.is_dir():
        files = sorted(path for path in source.rglob("*") if path.suffix in _SUFFIXES and path.is_file())
        return [document for path in files for document in _read(path)]
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as error:
        raise UnreadableInput(f"cannot read {source}: {error.strerror or error}") from None
    return _parse(text, str(source))


def _parse(text: str, origin: str) -> list[dict[str, Any]]:
    try:
        return [document for document in yaml.safe_load_all(text) if isinstance(document, dict)]
    except yaml.YAMLError as error:
        raise UnreadableInput(f"{origin} is not valid YAML: {error}") from None
