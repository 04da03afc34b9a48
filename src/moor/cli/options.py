"""Options every cluster-facing verb takes (--kubeconfig, --context, -n, -o) and the connection they make."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

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
    return click.option(
        "-o",
        "--output",
        type=click.Choice(["table", "json"]),
        default="table",
        show_default=True,
        help="Output format.",
    )(command)


def run_async(coroutine: Coroutine[Any, Any, int]) -> int:
    """Runs a verb's coroutine to completion and returns its exit code."""
    return asyncio.run(coroutine)
