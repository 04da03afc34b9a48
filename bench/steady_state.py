"""Steady state, drift and recovery: what `moor run` costs once everything is applied.

Starts its own local control plane (`moor.devcluster`), installs Moor's CRDs and runs the controller
as `moor run --metrics-port P` in a subprocess, so CPU (/proc/PID/stat) and memory (/proc/PID/status)
are those of the real process and its API requests are read from its own `/metrics`. Then it measures:

1. no-op reconciles of Syncs of 1,000 and 5,000 objects (ConfigMaps and one-replica Deployments);
2. drift latency: a managed ConfigMap changed with a direct PATCH, until the watch shows it put back;
   beside it the latency of an interval-only re-check (measured with the watch trigger switched off,
   and computed for `interval: 1m`);
3. one changed object among 5,000 in a new commit, from the GitRepository's reconcile request;
4. peak RSS (VmHWM) of `moor run` managing 5,000 and 20,000 ConfigMaps;
5. time to recover: a revision whose Deployments never become ready, in a Sync with
   `rollback.onFailure`, from the health timeout to the Sync reporting RolledBack with every object
   healthy at the old revision.

It prints one table per measurement and a summary; it is not a test. Run from the repository root:
    .venv/bin/python bench/steady_state.py [--sizes 1000,5000] [--rss-sizes 5000,20000] [--trials 50]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from initial_sync import (
    PODS_PER_NODE,
    BenchError,
    config_map,
    deployment,
    git,
    install_moor,
    machine,
    moor_version,
    progress,
    ready_condition,
    sync_ready_at,
    tear_down,
)
from moor.cluster.api import KubeApi
from moor.cluster.client import ApiError, ApiUnreachable, KubeClient
from moor.cluster.config import load_kubeconfig
from moor.cluster.discovery import ResourceType
from moor.devcluster import NEVER_READY_LABEL, ClusterInfo, start_cluster
from moor.health import HealthState, assess_health
from moor.objects import RECONCILE_ANNOTATION, KubeObject, ObjectRef

NAME = "app"  # of the GitRepository (and the Sync, when there is one) in each namespace
OBJECTS_PER_FILE = 10
WRITE_VERBS = ("apply", "patch", "update", "create", "delete")
RECOVERY_DEPLOYMENTS, RECOVERY_SERVICES, RECOVERY_CONFIG_MAPS = 17, 17, 16
DRIFT_OBJECT = "settings-00001"  # the ConfigMap changed behind Moor's back
CHANGED_OBJECT = "settings-00007"  # the ConfigMap a new commit changes
LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")
REQUESTS_SAMPLE = re.compile(r'^moor_api_requests_total\{verb="([^"]+)"\} (\S+)$', re.MULTILINE)
CACHE_SAMPLE = re.compile(r"^moor_cache_objects (\S+)$", re.MULTILINE)

# `moor run` with two optional changes for the benchmark's own use (never for the main figures):
# BENCH_NO_WATCH_TRIGGER switches off the drift trigger from the watch (the interval-only re-check),
# BENCH_PROFILE_DIR lets SIGUSR1/SIGUSR2 start and stop pyinstrument around one measurement.
BOOTSTRAP = """
import os, signal, sys
from pathlib import Path
if os.environ.get("BENCH_NO_WATCH_TRIGGER"):
    from moor.controller.runtime import Controller
    Controller._on_managed_change = lambda self, change: None
if os.environ.get("BENCH_PROFILE_DIR"):
    from pyinstrument import Profiler
    directory = Path(os.environ["BENCH_PROFILE_DIR"])
    running = []
    def start(signum, frame):
        if not running:
            profiler = Profiler(interval=0.001, async_mode="disabled")
            profiler.start()
            running.append(profiler)
    def stop(signum, frame):
        if running:
            profiler = running.pop()
            profiler.stop()
            name = (directory / "next-name").read_text().strip()
            (directory / (name + ".html")).write_text(profiler.output_html())
            (directory / (name + ".txt")).write_text(profiler.output_text(unicode=False, color=False))
    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGUSR2, stop)
sys.argv = ["moor", *sys.argv[1:]]
from moor.cli.main import main
main()
"""


# -- the objects in Git ------------------------------------------------------------------------------


def mixed_objects(size: int) -> list[dict[str, Any]]:
    """75% ConfigMaps, 25% Deployments of one replica (the generators of initial_sync.py)."""
    deployments = size // 4
    return [config_map(i) for i in range(size - deployments)] + [deployment(i, 1) for i in range(deployments)]


def recovery_objects(label: str, *, never_ready: bool) -> list[dict[str, Any]]:
    """The app of the recovery measurement: Deployments, Services and ConfigMaps (50 objects).

    `label` goes into every ConfigMap, so each revision changes them; `never_ready` puts the
    never-ready label on every Deployment's Pod template (kwok then never makes those Pods Ready)."""
    objects: list[dict[str, Any]] = []
    for i in range(RECOVERY_DEPLOYMENTS):
        name = f"svc-{i:02d}"
        labels = {"app": name}
        pod_labels = {**labels, NEVER_READY_LABEL: "true"} if never_ready else labels
        container = {"name": "main", "image": "nginx:1.27", "ports": [{"name": "http", "containerPort": 8080}]}
        objects.append(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": name, "labels": labels},
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": labels},
                    "template": {"metadata": {"labels": pod_labels}, "spec": {"containers": [container]}},
                },
            }
        )
    for i in range(RECOVERY_SERVICES):
        name = f"svc-{i:02d}"
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": name, "labels": {"app": name}},
                "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": "http"}]},
            }
        )
    for i in range(RECOVERY_CONFIG_MAPS):
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": f"conf-{i:02d}"},
                "data": {"revision": label, "LOG_LEVEL": "info"},
            }
        )
    return objects


class Repo:
    """A local bare repository (file://) and its work tree; files of ten documents each."""

    def __init__(self, root: Path, name: str) -> None:
        self.work = root / "work" / name
        self.bare = root / "git" / f"{name}.git"
        self.work.mkdir(parents=True)
        self.bare.parent.mkdir(parents=True, exist_ok=True)
        git("init", "--quiet", "--initial-branch=main", self.work)
        git("init", "--quiet", "--bare", "--initial-branch=main", self.bare)
        self.files: dict[str, list[dict[str, Any]]] = {}
        self.where: dict[tuple[str, str], str] = {}

    @property
    def url(self) -> str:
        return self.bare.resolve().as_uri()

    def put(self, directory: str, documents: Sequence[dict[str, Any]]) -> None:
        """Replaces every file of `directory` with `documents`."""
        for path in [path for path in self.files if path.startswith(f"{directory}/")]:
            del self.files[path]
            (self.work / path).unlink()
        (self.work / directory).mkdir(parents=True, exist_ok=True)
        for start in range(0, len(documents), OBJECTS_PER_FILE):
            path = f"{directory}/objects-{start // OBJECTS_PER_FILE:04d}.yaml"
            self.files[path] = [dict(document) for document in documents[start : start + OBJECTS_PER_FILE]]
            for document in self.files[path]:
                self.where[(document["kind"], document["metadata"]["name"])] = path
            self._write(path)

    def change(self, kind: str, name: str, change: Callable[[dict[str, Any]], None]) -> None:
        path = self.where[(kind, name)]
        for document in self.files[path]:
            if document["kind"] == kind and document["metadata"]["name"] == name:
                change(document)
        self._write(path)

    def commit(self, message: str) -> str:
        git("add", "--all", cwd=self.work)
        git("commit", "--quiet", "--no-verify", "--allow-empty", "-m", message, cwd=self.work)
        git("push", "--quiet", self.bare, "main", cwd=self.work)
        return git("rev-parse", "HEAD", cwd=self.work)

    def _write(self, path: str) -> None:
        text = yaml.dump_all(self.files[path], Dumper=yaml.CSafeDumper, sort_keys=False)
        (self.work / path).write_text(text)


