"""What an informer's first list of a large kind costs Moor: paged (`limit` + `continue`) against one answer.

Starts its own local control plane (`moor.devcluster`; or reuses one with `--cluster-dir`), creates N
labelled ConfigMaps (20,000 by default, about 1 KiB each) in one namespace, then measures the first list
of a KindInformer built as the live cache builds it (label selector `moor.dev/sync`, the shared-string
decoder), once per page size. Each measurement runs in a fresh Python process, so its peak memory
(VmHWM) is its own: the table shows the CPU time of the list (process time), its wall time, the
requests sent, the peak RSS during the list above the RSS before it, and the RSS the cache keeps.
Paged and unpaged runs alternate so that a slow moment of the machine does not favour one of them.

It prints one table; it is not a test. Run from the repository root:
    .venv/bin/python bench/paged_lists.py [--objects 20000] [--limits 500,0] [--repeat 3] [--cluster-dir DIR]
(a limit of 0 is one unpaged list).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from moor.cluster.api import KubeApi
from moor.cluster.cache import KindInformer
from moor.cluster.client import KubeClient
from moor.cluster.config import load_kubeconfig
from moor.devcluster import running_cluster, start_cluster, stop_cluster
from moor.objects import SYNC_LABEL, ObjectRef
from moor.shared_strings import SharedJsonDecoder

NAMESPACE = "bench-paged-lists"
CREATE_CONCURRENCY = 32


@dataclass(frozen=True)
class Run:
    limit: int
    objects: int
    requests: int
    cpu: float
    wall: float
    peak_above_start_mib: float
    kept_mib: float


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def reset_peak_rss() -> None:
    """Writing 5 to clear_refs resets VmHWM to the current RSS (Linux 4.0+)."""
    Path("/proc/self/clear_refs").write_text("5")


def config_map(index: int) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": f"settings-{index:05d}",
            "namespace": NAMESPACE,
            "labels": {SYNC_LABEL: f"{NAMESPACE}.app", "app.kubernetes.io/name": "bench"},
        },
        "data": {f"key-{key}": f"value {index} {key} " + "x" * 150 for key in range(5)},
    }


async def create_objects(kubeconfig: Path, count: int) -> None:
    async with KubeClient(load_kubeconfig(kubeconfig), max_connections=CREATE_CONCURRENCY) as client:
        api = KubeApi(client)
        config_maps = await api.discovery.resolve("v1", "ConfigMap")
        assert config_maps is not None
        have = len((await api.list(config_maps, namespace=NAMESPACE, label_selector=SYNC_LABEL)).items)
        if have >= count:
            progress(f"{have} ConfigMaps already in {NAMESPACE}")
            return
        slots = asyncio.Semaphore(CREATE_CONCURRENCY)

        async def create(index: int) -> None:
            async with slots:
                await api.create(config_map(index))

        progress(f"creating {count - have} ConfigMaps in {NAMESPACE}")
        await asyncio.gather(*(create(index) for index in range(have, count)))


async def measure(kubeconfig: Path, limit: int) -> Run:
    """One informer's first list, in this process (the child of `--measure`)."""
    async with KubeClient(load_kubeconfig(kubeconfig)) as client:
        api = KubeApi(client)
        config_maps = await api.discovery.resolve("v1", "ConfigMap")
        assert config_maps is not None
        informer = KindInformer(
            api, config_maps, lambda change: None, decode=SharedJsonDecoder().loads, page_size=limit or None
        )
        requests_before = client.requests["list"]
        start_kib = rss_kib("VmRSS")
        reset_peak_rss()
        cpu, wall = time.process_time(), time.perf_counter()
        informer.start()
        await informer.wait_synced(within=600)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        peak_kib = rss_kib("VmHWM")
        objects = sum(1 for obj in informer.objects.values() if obj["metadata"]["namespace"] == NAMESPACE)
        await informer.stop()
        return Run(
            limit=limit,
            objects=objects,
            requests=client.requests["list"] - requests_before,
            cpu=cpu,
            wall=wall,
            peak_above_start_mib=(peak_kib - start_kib) / 1024,
            kept_mib=(rss_kib("VmRSS") - start_kib) / 1024,
        )


def measure_in_child(kubeconfig: Path, limit: int) -> Run:
    argv = [sys.executable, __file__, "--measure", str(limit), "--kubeconfig", str(kubeconfig)]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=900, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"the measuring process exited with {result.returncode}: {result.stderr.strip()[-2000:]}")
    return Run(**json.loads(result.stdout.strip().splitlines()[-1]))


def table(runs: Sequence[Run]) -> str:
    header = f"{'list':>14} {'objects':>8} {'requests':>8} {'CPU s':>7} {'wall s':>7} {'peak +MiB':>10} {'kept MiB':>9}"
    lines = [header, "-" * len(header)]
    for limit in dict.fromkeys(run.limit for run in runs):
        mine = [run for run in runs if run.limit == limit]
        label = f"limit={limit}" if limit else "one answer"
        median = statistics.median
        lines.append(
            f"{label:>14} {mine[0].objects:>8} {mine[0].requests:>8} {median([r.cpu for r in mine]):>7.2f}"
            f" {median([r.wall for r in mine]):>7.2f} {median([r.peak_above_start_mib for r in mine]):>10.1f}"
            f" {median([r.kept_mib for r in mine]):>9.1f}"
        )
    return "\n".join(lines) + f"\n(medians of {len(runs) // max(1, len({r.limit for r in runs}))} runs each)"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--objects", type=int, default=20_000, help="labelled ConfigMaps (default 20,000)")
    parser.add_argument(
        "--limits", default="500,0", help="page sizes to compare, 0 for one unpaged list (default 500,0)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per page size (default 3; medians shown)")
    parser.add_argument("--cluster-dir", type=Path, help="use (or start and keep) the control plane in DIR")
    parser.add_argument("--measure", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--kubeconfig", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.measure is not None:
        print(json.dumps(asyncio.run(measure(args.kubeconfig, args.measure)).__dict__))
        return 0
    limits = [int(part) for part in args.limits.split(",") if part.strip()]
    scratch = None if args.cluster_dir else Path(tempfile.mkdtemp(prefix="moor-bench-paged-"))
    cluster_dir: Path = args.cluster_dir or Path(str(scratch)) / "cluster"
    try:
        cluster = running_cluster(cluster_dir) or start_cluster(cluster_dir)
        asyncio.run(ensure_namespace(cluster.kubeconfig))
        asyncio.run(create_objects(cluster.kubeconfig, args.objects))
        runs = []
        for round_number in range(args.repeat):
            for limit in limits if round_number % 2 == 0 else reversed(limits):
                progress(f"round {round_number + 1}: first list with {'limit=' + str(limit) if limit else 'no limit'}")
                runs.append(measure_in_child(cluster.kubeconfig, limit))
        print(f"\nFirst list of {args.objects:,} labelled ConfigMaps by one informer; {os.cpu_count()} cores")
        print(table(runs))
    finally:
        if scratch is not None:
            stop_cluster(cluster_dir)
            shutil.rmtree(scratch, ignore_errors=True)
    return 0


async def ensure_namespace(kubeconfig: Path) -> None:
    async with KubeClient(load_kubeconfig(kubeconfig)) as client:
        api = KubeApi(client)
        namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
        if await api.get(ObjectRef.of(namespace)) is None:
            await api.create(namespace)


if __name__ == "__main__":
    sys.exit(main())
