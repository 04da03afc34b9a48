"""Options every cluster-facing verb takes (--kubeconfig, --context, -n, -o), the connection they make,
and how -o json and -o yaml print."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click
import yaml

from moor.cluster.api import KubeApi
from moor.cluster.client import KubeClient
from moor.cluster.config import load_credentials

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Target:
    """Which cluster and namespace a verb acts on."""

    kubeconfig: Path | None
    context: str | None
    namespace: str | None

    @contextlib.asynccontextmanager
    async def connect(self) -> AsyncIterator[KubeApi]:
        credentials = load_credentials(self.kubeconfig, self.context)
        async with KubeClient(credentials) as client:
            yield KubeApi(client)

    def resolve_namespace(self) -> str:
        """-n if given, else the kubeconfig context's namespace."""
        if self.namespace:
            return self.namespace
        return load_credentials(self.kubeconfig, self.context).namespace


def target_options(command: F) -> F:
    """Adds --kubeconfig, --context and -n/--namespace, passed to the command as `target`."""

    @click.option(
        "--kubeconfig",
        type=click.Path(dir_okay=False, path_type=Path),
        envvar="KUBECONFIG",
        help="Path of the kubeconfig (default: $KUBECONFIG, ~/.kube/config, or in-cluster).",
    )
    @click.option("--context", default=None, help="The kubeconfig context to use.")
    @click.option("-n", "--namespace", default=None, help="Namespace (default: the context's).")
    @functools.wraps(command)
    def wrapper(*args: Any, kubeconfig: Path | None, context: str | None, namespace: str | None, **kwargs: Any) -> Any:
        if kubeconfig is not None and ":" in str(kubeconfig):
            kubeconfig = Path(str(kubeconfig).split(":")[0])
        return command(*args, target=Target(kubeconfig, context, namespace), **kwargs)

    return wrapper  # type: ignore[return-value]


def output_option(command: F) -> F:
    """Adds -o/--output: table (for people), json or yaml (for scripts)."""
    return _output(["table", "json", "yaml"], "Output format.")(command)


def lines_output_option(each: str) -> Callable[[F], F]:
    """Adds -o/--output as `output_option` does, and jsonl: one JSON object per line, `each` being one."""
    return _output(["table", "json", "yaml", "jsonl"], f"jsonl: one {each} per line, for audits.")


def _output(formats: list[str], help_text: str) -> Callable[[F], F]:
    return click.option(
        "-o", "--output", type=click.Choice(formats), default="table", show_default=True, help=help_text
    )


def print_document(data: Any, output: str) -> None:
    """Prints `data` as -o json, yaml or jsonl (a list, one item per line) asked (field order kept, as the
    API server gives it)."""
    if output == "yaml":
        click.echo(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), nl=False)
    elif output == "jsonl":
        for item in data:
            click.echo(json.dumps(item, separators=(",", ":")))
    else:
        click.echo(json.dumps(data, indent=2))


def run_async(coroutine: Coroutine[Any, Any, int]) -> int:
    """Runs a verb's coroutine to completion and returns its exit code."""
    return asyncio.run(coroutine)