@dataclass
class App:
    """One namespace: a GitRepository `app` on one Repo, and its Syncs (name -> path)."""

    namespace: str
    repo: Repo
    syncs: dict[str, str]
    objects: int
    commit: str = ""

    def sync_ref(self, name: str = NAME) -> ObjectRef:
        return ObjectRef("moor.dev", "v1", "Sync", self.namespace, name)

    @property
    def source_ref(self) -> ObjectRef:
        return ObjectRef("moor.dev", "v1", "GitRepository", self.namespace, NAME)


def git_repository(namespace: str, url: str) -> dict[str, Any]:
    return {
        "apiVersion": "moor.dev/v1",
        "kind": "GitRepository",
        "metadata": {"name": NAME, "namespace": namespace},
        "spec": {"url": url, "ref": {"branch": "main"}, "interval": "1h"},
    }


def sync_object(namespace: str, name: str, path: str, *, wait: bool, timeout: str, rollback: bool) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "sourceRef": {"kind": "GitRepository", "name": NAME},
        "path": path,
        "targetNamespace": namespace,
        "interval": "1h",
        "retryInterval": "2s",
        "timeout": timeout,
        "prune": True,
        "wait": wait,
        "drift": {"mode": "correct"},
    }
    if rollback:
        spec["rollback"] = {"onFailure": True}
    return {
        "apiVersion": "moor.dev/v1",
        "kind": "Sync",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


# -- the controller process ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ControllerRun:
    """`moor run --metrics-port P` in a subprocess, its log in a file; CPU and memory read from /proc."""

    def __init__(
        self, cluster: ClusterInfo, directory: Path, *, watch_trigger: bool = True, profile_dir: Path | None = None
    ) -> None:
        self.cluster = cluster
        self.directory = directory
        self.log_path = directory / "moor-run.log"
        self.watch_trigger = watch_trigger
        self.profile_dir = profile_dir
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.ticks = os.sysconf("SC_CLK_TCK")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, timeout: float = 60.0) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        flags = ["run", "--artifact-dir", str(self.directory / "artifacts"), "--metrics-port", str(self.port)]
        env = {**os.environ, "KUBECONFIG": str(self.cluster.kubeconfig)}
        if self.watch_trigger and self.profile_dir is None:
            argv = [sys.executable, "-m", "moor", *flags]  # exactly `moor run`
        else:
            argv = [sys.executable, "-c", BOOTSTRAP, *flags]
            if not self.watch_trigger:
                env["BENCH_NO_WATCH_TRIGGER"] = "1"
            if self.profile_dir is not None:
                self.profile_dir.mkdir(parents=True, exist_ok=True)
                env["BENCH_PROFILE_DIR"] = str(self.profile_dir)
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

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def tail(self, lines: int = 5) -> str:
        return " | ".join(self.log().strip().splitlines()[-lines:])

    def check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise BenchError(f"`moor run` exited with {self.process.returncode}: {self.tail()}")

    def cpu(self) -> tuple[float, float]:
        """CPU seconds (user + system) of the controller itself, and of its finished children (git)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / self.ticks, (int(fields[13]) + int(fields[14])) / self.ticks

    def memory(self) -> dict[str, float]:
        """VmHWM (peak resident set) and VmRSS, in MiB."""
        values = {}
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                values[key] = int(value.split()[0]) / 1024
        return values

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=10) as response:
            return str(response.read().decode())

    def requests(self) -> Counter[str]:
        return Counter({verb: int(float(value)) for verb, value in REQUESTS_SAMPLE.findall(self.metrics())})

    def cache_objects(self) -> int:
        found = CACHE_SAMPLE.search(self.metrics())
        return int(float(found[1])) if found else -1

    def signal(self, signum: int) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signum)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 30 seconds; safe to call twice."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            progress("  `moor run` did not stop within 30s after SIGTERM; killed")
            self.process.kill()
            self.process.wait(timeout=10)

    def log_time(self, *needles: str) -> float | None:
        """time.time() of the first log line containing every needle (the log has millisecond times)."""
        for line in self.log().splitlines():
            if all(needle in line for needle in needles) and (match := LOG_TIME.match(line)):
                return datetime.strptime(match[1], "%Y-%m-%d %H:%M:%S,%f").timestamp()
        return None


# -- watching from the benchmark's side -----------------------------------------------------------------


def status_of(obj: KubeObject | None) -> dict[str, Any]:
    return dict((obj or {}).get("status") or {})


def data_of(obj: KubeObject | None) -> dict[str, Any]:
    return dict((obj or {}).get("data") or {})


def artifact_revision(repository: KubeObject | None) -> str:
    return str((status_of(repository).get("artifact") or {}).get("revision", ""))


def object_key(obj: KubeObject) -> tuple[str, str]:
    metadata = obj.get("metadata") or {}
    return str(metadata.get("namespace", "")), str(metadata.get("name", ""))


class Watch:
    """One collection listed, then watched with the benchmark's own client; every event timed on arrival."""

    def __init__(self, api: KubeApi, resource: ResourceType, namespace: str | None, field_selector: str | None) -> None:
        self.api = api
        self.resource = resource
        self.path = resource.collection_path(namespace)
        self.selectors = {"fieldSelector": field_selector} if field_selector else {}
        self.objects: dict[tuple[str, str], KubeObject] = {}
        self.arrived: dict[tuple[str, str], float] = {}
        self.last_arrival = 0.0
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @classmethod
    async def start(
        cls,
        api: KubeApi,
        api_version: str,
        kind: str,
        *,
        namespace: str | None = None,
        field_selector: str | None = None,
    ) -> Watch:
        resource = await api.discovery.resolve(api_version, kind)
        if resource is None:
            raise BenchError(f"the cluster does not serve {kind} ({api_version})")
        watch = cls(api, resource, namespace, field_selector)
        version = await watch._list()
        watch._task = asyncio.create_task(watch._run(version), name=f"bench watch {resource.plural}")
        return watch

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    def get(self, namespace: str, name: str) -> KubeObject | None:
        return self.objects.get((namespace, name))

    def in_namespace(self, namespace: str) -> list[KubeObject]:
        return [obj for (space, _), obj in self.objects.items() if space == namespace]

    async def _list(self) -> str:
        for attempt in range(60):  # a CRD installed a moment ago answers 503 until its storage is ready
            try:
                document = await self.api.client.request("list", "GET", self.path, params=self.selectors)
                break
            except ApiError as error:
                if (error.status < 500 and error.status != 429) or attempt == 59:
                    raise
                await asyncio.sleep(0.5)
        now = time.perf_counter()
        self.objects = {}
        for item in document.get("items") or []:
            self._store(item, now)
        self._wake(now)
        return str(document["metadata"].get("resourceVersion", ""))

    async def _run(self, version: str) -> None:
        while True:
            params = {
                **self.selectors,
                "watch": "true",
                "allowWatchBookmarks": "true",
                "resourceVersion": version,
                "timeoutSeconds": "300",
            }
            try:
                async for event in self.api.client.stream(self.path, params):
                    now = time.perf_counter()
                    kind, obj = event.get("type"), event.get("object") or {}
                    if kind == "ERROR":
                        raise ApiError(int(obj.get("code", 500)), str(obj.get("reason", "")), str(obj.get("message")))
                    version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
                    if kind == "BOOKMARK":
                        continue
                    if kind == "DELETED":
                        self.objects.pop(object_key(obj), None)
                        self.arrived[object_key(obj)] = now
                    else:
                        self._store(obj, now)
                    self._wake(now)
            except ApiError as error:
                if not error.gone:
                    raise
                version = await self._list()
            except ApiUnreachable:
                await asyncio.sleep(0.2)

    def _store(self, obj: KubeObject, now: float) -> None:
        obj.setdefault("apiVersion", self.resource.api_version)
        obj.setdefault("kind", self.resource.kind)
        self.objects[object_key(obj)] = obj
        self.arrived[object_key(obj)] = now

    def _wake(self, now: float) -> None:
        self.last_arrival = now
        self._changed.set()
        self._changed = asyncio.Event()

    async def until(
        self,
        what: str,
        check: Callable[[], bool],
        timeout: float,
        *,
        key: tuple[str, str] | None = None,
        last_seen: Callable[[], str] | None = None,
        alive: Callable[[], None] | None = None,
    ) -> float:
        """Waits (bounded) until `check()` holds; returns when the event that made it hold arrived
        (time.perf_counter(); of object `key` if given, else the watch's latest event)."""
        deadline = time.monotonic() + timeout
        while not check():
            if self._task is not None and self._task.done():
                error = None if self._task.cancelled() else self._task.exception()
                raise BenchError(f"the watch of {self.resource.plural} ended while waiting for {what}: {error!r}")
            if alive is not None:
                alive()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                seen = f"; last seen: {last_seen()}" if last_seen else ""
                raise BenchError(f"timed out after {timeout:.0f}s waiting for {what}{seen}")
            changed = self._changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), min(remaining, 1.0))
        return self.arrived.get(key, self.last_arrival) if key is not None else self.last_arrival


