"""What a big Helm repository index costs Moor: one parse, the memory kept, and each unchanged poll.

    .venv/bin/python bench/helm_index.py                 # a 20 MB index, 200 polls
    .venv/bin/python bench/helm_index.py --mb 50 --polls 500

Writes an index.yaml shaped like a real public one (charts with many versions, each with a
description, maintainers, sources, keywords, annotations and dependencies: what Moor skips) and serves
it on loopback HTTP with an ETag, as static chart hosts do (If-None-Match gets 304). Then, in this
process, through the ChartStore a HelmRepository's reconciler uses (no Secrets, so no API server):
1. the first read: wall and CPU time of the download plus the streaming parse and the growth of peak
   RSS (ru_maxrss) over it; then the parse alone, and the memory the parsed index holds (tracemalloc);
2. `--polls` unchanged polls (each a conditional GET answered 304): CPU per poll;
3. 50 Syncs choosing their chart's newest version in a range from the shared index: CPU per choice.
Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import random
import resource
import time
import tracemalloc
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any, cast

from aiohttp import web

from moor import source
from moor.cluster.api import KubeApi
from moor.controller.chart_store import ChartStore
from moor.resources.helmrepository import HelmRepositorySpec
from moor.source.helm import parse_index
from moor.source.semver_range import SemverRange

SYNCS = 50


def write_index(path: Path, megabytes: float, seed: int = 7) -> tuple[int, int]:
    """An index of about `megabytes` MB; returns (charts, versions)."""
    rng = random.Random(seed)
    target = int(megabytes * 1_000_000)
    charts = versions = 0
    written = 0
    with path.open("w") as out:
        out.write("apiVersion: v1\nentries:\n")
        while written < target:
            name = f"chart-{charts:05d}"
            charts += 1
            out.write(f"  {name}:\n")
            for major in range(rng.randint(1, 4)):
                for minor in range(rng.randint(2, 12)):
                    version = f"{major}.{minor}.{rng.randint(0, 9)}"
                    versions += 1
                    digest = hashlib.sha256(f"{name}{version}".encode()).hexdigest()
                    entry = (
                        "  - annotations:\n"
                        "      artifacthub.io/changes: |\n"
                        "        - kind: changed\n"
                        f"          description: bump {name} to {version}\n"
                        "      artifacthub.io/license: Apache-2.0\n"
                        f"    apiVersion: v2\n    appVersion: {version}\n"
                        f"    created: '2025-0{1 + minor % 9}-1{major}T10:00:00.000000000Z'\n"
                        "    dependencies:\n"
                        "    - name: common\n      repository: oci://registry.example.com/charts\n"
                        "      tags: [bitnami-common]\n      version: 2.x.x\n"
                        f"    description: {name} packaged for Kubernetes, with sensible defaults and many "
                        "options for storage, networking, metrics and high availability.\n"
                        f"    digest: {digest}\n"
                        f"    home: https://example.com/{name}\n"
                        "    icon: https://example.com/icon.svg\n"
                        "    keywords: [database, cache, web, metrics]\n"
                        "    maintainers:\n    - name: Example Maintainers\n      url: https://example.com\n"
                        f"    name: {name}\n"
                        f"    sources: [https://github.com/example/{name}]\n"
                        f"    urls: [https://charts.example.com/{name}-{version}.tgz]\n"
                        f"    version: {version}\n"
                    )
                    out.write(entry)
                    written += len(entry)
        out.write("generated: '2026-01-01T00:00:00Z'\n")
    return charts, versions


async def serve(body: bytes) -> tuple[web.AppRunner, str]:
    etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'

    async def handle(request: web.Request) -> web.Response:
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers={"ETag": etag})
        return web.Response(body=body, headers={"ETag": etag})

    app = web.Application()
    app.router.add_get("/index.yaml", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


def max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def measure(megabytes: float, polls: int, scratch: Path) -> list[tuple[str, str]]:
    index_file = scratch / "index.yaml"
    charts, versions = write_index(index_file, megabytes)
    size = index_file.stat().st_size
    data = index_file.read_bytes()
    runner, url = await serve(data)
    rows = [("index", f"{size / 1e6:.1f} MB, {charts} charts, {versions} versions")]
    try:
        repository: dict[str, Any] = {
            "apiVersion": "moor.dev/v1",
            "kind": "HelmRepository",
            "metadata": {"name": "big", "namespace": "bench", "uid": "bench-uid"},
            "spec": {"url": url},
        }
        spec = HelmRepositorySpec.from_object(repository)
        store = ChartStore(cast(KubeApi, None), source.ArtifactCache(scratch / "cache"))  # no Secrets: no API calls

        rss_before = max_rss_mib()
        started, cpu = time.perf_counter(), time.process_time()
        first = await store.refresh(repository, spec)
        wall, used = time.perf_counter() - started, time.process_time() - cpu
        rows.append(("first read (GET + parse)", f"{wall:.2f} s wall, {used:.2f} s CPU"))
        rows.append(("peak RSS growth", f"{max_rss_mib() - rss_before:.0f} MiB (ru_maxrss over the first read)"))

        started, cpu = time.perf_counter(), time.process_time()
        parse_index(data, "bench")
        rows.append(
            ("parse alone", f"{time.perf_counter() - started:.2f} s wall, {time.process_time() - cpu:.2f} s CPU")
        )
        gc.collect()
        tracemalloc.start()
        kept = parse_index(data, "bench")
        gc.collect()
        held, _ = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        del kept, data
        rows.append(("memory kept (the index)", f"{held / 2**20:.1f} MiB (tracemalloc, after a parse)"))
        assert first.index.version_count == versions

        cpu = time.process_time()
        started = time.perf_counter()
        for _ in range(polls):
            polled = await store.refresh(repository, spec)
            assert not polled.changed
        per_poll = (time.process_time() - cpu) / polls
        rows.append(
            (
                "unchanged poll (304)",
                f"{per_poll * 1000:.2f} ms CPU, {(time.perf_counter() - started) / polls * 1000:.2f} ms wall",
            )
        )

        wanted = SemverRange.parse(">=1.0.0 <3.0.0")
        names = random.Random(1).sample(sorted(first.index.charts), min(SYNCS, charts))
        cpu = time.process_time()
        for name in names:
            wanted.highest(entry.version for entry in first.index.versions(name))
        rows.append(
            (
                f"{len(names)} Syncs choose a version",
                f"{(time.process_time() - cpu) / len(names) * 1000:.3f} ms CPU each",
            )
        )
    finally:
        await runner.cleanup()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=float, default=20.0, help="size of the index in MB (default 20)")
    parser.add_argument("--polls", type=int, default=200, help="unchanged polls to time (default 200)")
    options = parser.parse_args()
    with TemporaryDirectory(prefix="moor-bench-helm-") as scratch:
        rows = asyncio.run(measure(options.mb, options.polls, Path(scratch)))
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"{label:<{width}}  {value}")


if __name__ == "__main__":
    main()
