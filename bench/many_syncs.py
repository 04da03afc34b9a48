"""Many Syncs: N Syncs of 5 objects each, all created at once, until every one is Ready (one `moor run`).

The workload of the Flux benchmark (fluxcd/flux-benchmark): one Git repository (a local bare one,
file://) with N directories of 3 ConfigMaps and 2 Services each (distinct names), one GitRepository,
and N Syncs, one per directory, all in one namespace. For each N given:

1. starts a fresh control plane (`moor.devcluster.start_cluster`) and runs `moor install`;
2. commits the repository, creates the namespace, the GitRepository and the N Syncs (in parallel,
   before the controller runs, so they are all there "at once");
3. starts `moor run --metrics-port P` in a subprocess; the clock runs from its start until the
   benchmark's own watch of Syncs shows every one Ready at the commit (no request per Sync);
4. reads the controller's peak RSS (VmHWM, /proc/PID/status), CPU (/proc/PID/stat), its requests by
   verb (its own /metrics) and the API server's requests by resource and verb (apiserver_request_total
   from the API server's /metrics), then stops the controller and the control plane.

Prints one row per N; it is not a test.  Run from the repository root:
    .venv/bin/python bench/many_syncs.py [1000 3000] [--py-spy /tmp/pyspy-venv/bin/py-spy --profile DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from initial_sync import BenchError, install_moor, machine, moor_version, progress, sync_ready_at, tear_down
from moor.binaries import locate
from moor.cluster.api import KubeApi
from moor.cluster.client import KubeClient
from moor.cluster.config import load_kubeconfig
from moor.devcluster import ClusterInfo, start_cluster
from moor.objects import KubeObject
from steady_state import ControllerRun, Repo, Watch, uptime

NAMESPACE = "bench"
SOURCE = "fleet"
CONFIG_MAPS, SERVICES = 3, 2
CREATE_CONCURRENCY = 32
APISERVER_SAMPLE = re.compile(r"^apiserver_request_total\{([^}]*)\} (\S+)$", re.MULTILINE)
LABEL = re.compile(r'(\w+)="([^"]*)"')


# -- the repository and the objects -------------------------------------------------------------------


def app_objects(index: int) -> list[dict[str, Any]]:
    """3 small ConfigMaps and 2 Services, named after the app so that no two Syncs share an object."""
    app = f"app-{index:05d}"
    objects: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"{app}-config-{number}", "labels": {"app": app}},
            "data": {"LOG_LEVEL": "info", "INDEX": str(index), "PART": str(number)},
        }
        for number in range(CONFIG_MAPS)
    ]
    objects += [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": f"{app}-web-{number}", "labels": {"app": app}},
            "spec": {"selector": {"app": app}, "ports": [{"name": "http", "port": 80 + number, "protocol": "TCP"}]},
        }
        for number in range(SERVICES)
    ]
    return objects


def git_repository(url: str) -> dict[str, Any]:
    return {
        "apiVersion": "moor.dev/v1",
        "kind": "GitRepository",
        "metadata": {"name": SOURCE, "namespace": NAMESPACE},
        "spec": {"url": url, "ref": {"branch": "main"}, "interval": "1h"},
    }


def sync_object(index: int) -> dict[str, Any]:
    return {
        "apiVersion": "moor.dev/v1",
        "kind": "Sync",
        "metadata": {"name": f"app-{index:05d}", "namespace": NAMESPACE},
        "spec": {
            "sourceRef": {"kind": "GitRepository", "name": SOURCE},
            "path": f"./apps/app-{index:05d}",
            "targetNamespace": NAMESPACE,
            "interval": "1h",
            "retryInterval": "10s",
            "prune": True,
        },
    }


# -- watching -----------------------------------------------------------------------------------------


class ReadyCount(Watch):
    """The benchmark's watch of Syncs, keeping the set of those Ready at the commit as events arrive
    (so the wait costs nothing per Sync)."""

    commit = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ready: set[tuple[str, str]] = set()

    def _store(self, obj: KubeObject, now: float) -> None:
        super()._store(obj, now)
        key = (str(obj["metadata"].get("namespace", "")), str(obj["metadata"]["name"]))
        if sync_ready_at(obj, self.commit):
            self.ready.add(key)
        else:
            self.ready.discard(key)


class MoorRun(ControllerRun):
    """steady_state's `moor run` subprocess, with extra flags (`--workers 16`, say)."""

    def __init__(self, cluster: ClusterInfo, directory: Path, flags: Sequence[str]) -> None:
        super().__init__(cluster, directory)
        self.flags = list(flags)

    def start(self, timeout: float = 60.0) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "moor", "run", "--artifact-dir", str(self.directory / "artifacts")]
        argv += ["--metrics-port", str(self.port), *self.flags]
        env = {**os.environ, "KUBECONFIG": str(self.cluster.kubeconfig)}
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
            )
        deadline = time.monotonic() + timeout
        while "controller started" not in self.log():
            if self.process.poll() is not None:
                raise BenchError(f"`moor run` exited with {self.process.returncode} while starting: {self.tail()}")
            if time.monotonic() > deadline:
                raise BenchError(f"`moor run` did not start within {timeout:.0f}s: {self.tail()}")
            time.sleep(0.1)