# -- figures -------------------------------------------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest rank: the smallest value with at least p% of the values at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def median_counts(runs: Sequence[dict[str, int]]) -> dict[str, float]:
    verbs = sorted({verb for run in runs for verb in run})
    return {verb: statistics.median(run.get(verb, 0) for run in runs) for verb in verbs}


def verbs_text(counts: dict[str, float] | dict[str, int]) -> str:
    shown = {verb: count for verb, count in counts.items() if count}
    if not shown:
        return "none"
    return " ".join(f"{verb}={count:g}" for verb, count in sorted(shown.items()))


def writes(counts: dict[str, int]) -> int:
    return sum(counts.get(verb, 0) for verb in WRITE_VERBS)


def interval_model(interval: float, pass_seconds: float, samples: int = 200_000) -> tuple[float, float, float]:
    """Latency of an interval-only re-check: a change at a random moment waits for the next pass
    (passes every interval x U(0.9, 1.1), Moor's jitter), then that pass takes `pass_seconds`.
    Returns (mean, p50, p95), by simulation of the residual time to the next pass."""
    rng = random.Random(5)
    gaps = [interval * rng.uniform(0.9, 1.1) for _ in range(samples)]
    # A random moment falls in a gap with probability proportional to its length: sample gaps so.
    chosen = rng.choices(gaps, weights=gaps, k=samples)
    waits = sorted(gap * rng.random() + pass_seconds for gap in chosen)
    return statistics.fmean(waits), percentile(waits, 50), percentile(waits, 95)


@dataclass
class NoopResult:
    objects: int
    namespace: str
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    requests: list[dict[str, int]] = field(default_factory=list)
    loads: list[float] = field(default_factory=list)
    objects_written: int = -1
    profile: str = ""


@dataclass
class DriftResult:
    label: str
    objects: int
    trigger: str
    latencies: list[float] = field(default_factory=list)
    requests: list[dict[str, int]] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    loads: list[float] = field(default_factory=list)
    note: str = ""


@dataclass
class ChangeResult:
    objects: int
    source: list[float] = field(default_factory=list)
    applied: list[float] = field(default_factory=list)
    ready: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    git_cpu: list[float] = field(default_factory=list)
    requests: list[dict[str, int]] = field(default_factory=list)
    loads: list[float] = field(default_factory=list)
    profile: str = ""


@dataclass
class MemoryResult:
    objects: int
    syncs: int
    phase: str
    hwm: float
    rss: float
    cache_objects: int
    seconds: float
    load: float


@dataclass
class RecoveryTrial:
    apply_to_failure: float
    """Seconds from the bad revision's Deployments seen applied to the health timeout (~ timeout)."""
    failure_to_first_write: float
    """From the health timeout to the first Deployment template put back (the watch)."""
    failure_to_healthy: float
    """From the health timeout to every object healthy at the old revision (the watch)."""
    failure_to_rolled_back: float
    """From the health timeout to the Sync reporting RolledBack (the watch)."""
    recover: float
    """The time to recover: the later of the two above."""
    requests: dict[str, int]
    load: float


@dataclass
class Results:
    machine: str = ""
    version: str = ""
    command: str = ""
    uptime_start: str = ""
    uptime_end: str = ""
    others: list[str] = field(default_factory=list)
    idle_cpu: float = -1.0
    noop: list[NoopResult] = field(default_factory=list)
    drift: list[DriftResult] = field(default_factory=list)
    change: list[ChangeResult] = field(default_factory=list)
    memory: list[MemoryResult] = field(default_factory=list)
    recovery: list[RecoveryTrial] = field(default_factory=list)
    recovery_timeout: float = 0.0
    notes: list[str] = field(default_factory=list)


