"""Runs kustomize and helm: asynchronously, in a scratch environment, with a timeout and an output cap."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from pathlib import Path

from moor.render.errors import RenderError

_STDERR_KEPT = 64 * 1024
_STDERR_SHOWN = 1000
_CHUNK = 256 * 1024


@asynccontextmanager
async def scratch_directory(prefix: str) -> AsyncIterator[Path]:
    """A private temporary directory, created and removed off the event loop."""
    path = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix=prefix))
    try:
        yield path
    finally:
        await asyncio.to_thread(shutil.rmtree, path, True)


def tool_environment(scratch: Path, **extra: str) -> dict[str, str]:
    """A minimal environment: no kubeconfig, credentials or user configuration leak into a render."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": str(scratch),
        "TMPDIR": str(scratch),
        "XDG_CACHE_HOME": str(scratch / "cache"),
        "XDG_CONFIG_HOME": str(scratch / "config"),
        "XDG_DATA_HOME": str(scratch / "data"),
    }
    env.update(extra)
    return env


async def run_tool(
    argv: Sequence[str],
    *,
    what: str,
    cwd: Path,
    env: dict[str, str],
    time_limit: float,
    max_output: int,
    root: Path,
) -> bytes:
    """The standard output of a program that must succeed; `what` names the run in errors.

    The program is killed when it runs longer than `time_limit` seconds, prints more than `max_output`
    bytes, or when the caller is cancelled. Paths under `root` in its error output are shown relative.
    """
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except OSError as error:
        raise RenderError(f"{what} could not start {argv[0]}: {error.strerror or error}") from None
    assert process.stdout is not None and process.stderr is not None
    stderr_reader = asyncio.ensure_future(_read_head(process.stderr, _STDERR_KEPT))
    try:
        async with asyncio.timeout(time_limit):
            output = await _read_capped(process.stdout, max_output)
            returncode = await process.wait()
    except TimeoutError:
        raise RenderError(f"{what} did not finish within {time_limit:g} seconds") from None
    except _OutputTooLarge:
        raise RenderError(f"{what} printed more than the limit of {max_output} bytes") from None
    finally:
        if process.returncode is None:
            with suppress(ProcessLookupError):
                process.kill()
            await process.wait()
        errors = await stderr_reader  # ends once the program has exited and closed its end
    if returncode != 0:
        raise RenderError(f"{what} failed: {_explain(errors, root) or f'exit status {returncode}'}")
    return output


class _OutputTooLarge(Exception):
    pass


async def _read_capped(stream: asyncio.StreamReader, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while chunk := await stream.read(_CHUNK):
        size += len(chunk)
        if size > limit:
            raise _OutputTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


async def _read_head(stream: asyncio.StreamReader, keep: int) -> bytes:
    """Reads a stream to its end (so the program never blocks on it) and keeps its beginning."""
    kept = bytearray()
    while chunk := await stream.read(_CHUNK):
        if len(kept) < keep:
            kept += chunk[: keep - len(kept)]
    return bytes(kept)


def _explain(stderr: bytes, root: Path) -> str:
    """A program's error output as part of one sentence: one line, paths relative, not too long."""
    text = stderr.decode("utf-8", "replace").replace(f"{root}/", "").replace(str(root), ".")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    message = " ".join(line.removeprefix("Error: ").removeprefix("error: ") for line in lines)
    return message if len(message) <= _STDERR_SHOWN else message[: _STDERR_SHOWN - 1] + "…"