# -- one run ------------------------------------------------------------------------------------------


@dataclass
class Run:
    syncs: int
    wall: float = 0.0
    started: float = 0.0
    """Seconds from `moor run`'s start to its "controller started" line."""
    first_ready: float = 0.0
    half_ready: float = 0.0
    hwm_mib: float = 0.0
    cpu: float = 0.0
    control_plane_cpu: dict[str, float] = field(default_factory=dict)
    """CPU seconds of kube-apiserver and etcd during the run."""
    requests: dict[str, int] = field(default_factory=dict)
    apiserver: dict[str, int] = field(default_factory=dict)
    """Requests the API server answered during the run by "verb resource" (the benchmark's watch included)."""
    load: float = 0.0
    error: str = ""

    @property
    def moor_requests(self) -> int:
        return sum(self.requests.values())


def apiserver_requests(cluster: ClusterInfo) -> Counter[str]:
    """apiserver_request_total summed by verb and resource."""
    done = subprocess.run(
        [str(locate("kubectl")), "--kubeconfig", str(cluster.kubeconfig), "get", "--raw", "/metrics"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    counts: Counter[str] = Counter()
    for labels, value in APISERVER_SAMPLE.findall(done.stdout):
        found = dict(LABEL.findall(labels))
        counts[f"{found.get('verb', '?')} {found.get('resource', '') or found.get('subresource', '') or '-'}"] += int(
            float(value)
        )
    return counts


def process_cpu(pids: dict[str, int]) -> dict[str, float]:
    """CPU seconds (user + system) of the named processes so far."""
    ticks = os.sysconf("SC_CLK_TCK")
    seconds = {}
    for name, pid in pids.items():
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        seconds[name] = (int(fields[11]) + int(fields[12])) / ticks
    return seconds


def make_repository(root: Path, syncs: int) -> tuple[str, str]:
    repo = Repo(root, "fleet")
    for index in range(syncs):
        repo.put(f"apps/app-{index:05d}", app_objects(index))
    return repo.url, repo.commit(f"{syncs} apps")


async def create_all(api: KubeApi, objects: Sequence[dict[str, Any]]) -> None:
    gate = asyncio.Semaphore(CREATE_CONCURRENCY)

    async def one(obj: dict[str, Any]) -> None:
        async with gate:
            await api.create(obj)

    await asyncio.gather(*(one(obj) for obj in objects))


async def measure(args: argparse.Namespace, root: Path, cluster: ClusterInfo, run: Run) -> None:
    url, commit = await asyncio.to_thread(make_repository, root, run.syncs)
    progress(f"  committed {run.syncs} directories of {CONFIG_MAPS + SERVICES} objects at {commit[:12]}")
    async with KubeClient(load_kubeconfig(cluster.kubeconfig)) as client:
        api = KubeApi(client)
        await api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
        created = time.perf_counter()
        await create_all(api, [git_repository(url), *(sync_object(index) for index in range(run.syncs))])
        progress(f"  created the GitRepository and {run.syncs} Syncs in {time.perf_counter() - created:.1f}s")
        ReadyCount.commit = commit
        watch = await ReadyCount.start(api, "moor.dev/v1", "Sync", namespace=NAMESPACE)
        controller = MoorRun(cluster, root / "controller", args.moor_flags.split())
        profiler: subprocess.Popen[bytes] | None = None
        try:
            before = await asyncio.to_thread(apiserver_requests, cluster)
            control_plane = {name: cluster.pids[name] for name in ("kube-apiserver", "etcd") if name in cluster.pids}
            control_plane_before = process_cpu(control_plane)
            run.load = os.getloadavg()[0]
            clock = time.perf_counter()
            await asyncio.to_thread(controller.start, 120.0)
            run.started = time.perf_counter() - clock
            if args.py_spy:
                args.profile.mkdir(parents=True, exist_ok=True)
                svg = args.profile / f"many-syncs-{run.syncs}.svg"
                argv = [
                    str(args.py_spy),
                    "record",
                    "--nonblocking",
                    "--pid",
                    str(controller.pid),
                    "--rate",
                    "50",
                    "-o",
                    str(svg),
                ]
                profiler = await asyncio.to_thread(
                    subprocess.Popen, argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
                )
            half = run.syncs // 2 or 1
            deadline = clock + args.timeout
            next_line = time.perf_counter() + 10
            while len(watch.ready) < run.syncs:
                controller.check_alive()
                if not run.first_ready and watch.ready:
                    run.first_ready = time.perf_counter() - clock
                if not run.half_ready and len(watch.ready) >= half:
                    run.half_ready = time.perf_counter() - clock
                if time.perf_counter() > deadline:
                    raise BenchError(
                        f"timed out after {args.timeout:.0f}s: {len(watch.ready)} of {run.syncs} Syncs Ready"
                    )
                if time.perf_counter() > next_line:
                    progress(f"  {time.perf_counter() - clock:6.1f}s: {len(watch.ready)} of {run.syncs} Syncs Ready")
                    next_line += 10
                await asyncio.sleep(0.05)
            run.wall = watch.last_arrival - clock
            run.half_ready = run.half_ready or run.wall
            run.first_ready = run.first_ready or run.wall
            run.hwm_mib = controller.memory()["VmHWM"]
            run.cpu = round(controller.cpu()[0], 1)
            run.control_plane_cpu = {
                name: round(seconds - control_plane_before[name], 1)
                for name, seconds in process_cpu(control_plane).items()
            }
            run.requests = dict(await asyncio.to_thread(controller.requests))
            after = await asyncio.to_thread(apiserver_requests, cluster)
            run.apiserver = {key: after[key] - before.get(key, 0) for key in after if after[key] > before.get(key, 0)}
        finally:
            if profiler is not None:
                profiler.send_signal(signal.SIGINT)  # py-spy writes its flame graph on SIGINT
                await asyncio.to_thread(profiler.wait, 120)
            await watch.stop()
            await asyncio.to_thread(controller.stop)


def one_run(args: argparse.Namespace, syncs: int) -> Run:
    """A fresh control plane for one N, torn down (with its scratch directory) whatever happens."""
    root = Path(tempfile.mkdtemp(prefix=f"moor-many-syncs-{syncs}-"))
    cluster_dir = root / "cluster"
    run = Run(syncs)
    failed = False
    try:
        cluster = start_cluster(cluster_dir)
        install_moor(cluster)
        asyncio.run(measure(args, root, cluster, run))
    except BenchError as error:
        run.error, failed = str(error), True
    except Exception:
        run.error, failed = traceback.format_exc(), True
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # stopping the cluster must not be interrupted
        tear_down(cluster_dir, root, keep=failed or args.keep, logs=f"moor run's log: {root}/controller/moor-run.log")
        signal.signal(signal.SIGINT, signal.default_int_handler)
    return run


# -- output ---------------------------------------------------------------------------------------------


def table(runs: Sequence[Run]) -> str:
    header = (
        f"{'Syncs':>6} {'Ready s':>8} {'s/1000':>7} {'first':>6} {'half':>6} {'start':>6} {'peak RSS MiB':>12} "
        f"{'CPU s':>6} {'apiserver':>9} {'etcd':>5} {'requests':>8} {'per Sync':>8} {'load':>5}  by verb"
    )
    lines = [header, "-" * len(header)]
    for run in runs:
        if run.error:
            lines.append(f"{run.syncs:>6} failed: {run.error.strip().splitlines()[-1]}")
            continue
        verbs = " ".join(f"{verb}={count}" for verb, count in sorted(run.requests.items()) if count)
        lines.append(
            f"{run.syncs:>6} {run.wall:>8.1f} {run.wall * 1000 / run.syncs:>7.1f} {run.first_ready:>6.1f} "
            f"{run.half_ready:>6.1f} {run.started:>6.1f} {run.hwm_mib:>12.0f} {run.cpu:>6.1f} "
            f"{run.control_plane_cpu.get('kube-apiserver', 0):>9.1f} {run.control_plane_cpu.get('etcd', 0):>5.1f} "
            f"{run.moor_requests:>8} {run.moor_requests / run.syncs:>8.2f} {run.load:>5.2f}  {verbs}"
        )
    for run in runs:
        if run.apiserver:
            top = sorted(run.apiserver.items(), key=lambda item: -item[1])[:8]
            text = ", ".join(f"{key}={count} ({count / run.syncs:.2f}/Sync)" for key, count in top)
            lines.append(f"API server, {run.syncs} Syncs: {text}")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("syncs", type=int, nargs="*", default=[1000], help="how many Syncs per run (default 1000)")
    parser.add_argument("--timeout", type=float, default=1800.0, help="bound of the wait for Ready (s, default 1800)")
    parser.add_argument("--moor-flags", default="", help='more flags of `moor run`, e.g. "--workers 16"')
    parser.add_argument("--py-spy", type=Path, help="py-spy executable: record `moor run` into --profile DIR")
    parser.add_argument("--profile", type=Path, default=Path("/tmp/many-syncs-profiles"), help="where py-spy writes")
    parser.add_argument("--json", type=Path, help="also write every run to this file")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directories")
    args = parser.parse_args(argv)
    if not args.syncs or min(args.syncs) < 1:
        parser.error("give one or more positive numbers of Syncs")
    return args


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)  # so `finally` stops the controller and the cluster on SIGTERM too
    version = moor_version()
    progress(f"{version}; machine: {machine()}\nuptime: {uptime()}")
    runs: list[Run] = []
    try:
        for syncs in args.syncs:
            progress(f"{syncs} Syncs: starting a control plane")
            runs.append(one_run(args, syncs))
            progress(table(runs[-1:]))
    except KeyboardInterrupt:
        progress("interrupted")
        runs.append(Run(syncs, error="interrupted"))
    flags = f" {args.moor_flags}" if args.moor_flags else ""
    code = f" (code from PYTHONPATH={os.environ['PYTHONPATH']})" if os.environ.get("PYTHONPATH") else ""
    print(f"\nMany Syncs ({CONFIG_MAPS} ConfigMaps + {SERVICES} Services each), one `moor run{flags}`; {version}{code}")
    print(machine())
    print(f"uptime at end: {uptime()}")
    print(table(runs))
    if args.json:
        args.json.write_text(json.dumps([asdict(run) for run in runs], indent=1))
    return 1 if any(run.error for run in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