# -- the benchmark ---------------------------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace, root: Path, cluster: ClusterInfo, results: Results) -> None:
        self.args = args
        self.root = root
        self.cluster = cluster
        self.results = results
        self.controllers: list[ControllerRun] = []
        self._api: KubeApi | None = None
        self._syncs: Watch | None = None
        self._sources: Watch | None = None
        self._stamps = 0

    @property
    def api(self) -> KubeApi:
        """The benchmark's own client; its requests are not Moor's and are never counted."""
        assert self._api is not None
        return self._api

    @property
    def syncs(self) -> Watch:
        assert self._syncs is not None
        return self._syncs

    @property
    def sources(self) -> Watch:
        assert self._sources is not None
        return self._sources

    def stop_controllers(self) -> None:
        for controller in self.controllers:
            controller.stop()

    async def run(self) -> None:
        async with KubeClient(load_kubeconfig(self.cluster.kubeconfig)) as client:
            self._api = KubeApi(client)
            self._syncs = await Watch.start(self.api, "moor.dev/v1", "Sync")
            self._sources = await Watch.start(self.api, "moor.dev/v1", "GitRepository")
            try:
                apps = await self.steady_state()
                if self.args.rss_sizes:
                    await self.clean([app.namespace for app in apps])
                    await self.memory()
            finally:
                await self.syncs.stop()
                await self.sources.stop()
                await asyncio.to_thread(self.stop_controllers)

    # -- set-up --

    def start_controller(self, name: str, *, watch_trigger: bool = True, profile: bool = False) -> ControllerRun:
        profile_dir = self.args.profile if profile else None
        controller = ControllerRun(
            self.cluster, self.root / f"controller-{name}", watch_trigger=watch_trigger, profile_dir=profile_dir
        )
        self.controllers.append(controller)
        controller.start()
        progress(f"  started `moor run` ({name}): pid {controller.pid}, metrics on port {controller.port}")
        return controller

    def new_app(self, namespace: str, shards: dict[str, list[dict[str, Any]]]) -> App:
        """A Repo holding one directory per Sync (`shards`: Sync name -> documents), committed."""
        repo = Repo(self.root, namespace)
        for name, documents in shards.items():
            repo.put(name, documents)
        app = App(namespace, repo, {name: f"./{name}" for name in shards}, sum(map(len, shards.values())))
        app.commit = repo.commit(f"{app.objects} objects")
        return app

    async def create(self, app: App, *, wait: bool = False, timeout: str = "60s", rollback: bool = False) -> None:
        await self.api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": app.namespace}})
        await self.api.create(git_repository(app.namespace, app.repo.url))
        for name, path in app.syncs.items():
            await self.api.create(sync_object(app.namespace, name, path, wait=wait, timeout=timeout, rollback=rollback))

    async def ready(self, apps: Sequence[App], controller: ControllerRun, timeout: float) -> float:
        """Waits until every Sync of `apps` is Ready at its app's commit; returns the seconds it took."""
        started = time.perf_counter()
        for app in apps:
            for name in app.syncs:
                await self.ready_one(
                    app.namespace, name, app.commit, controller, timeout - (time.perf_counter() - started)
                )
        return time.perf_counter() - started

    async def ready_one(
        self, namespace: str, name: str, commit: str, controller: ControllerRun, timeout: float
    ) -> None:
        await self.syncs.until(
            f"Sync {namespace}/{name} Ready at {commit[:12]}",
            lambda: sync_ready_at(self.syncs.get(namespace, name), commit),
            max(1.0, timeout),
            key=(namespace, name),
            last_seen=lambda: ready_condition(self.syncs.get(namespace, name)),
            alive=controller.check_alive,
        )

    async def deployments_available(self, namespaces: Sequence[str], timeout: float) -> None:
        resource = await self.api.discovery.resolve("apps/v1", "Deployment")
        assert resource is not None
        deadline = time.monotonic() + timeout
        for namespace in namespaces:
            while True:
                items = (await self.api.list(resource, namespace=namespace)).items
                waiting = [
                    d for d in items if (d.get("status") or {}).get("availableReplicas", 0) != d["spec"]["replicas"]
                ]
                if not waiting:
                    break
                if time.monotonic() > deadline:
                    raise BenchError(f"{len(waiting)} Deployments in {namespace} not Available after {timeout:.0f}s")
                await asyncio.sleep(2.0)

    async def idle(self, controller: ControllerRun, quiet: float = 0.5, within: float = 120.0) -> bool:
        """Waits until the controller used at most 10 ms of CPU over `quiet` seconds (no request needed)."""
        deadline = time.monotonic() + within
        last = sum(controller.cpu())
        while time.monotonic() < deadline:
            await asyncio.sleep(quiet)
            controller.check_alive()
            now = sum(controller.cpu())
            if now - last <= 0.011:
                return True
            last = now
        progress(f"  note: the controller was still busy after {within:.0f}s")
        return False

    def stamp(self, what: str) -> str:
        self._stamps += 1
        return f"{what}-{self._stamps}-{time.time():.3f}"

    async def handled(self, namespace: str, name: str, stamp: str, controller: ControllerRun, timeout: float) -> float:
        """Waits until the Sync's status.lastHandledReconcileAt is `stamp`; returns when the watch saw it."""
        return await self.syncs.until(
            f"Sync {namespace}/{name} to handle the reconcile request {stamp}",
            lambda: status_of(self.syncs.get(namespace, name)).get("lastHandledReconcileAt") == stamp,
            timeout,
            key=(namespace, name),
            alive=controller.check_alive,
        )

    async def annotate(self, ref: ObjectRef, stamp: str) -> None:
        await self.api.merge_patch(ref, {"metadata": {"annotations": {RECONCILE_ANNOTATION: stamp}}})

    async def requests(self, controller: ControllerRun) -> Counter[str]:
        return await asyncio.to_thread(controller.requests)

    async def profile(self, controller: ControllerRun, name: str, start: bool) -> None:
        if controller.profile_dir is None:
            return
        if start:
            (controller.profile_dir / "next-name").write_text(name)
            controller.signal(signal.SIGUSR1)
            await asyncio.sleep(0.05)
            return
        controller.signal(signal.SIGUSR2)
        report = controller.profile_dir / f"{name}.txt"
        for _ in range(300):  # pyinstrument writes it within a few seconds
            if report.exists():
                return
            await asyncio.sleep(0.1)

    # -- 1, 2, 3, 5: one controller, several apps --

    async def steady_state(self) -> list[App]:
        args = self.args
        largest = max(args.sizes)
        apps = {size: self.new_app(f"steady-{size}", {NAME: mixed_objects(size)}) for size in args.sizes}
        small = self.new_app(f"drift-{args.drift_small}", {NAME: mixed_objects(args.drift_small)})
        recovery = self.new_app("recovery", {NAME: recovery_objects("good-0", never_ready=False)})
        everything = [*apps.values(), small, recovery]
        progress(
            f"apps: {', '.join(f'{app.namespace} ({app.objects} objects)' for app in everything)}; "
            f"load {os.getloadavg()[0]:.2f}"
        )
        controller = self.start_controller("main", profile=args.profile is not None)
        started = time.perf_counter()
        for app in everything:
            if app is recovery:
                await self.create(app, wait=True, timeout=f"{args.recovery_timeout}s", rollback=True)
            else:
                await self.create(app)
        await self.ready(everything, controller, args.timeout)
        progress(f"  every Sync Ready after {time.perf_counter() - started:.1f}s; waiting for the Deployments")
        await self.deployments_available([app.namespace for app in everything], args.timeout)
        await self.idle(controller, quiet=2.0, within=args.timeout)
        idle_start, idle_cpu = time.perf_counter(), sum(controller.cpu())
        await asyncio.sleep(10.0)
        self.results.idle_cpu = (sum(controller.cpu()) - idle_cpu) / (time.perf_counter() - idle_start)
        progress(f"  steady; the idle controller uses {self.results.idle_cpu * 1000:.1f} ms of CPU per second")

        for size, app in apps.items():
            await self.noop(app, controller, size)
        for app in (small, apps[largest]):
            await self.drift(app, controller, f"{app.namespace}", app.objects)
        await self.one_change(apps[largest], controller)
        if args.recovery_trials:
            await self.recovery(recovery, controller)
        await self.read_memory(controller, sum(app.objects for app in everything), len(everything), "all apps above")
        await asyncio.to_thread(controller.stop)
        if args.interval_trials:
            await self.interval_recheck(small)
        return everything

    async def noop(self, app: App, controller: ControllerRun, size: int) -> None:
        """`moor reconcile sync` without the CLI: set the annotation, wait for lastHandledReconcileAt."""
        result = NoopResult(size, app.namespace)
        self.results.noop.append(result)
        before_objects = await self.written_fingerprint(app.namespace)
        runs = self.args.reconciles + (1 if controller.profile_dir else 0)
        for index in range(runs):
            profiled = index == self.args.reconciles
            await self.idle(controller)
            before = await self.requests(controller)
            load = os.getloadavg()[0]
            stamp = self.stamp(f"noop-{size}")
            if profiled:
                await self.profile(controller, f"noop-{size}", start=True)
            cpu_before = controller.cpu()[0]
            started = time.perf_counter()
            await self.annotate(app.sync_ref(), stamp)
            seen = await self.handled(app.namespace, NAME, stamp, controller, min(self.args.timeout, 120.0))
            cpu = controller.cpu()[0] - cpu_before
            if profiled:
                await self.profile(controller, f"noop-{size}", start=False)
                result.profile = str(self.args.profile / f"noop-{size}.txt")
                continue
            await self.idle(controller)
            requests = dict((await self.requests(controller)) - before)
            result.wall.append(seen - started)
            result.cpu.append(cpu)
            result.requests.append(requests)
            result.loads.append(load)
        after_objects = await self.written_fingerprint(app.namespace)
        result.objects_written = sum(1 for key, value in after_objects.items() if before_objects.get(key) != value)
        progress(
            f"  no-op reconcile of {size}: wall p50 {statistics.median(result.wall):.3f}s, "
            f"CPU p50 {statistics.median(result.cpu):.2f}s, requests {verbs_text(median_counts(result.requests))}, "
            f"managed objects written {result.objects_written}"
        )

    async def written_fingerprint(self, namespace: str) -> dict[str, str]:
        """What a write by Moor would change: ConfigMaps' resourceVersion, Deployments' generation and
        the time of Moor's managedFields entry (status updates by other controllers leave both alone)."""
        fingerprint = {}
        for api_version, kind in (("v1", "ConfigMap"), ("apps/v1", "Deployment")):
            resource = await self.api.discovery.resolve(api_version, kind)
            assert resource is not None
            for obj in (await self.api.list(resource, namespace=namespace, label_selector="moor.dev/sync")).items:
                metadata = obj["metadata"]
                if kind == "ConfigMap":
                    value = str(metadata["resourceVersion"])
                else:
                    fields = metadata.get("managedFields") or []
                    value = f"{metadata.get('generation')} {[f.get('time') for f in fields if f['manager'] == 'moor']}"
                fingerprint[f"{kind}/{metadata['name']}"] = value
        return fingerprint

    async def drift(self, app: App, controller: ControllerRun, label: str, objects: int) -> None:
        """A direct PATCH of a managed ConfigMap's data; the clock runs from the PATCH's response until
        the benchmark's own watch shows the Git value back."""
        result = DriftResult(label, objects, "watch (moor run)")
        self.results.drift.append(result)
        watch = await Watch.start(
            self.api, "v1", "ConfigMap", namespace=app.namespace, field_selector=f"metadata.name={DRIFT_OBJECT}"
        )
        ref = ObjectRef("", "v1", "ConfigMap", app.namespace, DRIFT_OBJECT)
        try:
            for trial in range(self.args.trials):
                await self.idle(controller)
                before = await self.requests(controller)
                load = os.getloadavg()[0]
                cpu_before = controller.cpu()[0]
                latency = await self.drift_once(watch, ref, f"drift-{trial}", 60.0, controller)
                cpu = controller.cpu()[0] - cpu_before
                await self.idle(controller)
                result.latencies.append(latency)
                result.cpu.append(cpu)
                result.requests.append(dict((await self.requests(controller)) - before))
                result.loads.append(load)
        finally:
            await watch.stop()
        progress(
            f"  drift in {label}: p50 {percentile(result.latencies, 50):.3f}s, "
            f"p95 {percentile(result.latencies, 95):.3f}s over {len(result.latencies)} trials"
        )

    async def drift_once(
        self, watch: Watch, ref: ObjectRef, value: str, timeout: float, controller: ControllerRun
    ) -> float:
        original = (watch.get(ref.namespace, ref.name) or {}).get("data", {}).get("LOG_LEVEL")
        if original is None:
            raise BenchError(f"{ref} is not in the benchmark's watch")
        patched = await self.api.merge_patch(ref, {"data": {"LOG_LEVEL": value}})
        answered = time.perf_counter()
        version = int(patched["metadata"]["resourceVersion"])

        def put_back() -> bool:
            obj = watch.get(ref.namespace, ref.name) or {}
            current = int((obj.get("metadata") or {}).get("resourceVersion") or 0)
            return current > version and (obj.get("data") or {}).get("LOG_LEVEL") == original

        seen = await watch.until(
            f"{ref} put back to LOG_LEVEL={original}",
            put_back,
            timeout,
            key=(ref.namespace, ref.name),
            last_seen=lambda: str((watch.get(ref.namespace, ref.name) or {}).get("data")),
            alive=controller.check_alive,
        )
        return seen - answered

    async def one_change(self, app: App, controller: ControllerRun) -> None:
        """A commit that changes one ConfigMap; the clock runs from the GitRepository's reconcile request."""
        result = ChangeResult(app.objects)
        self.results.change.append(result)
        watch = await Watch.start(
            self.api, "v1", "ConfigMap", namespace=app.namespace, field_selector=f"metadata.name={CHANGED_OBJECT}"
        )
        try:
            for trial in range(self.args.change_trials + (1 if controller.profile_dir else 0)):
                await self.change_once(app, controller, watch, result, trial)
        finally:
            await watch.stop()
        progress(
            f"  one changed object among {app.objects}: applied p50 {statistics.median(result.applied):.2f}s, "
            f"Ready p50 {statistics.median(result.ready):.2f}s"
        )

    async def change_once(
        self, app: App, controller: ControllerRun, watch: Watch, result: ChangeResult, trial: int
    ) -> None:
        profiled = trial == self.args.change_trials  # the extra run, profiled and left out of the figures
        value = f"region-changed-{trial}"

        def set_region(document: dict[str, Any]) -> None:
            document["data"]["REGION"] = value

        app.repo.change("ConfigMap", CHANGED_OBJECT, set_region)
        commit = await asyncio.to_thread(app.repo.commit, f"{CHANGED_OBJECT}: REGION={value}")
        await self.idle(controller)
        before = await self.requests(controller)
        load = os.getloadavg()[0]
        if profiled:
            await self.profile(controller, "one-change", start=True)
        cpu_before = controller.cpu()
        started = time.perf_counter()
        await self.annotate(app.source_ref, self.stamp("change"))
        budget = min(self.args.timeout, 120.0)
        fetched = await self.sources.until(
            f"GitRepository {app.namespace}/{NAME} at {commit[:12]}",
            lambda: artifact_revision(self.sources.get(app.namespace, NAME)).endswith(commit),
            budget,
            key=(app.namespace, NAME),
            alive=controller.check_alive,
        )
        applied = await watch.until(
            f"ConfigMap {app.namespace}/{CHANGED_OBJECT} with REGION={value}",
            lambda: data_of(watch.get(app.namespace, CHANGED_OBJECT)).get("REGION") == value,
            budget,
            key=(app.namespace, CHANGED_OBJECT),
            alive=controller.check_alive,
        )
        ready = await self.syncs.until(
            f"Sync {app.namespace}/{NAME} Ready at {commit[:12]}",
            lambda: sync_ready_at(self.syncs.get(app.namespace, NAME), commit),
            budget,
            key=(app.namespace, NAME),
            last_seen=lambda: ready_condition(self.syncs.get(app.namespace, NAME)),
            alive=controller.check_alive,
        )
        cpu_after = controller.cpu()
        app.commit = commit
        if profiled:
            await self.profile(controller, "one-change", start=False)
            result.profile = str(self.args.profile / "one-change.txt")
            return
        await self.idle(controller)
        result.source.append(fetched - started)
        result.applied.append(applied - started)
        result.ready.append(ready - started)
        result.cpu.append(cpu_after[0] - cpu_before[0])
        result.git_cpu.append(cpu_after[1] - cpu_before[1])
        result.requests.append(dict((await self.requests(controller)) - before))
        result.loads.append(load)

    async def recovery(self, app: App, controller: ControllerRun) -> None:
        """Bad revision (never-ready Pods) -> health timeout -> rollback -> RolledBack, healthy at the old one."""
        self.results.recovery_timeout = self.args.recovery_timeout
        deployments = await Watch.start(self.api, "apps/v1", "Deployment", namespace=app.namespace)
        config_maps = await Watch.start(self.api, "v1", "ConfigMap", namespace=app.namespace)
        try:
            for trial in range(1, self.args.recovery_trials + 1):
                await self.recovery_once(app, controller, deployments, config_maps, trial)
        finally:
            await deployments.stop()
            await config_maps.stop()

    async def recovery_once(
        self, app: App, controller: ControllerRun, deployments: Watch, config_maps: Watch, trial: int
    ) -> None:
        good_label, bad_label = f"good-{trial - 1}", f"bad-{trial}"
        app.repo.put(NAME, recovery_objects(bad_label, never_ready=True))
        bad = await asyncio.to_thread(app.repo.commit, f"{bad_label}: Pods never become ready")
        await self.idle(controller)
        before = await self.requests(controller)
        load = os.getloadavg()[0]
        clock = time.time() - time.perf_counter()  # time.time() = time.perf_counter() + clock
        await self.annotate(app.source_ref, self.stamp("recovery"))
        budget = self.args.recovery_timeout + 120.0

        def never_ready(obj: KubeObject) -> bool:
            return NEVER_READY_LABEL in (obj["spec"]["template"]["metadata"].get("labels") or {})

        def all_templates(bad_template: bool) -> bool:
            items = deployments.in_namespace(app.namespace)
            return len(items) == RECOVERY_DEPLOYMENTS and all(never_ready(d) is bad_template for d in items)

        def healthy_at_old() -> bool:
            maps = [m for m in config_maps.in_namespace(app.namespace) if m["metadata"]["name"].startswith("conf-")]
            return (
                all_templates(False)
                and all(assess_health(d).state is HealthState.HEALTHY for d in deployments.in_namespace(app.namespace))
                and len(maps) == RECOVERY_CONFIG_MAPS
                and all(data_of(m).get("revision") == good_label for m in maps)
            )

        def rolled_back() -> bool:
            status = status_of(self.syncs.get(app.namespace, NAME))
            ready: dict[str, Any] = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {})
            return (
                ready.get("reason") == "RolledBack"
                and str((status.get("rollback") or {}).get("failedRevision", "")).endswith(bad)
                and str(status.get("lastAppliedRevision", "")).endswith(app.commit)
            )

        bad_applied = await deployments.until(
            f"every Deployment in {app.namespace} at {bad_label}",
            lambda: all_templates(True),
            budget,
            alive=controller.check_alive,
        )
        waits = [
            deployments.until(
                "a Deployment template put back",
                lambda: any(not never_ready(d) for d in deployments.in_namespace(app.namespace)),
                budget,
            ),
            deployments.until(f"{app.namespace} healthy at {good_label}", healthy_at_old, budget),
            self.syncs.until(
                f"Sync {app.namespace}/{NAME} RolledBack from {bad[:12]}",
                rolled_back,
                budget,
                key=(app.namespace, NAME),
                last_seen=lambda: ready_condition(self.syncs.get(app.namespace, NAME)),
                alive=controller.check_alive,
            ),
        ]
        tasks = [asyncio.create_task(wait) for wait in waits]
        try:
            written, healthy_at, reported_at = await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
        logged = controller.log_time("rolling back to", bad)
        if logged is None:
            raise BenchError(f"the controller's log has no rollback line for {bad[:12]}: {controller.tail()}")
        failed = logged - clock
        await self.idle(controller)
        result = RecoveryTrial(
            apply_to_failure=failed - bad_applied,
            failure_to_first_write=written - failed,
            failure_to_healthy=healthy_at - failed,
            failure_to_rolled_back=reported_at - failed,
            recover=max(healthy_at, reported_at) - failed,
            requests=dict((await self.requests(controller)) - before),
            load=load,
        )
        self.results.recovery.append(result)
        progress(
            f"  recovery #{trial}: health timeout {result.apply_to_failure:.2f}s after the bad Deployments were "
            f"applied; recovered {result.recover:.2f}s after it"
        )
        # Git moves on to a good revision, so the next trial starts from a healthy new revision.
        app.repo.put(NAME, recovery_objects(f"good-{trial}", never_ready=False))
        app.commit = await asyncio.to_thread(app.repo.commit, f"good-{trial}: healthy again")
        await self.annotate(app.source_ref, self.stamp("recovery-good"))
        await self.ready([app], controller, budget)

    async def interval_recheck(self, app: App) -> None:
        """Drift found by the periodic pass alone: `moor run` with the watch trigger switched off."""
        interval = self.args.recheck_interval
        progress(f"interval-only re-check: `moor run` without the watch trigger, interval {interval:g}s")
        controller = self.start_controller("no-watch-trigger", watch_trigger=False)
        try:
            await self.idle(controller, quiet=2.0, within=self.args.timeout)
            ref = app.sync_ref()
            patched = await self.api.merge_patch(ref, {"spec": {"interval": f"{interval:g}s"}})
            generation = patched["metadata"]["generation"]
            await self.syncs.until(
                f"Sync {app.namespace}/{NAME} to observe generation {generation}",
                lambda: status_of(self.syncs.get(app.namespace, NAME)).get("observedGeneration") == generation,
                120.0,
                alive=controller.check_alive,
            )
            result = DriftResult(app.namespace, app.objects, f"interval {interval:g}s only (watch trigger off)")
            self.results.drift.append(result)
            watch = await Watch.start(
                self.api, "v1", "ConfigMap", namespace=app.namespace, field_selector=f"metadata.name={DRIFT_OBJECT}"
            )
            target = ObjectRef("", "v1", "ConfigMap", app.namespace, DRIFT_OBJECT)
            rng = random.Random(7)
            try:
                for trial in range(self.args.interval_trials):
                    await asyncio.sleep(rng.uniform(0, interval))  # a random moment between two passes
                    load = os.getloadavg()[0]
                    latency = await self.drift_once(watch, target, f"interval-{trial}", interval * 2.5 + 30, controller)
                    result.latencies.append(latency)
                    result.loads.append(load)
            finally:
                await watch.stop()
            progress(
                f"  interval {interval:g}s: p50 {percentile(result.latencies, 50):.2f}s "
                f"p95 {percentile(result.latencies, 95):.2f}s over {len(result.latencies)} trials"
            )
        finally:
            await asyncio.to_thread(controller.stop)

    # -- 4: memory --

    async def memory(self) -> None:
        for size in self.args.rss_sizes:
            shards = {}
            shard = self.args.objects_per_sync
            for start in range(0, size, shard):
                shards[f"part-{start // shard}"] = [config_map(i) for i in range(start, min(size, start + shard))]
            app = self.new_app(f"rss-{size}", shards)
            progress(f"memory with {size} ConfigMaps in {len(shards)} Syncs; load {os.getloadavg()[0]:.2f}")
            await self.create(app)
            for phase in ("initial sync, then a no-op reconcile", "restarted onto them, then a no-op reconcile"):
                controller = self.start_controller(f"rss-{size}-{len(self.results.memory)}")
                try:
                    load = os.getloadavg()[0]
                    started = time.perf_counter()
                    await self.ready([app], controller, self.args.timeout)
                    stamp = self.stamp("rss")
                    for name in app.syncs:
                        await self.annotate(app.sync_ref(name), stamp)
                    for name in app.syncs:
                        await self.handled(app.namespace, name, stamp, controller, self.args.timeout)
                    seconds = time.perf_counter() - started
                    await self.idle(controller, quiet=1.0)
                    await self.read_memory(controller, size, len(shards), phase, seconds, load)
                finally:
                    await asyncio.to_thread(controller.stop)
            if size != self.args.rss_sizes[-1]:
                await self.clean([app.namespace])

    async def read_memory(
        self,
        controller: ControllerRun,
        objects: int,
        syncs: int,
        phase: str,
        seconds: float = 0.0,
        load: float | None = None,
    ) -> None:
        memory = controller.memory()
        cache = await asyncio.to_thread(controller.cache_objects)
        result = MemoryResult(
            objects, syncs, phase, memory["VmHWM"], memory["VmRSS"], cache, seconds, load or os.getloadavg()[0]
        )
        self.results.memory.append(result)
        progress(
            f"  {objects} objects ({phase}): VmHWM {result.hwm:.0f} MiB, VmRSS {result.rss:.0f} MiB, "
            f"{cache} objects in the live cache"
        )

    async def clean(self, namespaces: Sequence[str]) -> None:
        """Deletes namespaces (their Syncs freed of Moor's finalizer: no controller runs now); waits until gone."""
        progress(f"deleting {', '.join(namespaces)}")
        for namespace in namespaces:
            for sync in self.syncs.in_namespace(namespace):
                with contextlib.suppress(ApiError):
                    await self.api.merge_patch(ObjectRef.of(sync), {"metadata": {"finalizers": None}})
            await self.api.delete(ObjectRef("", "v1", "Namespace", "", namespace))
        deadline = time.monotonic() + self.args.timeout
        for namespace in namespaces:
            while await self.api.get(ObjectRef("", "v1", "Namespace", "", namespace)) is not None:
                if time.monotonic() > deadline:
                    raise BenchError(f"namespace {namespace} still exists {self.args.timeout:.0f}s after its deletion")
                await asyncio.sleep(1.0)


# -- output --------------------------------------------------------------------------------------------------


def summary_of(values: Sequence[float], digits: int = 3) -> str:
    if not values:
        return "-"
    return f"{statistics.median(values):.{digits}f} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def tables(results: Results, args: argparse.Namespace) -> str:
    out: list[str] = []
    if results.noop:
        out += ["", "1. No-op reconcile (`moor.dev/reconcile` on the Sync until status.lastHandledReconcileAt)"]
        header = (
            f"{'objects':>7} {'runs':>4}  {'wall s p50 (min-max)':<22} {'CPU s p50 (min-max)':<20} "
            f"{'requests per reconcile (median)':<34} {'max':<18} {'objects written':>15} {'load':>5}"
        )
        out += [header, "-" * len(header)]
        for noop in results.noop:
            maxima = {verb: max(run.get(verb, 0) for run in noop.requests) for run in noop.requests for verb in run}
            out.append(
                f"{noop.objects:>7} {len(noop.wall):>4}  {summary_of(noop.wall):<22} {summary_of(noop.cpu, 2):<20} "
                f"{verbs_text(median_counts(noop.requests)):<34} {verbs_text(maxima):<18} "
                f"{noop.objects_written:>15} {statistics.median(noop.loads):>5.2f}"
            )
        out.append(
            f"The idle controller between reconciles: {results.idle_cpu * 1000:.1f} ms CPU per second. CPU is the "
            "controller's user+system time from the annotation to the status seen by the benchmark's watch."
        )
    if results.drift:
        out += ["", "2. Drift latency (direct PATCH of a managed ConfigMap's data, until the watch shows it put back)"]
        header = (
            f"{'Sync':<12} {'objects':>7}  {'trigger':<38} {'trials':>6} {'p50 s':>7} {'p95 s':>7} {'max s':>7} "
            f"{'CPU s p50':>9}  {'requests per correction (median)':<40} {'load':>5}"
        )
        out += [header, "-" * len(header)]
        for drift in results.drift:
            cpu = f"{statistics.median(drift.cpu):.2f}" if drift.cpu else "-"
            requests = verbs_text(median_counts(drift.requests)) if drift.requests else "-"
            out.append(
                f"{drift.label:<12} {drift.objects:>7}  {drift.trigger:<38} {len(drift.latencies):>6} "
                f"{percentile(drift.latencies, 50):>7.3f} {percentile(drift.latencies, 95):>7.3f} "
                f"{max(drift.latencies):>7.3f} {cpu:>9}  {requests:<40} {statistics.median(drift.loads):>5.2f}"
            )
        for drift in [d for d in results.drift if d.trigger.startswith("watch")]:
            pass_time = percentile(drift.latencies, 50)
            mean, p50, p95 = interval_model(60.0, pass_time)
            out.append(
                f"{drift.label:<12} {drift.objects:>7}  {'interval 1m only (computed)':<38} {'':>6} {p50:>7.1f} "
                f"{p95:>7.1f} {'':>7} {'':>9}  mean {mean:.1f}s: to the next pass (1m +-10%), + {pass_time:.2f}s"
            )
    if results.change:
        out += ["", "3. One changed object in a new commit (from the GitRepository's reconcile request)"]
        header = (
            f"{'objects':>7} {'trials':>6}  {'source fetched s':<20} {'object applied s':<20} {'Sync Ready s':<20} "
            f"{'CPU s (+git)':<14} {'requests (median)':<60} {'load':>5}"
        )
        out += [header, "-" * len(header)]
        for change in results.change:
            cpu = f"{statistics.median(change.cpu):.2f} (+{statistics.median(change.git_cpu):.2f})"
            out.append(
                f"{change.objects:>7} {len(change.applied):>6}  {summary_of(change.source, 2):<20} "
                f"{summary_of(change.applied, 2):<20} {summary_of(change.ready, 2):<20} {cpu:<14} "
                f"{verbs_text(median_counts(change.requests)):<60} {statistics.median(change.loads):>5.2f}"
            )
        out.append("Times are medians (min-max) from the annotation of the GitRepository.")
    if results.memory:
        out += ["", "4. Memory of `moor run` (from /proc/PID/status)"]
        header = (
            f"{'objects':>7} {'Syncs':>5}  {'what it did':<46} {'VmHWM MiB':>9} {'VmRSS MiB':>9} "
            f"{'cached':>7} {'Ready+no-op s':>13} {'load':>5}"
        )
        out += [header, "-" * len(header)]
        for memory in results.memory:
            seconds = f"{memory.seconds:.1f}" if memory.seconds else ""
            out.append(
                f"{memory.objects:>7} {memory.syncs:>5}  {memory.phase:<46} {memory.hwm:>9.0f} {memory.rss:>9.0f} "
                f"{memory.cache_objects:>7} {seconds:>13} {memory.load:>5.2f}"
            )
    if results.recovery:
        out += [
            "",
            f"5. Time to recover: {RECOVERY_DEPLOYMENTS} Deployments, {RECOVERY_SERVICES} Services, "
            f"{RECOVERY_CONFIG_MAPS} ConfigMaps; rollback.onFailure, timeout {results.recovery_timeout:g}s",
        ]
        header = (
            f"{'trial':>5}  {'applied->timeout s':>18} {'->1st write back s':>18} {'->all healthy s':>15} "
            f"{'->RolledBack s':>14} {'recover s':>9}  {'requests (bad revision to RolledBack)':<60} {'load':>5}"
        )
        out += [header, "-" * len(header)]
        for number, trial in enumerate(results.recovery, 1):
            out.append(
                f"{number:>5}  {trial.apply_to_failure:>18.2f} {trial.failure_to_first_write:>18.2f} "
                f"{trial.failure_to_healthy:>15.2f} {trial.failure_to_rolled_back:>14.2f} {trial.recover:>9.2f}  "
                f"{verbs_text(trial.requests):<60} {trial.load:>5.2f}"
            )
        out.append(
            "From the health timeout (the controller's log line 'revision ... failed (HealthCheckFailed); rolling back"
            " to ...', millisecond time) to the later of: every Deployment back at the old Pod template and healthy"
            " and every ConfigMap at the old data (the benchmark's watch), and the Sync's status Ready=False"
            " RolledBack naming the bad revision (the benchmark's watch)."
        )
    out += ["", "Summary", "-------"]
    out += summary(results, args)
    return "\n".join(out)


def summary(results: Results, args: argparse.Namespace) -> list[str]:
    lines = []

    def verdict(ok: bool) -> str:
        return "met" if ok else "MISSED"

    for noop in results.noop:
        counts = median_counts(noop.requests)
        object_requests = sum(v for verb, v in counts.items() if verb not in ("get", "patch"))
        fixed = f"get={counts.get('get', 0):g} (the Sync), patch={counts.get('patch', 0):g} (its status)"
        lines.append(
            f"- no-op reconcile of {noop.objects}: CPU p50 {statistics.median(noop.cpu):.2f}s, wall p50 "
            f"{statistics.median(noop.wall):.2f}s; requests {fixed}, other {object_requests:g}; "
            f"managed objects written {noop.objects_written}"
            + (f" -> CPU target (< 0.2 s) {verdict(statistics.median(noop.cpu) < 0.2)}" if noop.objects >= 5000 else "")
        )
    for drift in results.drift:
        p95 = percentile(drift.latencies, 95)
        target = f" -> target (p95 < 1 s) {verdict(p95 < 1.0)}" if drift.trigger.startswith("watch") else ""
        lines.append(
            f"- drift, {drift.label} ({drift.trigger}): p50 {percentile(drift.latencies, 50):.2f}s, p95 {p95:.2f}s"
            + target
        )
    for change in results.change:
        applied = statistics.median(change.applied)
        lines.append(
            f"- one changed object among {change.objects}: applied after {applied:.2f}s (median; max "
            f"{max(change.applied):.2f}s), Ready after {statistics.median(change.ready):.2f}s -> target (< 1 s) "
            f"{verdict(max(change.applied) < 1.0)}"
        )
    for memory in results.memory:
        target = f" -> target (< 250 MB) {verdict(memory.hwm * 1.048576 < 250)}" if memory.objects >= 20000 else ""
        lines.append(f"- peak RSS, {memory.objects} objects ({memory.phase}): {memory.hwm:.0f} MiB" + target)
    if results.recovery:
        recover = [trial.recover for trial in results.recovery]
        lines.append(
            f"- time to recover: median {statistics.median(recover):.2f}s (max {max(recover):.2f}s) from the health "
            "timeout to RolledBack with every object healthy at the old revision"
        )
    return lines


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=10, check=False).stdout.strip()
    except OSError:
        return f"load average {os.getloadavg()}"


def other_benchmarks() -> list[str]:
    """Other benchmark scripts and control planes on this machine (they share its two cores)."""
    found = []
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        listing = subprocess.run(["pgrep", "-af", r"bench/.*\.py|kube-apiserver"], capture_output=True, text=True)
        for line in listing.stdout.splitlines():
            pid, _, command = line.partition(" ")
            if int(pid) not in (os.getpid(), os.getppid()):
                found.append(command[:120])
    return found


# -- main ------------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    def numbers(text: str) -> list[int]:
        try:
            values = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers") from None
        if values and min(values) < 10:
            raise argparse.ArgumentTypeError(f"{text!r}: sizes start at 10")
        return values

    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", type=numbers, default=[1000, 5000], help="objects per no-op Sync (1000,5000)")
    parser.add_argument(
        "--rss-sizes", type=numbers, default=[5000, 20000], help="ConfigMaps for the memory runs (5000,20000; '' skips)"
    )
    parser.add_argument(
        "--objects-per-sync",
        type=int,
        default=5000,
        help="ConfigMaps per Sync in the memory runs (5000; one render holds at most 20,000 documents)",
    )
    parser.add_argument("--trials", type=int, default=50, help="drift trials per Sync (50)")
    parser.add_argument("--reconciles", type=int, default=10, help="no-op reconciles per size (10)")
    parser.add_argument("--change-trials", type=int, default=5, help="commits changing one object (5)")
    parser.add_argument("--recovery-trials", type=int, default=3, help="bad revisions rolled back (3; 0 skips)")
    parser.add_argument("--recovery-timeout", type=int, default=10, help="the recovery Sync's timeout, seconds (10)")
    parser.add_argument("--drift-small", type=int, default=50, help="objects of the small drift Sync (50)")
    parser.add_argument(
        "--interval-trials", type=int, default=20, help="drift trials with the watch trigger off (20; 0 skips)"
    )
    parser.add_argument("--recheck-interval", type=float, default=10.0, help="their Sync's interval, seconds (10)")
    parser.add_argument("--timeout", type=float, default=600.0, help="bound of the long waits, seconds (600)")
    parser.add_argument(
        "--profile",
        type=Path,
        help="pyinstrument profiles of one extra no-op reconcile per size and one extra change, into this directory "
        "(pyinstrument must be importable, e.g. PYTHONPATH=DIR after `pip install --target DIR pyinstrument`)",
    )
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory (logs, repositories)")
    args = parser.parse_args(argv)
    if args.trials < 1 or args.reconciles < 1 or args.change_trials < 1 or not args.sizes:
        parser.error("--trials, --reconciles and --change-trials must be at least 1, and --sizes not empty")
    args.sizes = sorted(args.sizes)
    args.rss_sizes = sorted(args.rss_sizes)
    return args


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)  # so `finally` stops the controller and the cluster on SIGTERM too
    root = Path(tempfile.mkdtemp(prefix="moor-steady-"))
    results = Results(
        machine=machine(),
        version=moor_version(),
        command=" ".join([".venv/bin/python", "bench/steady_state.py", *(argv if argv is not None else sys.argv[1:])]),
        uptime_start=uptime(),
        others=other_benchmarks(),
    )
    progress(f"machine: {results.machine}\nuptime: {results.uptime_start}")
    if results.others:
        progress("note: also running on this machine (they share its cores):\n  " + "\n  ".join(results.others))
    deployments = sum(size // 4 for size in args.sizes) + args.drift_small // 4 + 2 * RECOVERY_DEPLOYMENTS
    nodes = max(2, math.ceil(deployments / PODS_PER_NODE))
    cluster_dir = root / "cluster"
    progress(f"scratch directory {root}; starting a control plane with {nodes} fake nodes")
    bench: Bench | None = None
    status = 0
    try:
        cluster = start_cluster(cluster_dir, nodes=nodes)
        install_moor(cluster)
        bench = Bench(args, root, cluster, results)
        asyncio.run(bench.run())
    except BenchError as error:
        progress(f"benchmark failed: {error}")
        status = 1
    except KeyboardInterrupt:
        progress("interrupted")
        status = 130
    except Exception:
        progress(f"benchmark failed:\n{traceback.format_exc()}")
        status = 1
    finally:
        if bench is not None:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # stopping must not be interrupted
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            bench.stop_controllers()
        tear_down(cluster_dir, root, keep=bool(status or args.keep), logs=f"controller logs: {root}/controller-*")
    results.uptime_end = uptime()
    print(f"\nSteady state, drift and recovery; {results.version}; {results.machine}")
    print(f"uptime at start: {results.uptime_start}\nuptime at end:   {results.uptime_end}")
    print(tables(results, args))
    if args.json:
        args.json.write_text(json.dumps(asdict(results), indent=1))
    return status


if __name__ == "__main__":
    sys.exit(main())
