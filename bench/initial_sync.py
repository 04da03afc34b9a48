"""Initial sync: Moor versus `kubectl apply --server-side`, from Git into an empty namespace.

Starts its own local control plane (`moor.devcluster`), installs Moor's CRDs, and for each size N
commits a mix of ConfigMaps, Deployments, Services, one CRD and custom resources of it to a local
bare Git repository (file://). Then, each time into a fresh empty namespace, it measures:

- `moor`: the controller runs in this process; the clock runs from creating the GitRepository and
  the Sync until the Sync is Ready at that commit. With `wait: false` (apply speed; then a no-op
  reconcile of the same Sync through the `moor.dev/reconcile` annotation), and once with `wait: true`.
- `kubectl`: `kubectl apply --server-side --field-manager=bench` of exactly the same objects: the
  CRD first, `kubectl wait` until it is Established, then everything else; and once more followed by
  `kubectl wait --for=condition=Available deployment --all` (the counterpart of `wait: true`).

Between measurements the namespace and the CRD are deleted and waited for, so every run starts from
the same cluster. It prints a table of wall times and API requests by verb; it is not a test.

Run from the repository root:  .venv/bin/python bench/initial_sync.py [--sizes 100,1000,5000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import itertools
import json
import logging
import math
import os
import platform
import pstats
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import yaml

from moor import binaries
from moor.cluster.api import KubeApi
from moor.cluster.client import KubeClient
from moor.cluster.config import Credentials, load_kubeconfig
from moor.controller.runtime import Controller, ControllerOptions
from moor.devcluster import ClusterInfo, start_cluster, stop_cluster
from moor.errors import MoorError
from moor.objects import RECONCILE_ANNOTATION, ObjectRef

T = TypeVar("T")

CRD_GROUP = "bench.moor.dev"
CRD_NAME = f"widgets.{CRD_GROUP}"
FIELD_MANAGER = "bench"
OBJECTS_PER_FILE = 10
PODS_PER_NODE = 100  # the fake nodes allow 110 (moor.devcluster.nodes)
NAME = "bench"  # of the GitRepository and the Sync in each Moor namespace

CRD_REF = ObjectRef("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "", CRD_NAME)


class BenchError(Exception):
    """A step of the benchmark failed or timed out; the message says which and what was last seen."""


# -- the objects ---------------------------------------------------------------------------------


def kind_counts(size: int) -> dict[str, int]:
    """40% ConfigMaps, 25% Deployments, 25% Services, 10% custom resources (one of them the CRD)."""
    if size < 10:
        raise BenchError(f"size {size} is too small: the mix needs at least 10 objects")
    config_maps, deployments = round(size * 0.40), round(size * 0.25)
    widgets = round(size * 0.10) - 1
    services = size - 1 - config_maps - deployments - widgets
    return {
        "CustomResourceDefinition": 1,
        "ConfigMap": config_maps,
        "Deployment": deployments,
        "Service": services,
        "Widget": widgets,
    }


def crd() -> dict[str, Any]:
    spec_schema = {
        "type": "object",
        "required": ["size"],
        "properties": {
            "size": {"type": "integer", "minimum": 1, "maximum": 1000},
            "color": {"type": "string", "enum": ["red", "green", "blue"]},
            "owner": {"type": "string", "maxLength": 63},
            "tags": {"type": "array", "maxItems": 16, "items": {"type": "string", "maxLength": 63}},
            "limits": {
                "type": "object",
                "properties": {"cpu": {"type": "string"}, "memory": {"type": "string"}},
            },
        },
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": CRD_NAME},
        "spec": {
            "group": CRD_GROUP,
            "names": {"kind": "Widget", "listKind": "WidgetList", "plural": "widgets", "singular": "widget"},
            "scope": "Namespaced",
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": spec_schema,
                                "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                            },
                        }
                    },
                }
            ],
        },
    }


def config_map(index: int) -> dict[str, Any]:
    properties = "\n".join(f"feature.{n}.enabled={'true' if (index + n) % 3 else 'false'}" for n in range(8))
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"settings-{index:05d}", "labels": {"app": f"app-{index:05d}", "tier": "config"}},
        "data": {
            "LOG_LEVEL": "info",
            "REGION": f"region-{index % 4}",
            "CACHE_SIZE": str(64 * (1 + index % 8)),
            "app.properties": properties + "\n",
        },
    }


def deployment(index: int, replicas: int) -> dict[str, Any]:
    name = f"web-{index:05d}"
    labels = {"app": name, "tier": "web"}
    container = {
        "name": "web",
        "image": "nginx:1.27",
        "ports": [{"name": "http", "containerPort": 8080}],
        "env": [{"name": "MODE", "value": "production"}, {"name": "INDEX", "value": str(index)}],
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"cpu": "100m", "memory": "128Mi"}},
        "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 10},
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}},
        },
    }


def service(index: int) -> dict[str, Any]:
    name = f"web-{index:05d}"
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "labels": {"app": name, "tier": "web"}},
        "spec": {
            "type": "ClusterIP",
            "selector": {"app": name},
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def widget(index: int) -> dict[str, Any]:
    return {
        "apiVersion": f"{CRD_GROUP}/v1",
        "kind": "Widget",
        "metadata": {"name": f"widget-{index:05d}", "labels": {"app": f"app-{index:05d}"}},
        "spec": {
            "size": 1 + index % 1000,
            "color": ("red", "green", "blue")[index % 3],
            "owner": f"team-{index % 7}",
            "tags": ["bench", f"shard-{index % 10}"],
            "limits": {"cpu": "500m", "memory": "256Mi"},
        },
    }


@dataclass(frozen=True)
class Fixture:
    """One size's objects: committed to a bare repository, and rendered for kubectl (CRD apart)."""

    size: int
    counts: dict[str, int]
    url: str
    commit: str
    crd_file: Path
    objects_file: Path
    files: int
    megabytes: float


def git_env() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("GIT_")}
    env.update(
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_TERMINAL_PROMPT="0",
        GIT_AUTHOR_NAME="Moor Bench",
        GIT_AUTHOR_EMAIL="bench@moor.invalid",
        GIT_COMMITTER_NAME="Moor Bench",
        GIT_COMMITTER_EMAIL="bench@moor.invalid",
        LC_ALL="C",
    )
    return env


def git(*args: str | Path, cwd: Path | None = None) -> str:
    argv = ["git", *(str(arg) for arg in args)]
    result = subprocess.run(argv, cwd=cwd, env=git_env(), capture_output=True, text=True, timeout=300, check=False)
    if result.returncode != 0:
        raise BenchError(f"`{' '.join(argv)}` failed: {result.stderr.strip()}")
    return result.stdout.strip()


def make_fixture(root: Path, size: int, replicas: int) -> Fixture:
    """Writes the objects in files of ten documents per kind directory, commits and pushes them."""
    counts = kind_counts(size)
    groups: dict[str, list[dict[str, Any]]] = {
        "crds": [crd()],
        "configmaps": [config_map(i) for i in range(counts["ConfigMap"])],
        "deployments": [deployment(i, replicas) for i in range(counts["Deployment"])],
        "services": [service(i) for i in range(counts["Service"])],
        "widgets": [widget(i) for i in range(counts["Widget"])],
    }
    work, bare, rendered = root / f"src-{size}", root / f"repo-{size}.git", root / f"rendered-{size}"
    rendered.mkdir(parents=True)
    texts: list[str] = []
    crd_text = ""
    for directory, documents in groups.items():
        (work / directory).mkdir(parents=True)
        for start in range(0, len(documents), OBJECTS_PER_FILE):
            chunk = documents[start : start + OBJECTS_PER_FILE]
            text = yaml.dump_all(chunk, Dumper=yaml.CSafeDumper, sort_keys=False)
            (work / directory / f"{directory}-{start // OBJECTS_PER_FILE:04d}.yaml").write_text(text)
            if directory == "crds":
                crd_text = text
            else:
                texts.append(text)
    git("init", "--quiet", "--initial-branch=main", work)
    git("add", "--all", cwd=work)
    git("commit", "--quiet", "--no-verify", "-m", f"{size} objects", cwd=work)
    git("init", "--quiet", "--bare", "--initial-branch=main", bare)
    git("push", "--quiet", bare, "main", cwd=work)
    crd_file, objects_file = rendered / "crd.yaml", rendered / "objects.yaml"
    crd_file.write_text(crd_text)
    objects_file.write_text("---\n".join(texts))  # the very same documents as in Git
    return Fixture(
        size=size,
        counts=counts,
        url=bare.resolve().as_uri(),
        commit=git("rev-parse", "HEAD", cwd=work),
        crd_file=crd_file,
        objects_file=objects_file,
        files=len(texts) + 1,
        megabytes=(len(crd_text) + sum(len(text) for text in texts)) / 1e6,
    )


# -- measurements ----------------------------------------------------------------------------------


@dataclass
class Measurement:
    size: int
    tool: str
    repeat: int
    wall: float
    requests: dict[str, int]
    targets: dict[str, int] = field(default_factory=dict)
    """Moor only: its requests by what they are for (objects, list/watch, moor resources, events, discovery)."""
    errors: int = 0
    cpu: dict[str, float] = field(default_factory=dict)
    """CPU seconds during the measurement: `client` (Moor or kubectl) and each control plane process."""
    load: float = 0.0
    notes: list[str] = field(default_factory=list)
    timeline: dict[str, list[float]] = field(default_factory=dict)
    """Moor only: seconds from the start to the first and last request of each verb."""

    @property
    def total(self) -> int:
        return sum(self.requests.values())


class Stopwatch:
    """Wall time and CPU time of this process, its children and the control plane's processes."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.load = os.getloadavg()[0]
        self._cpu = self._sample()
        self.started = time.perf_counter()

    def _sample(self) -> dict[str, float]:
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = {"self": time.process_time(), "children": children.ru_utime + children.ru_stime}
        ticks = os.sysconf("SC_CLK_TCK")
        for name, pid in self.pids.items():
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
                cpu[name] = (int(fields[11]) + int(fields[12])) / ticks
        return cpu

    def stop(self) -> tuple[float, dict[str, float]]:
        wall = time.perf_counter() - self.started
        now = self._sample()
        delta = {name: now[name] - self._cpu.get(name, 0.0) for name in now}
        cpu = {"client": delta.pop("self") + delta.pop("children")}
        cpu.update({name: round(value, 2) for name, value in delta.items()})
        cpu["client"] = round(cpu["client"], 2)
        return wall, cpu


class ControllerLog(logging.Handler):
    """Notices the controller's start and keeps its warnings, so a slow or failing run can be explained."""

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.started = asyncio.Event()
        self.warnings: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "controller started" in message:
            self.started.set()
        if record.levelno >= logging.WARNING:
            self.warnings.append(message)


@dataclass
class SentRequest:
    """One request of Moor's as the benchmark saw it go out and come back."""

    sent: float
    """time.perf_counter() when it was sent."""
    verb: str
    method: str
    detail: str
    """The path, and for Moor's own resources the fields it changed."""
    took: float = float("nan")
    """Seconds until it was answered (NaN if it never was)."""


class RequestTargets:
    """Wraps one KubeClient's `request` to sort Moor's requests by what they are for.

    The counts by verb come from `KubeClient.requests` itself; this only adds the path's meaning."""

    def __init__(self, client: KubeClient) -> None:
        self.counts: Counter[str] = Counter()
        self.object_writes = 0
        """Writes (apply, patch, update, create, delete) to managed objects, not to Moor's own resources or Events."""
        self.sent: list[SentRequest] = []
        """Every request in the order it was sent: the timeline of a pass."""
        original = client.request

        async def request(verb: str, method: str, path: str, **kwargs: Any) -> Any:
            target = self.target(verb, path)
            self.counts[target] += 1
            self.object_writes += target == "objects" and verb in WRITE_VERBS
            detail = path
            body = kwargs.get("body")
            if "/apis/moor.dev/" in path and isinstance(body, dict):  # which fields Moor changes in its own objects
                detail += " " + json.dumps(
                    {key: sorted(value) for key, value in body.items() if isinstance(value, dict)}
                )
            sent = SentRequest(time.perf_counter(), verb, method, detail)
            self.sent.append(sent)
            try:
                return await original(verb, method, path, **kwargs)
            finally:
                sent.took = time.perf_counter() - sent.sent

        client.request = request  # type: ignore[method-assign]

    def write_trace(self, path: Path, since: float) -> None:
        """Every request sent after `since`, one a line: seconds from `since` to when it was sent, seconds it
        took to be answered, verb, method, path."""
        lines = [
            f"{request.sent - since:9.3f} {request.took:7.3f} {request.verb:<9} {request.method:<6} {request.detail}"
            for request in self.sent
            if request.sent >= since
        ]
        path.write_text("\n".join(lines) + "\n")

    def timeline(self, since: float) -> dict[str, list[float]]:
        """Seconds from `since` to the first and the last request of each verb sent after it."""
        spans: dict[str, list[float]] = {}
        for request in self.sent:
            if request.sent >= since:
                offset = round(request.sent - since, 2)
                spans.setdefault(request.verb, [offset, offset])[1] = offset
        return spans

    @staticmethod
    def target(verb: str, path: str) -> str:
        if verb == "discovery":
            return "discovery"
        if "/apis/moor.dev/" in path:
            return "moor resources"
        if re.search(r"/events(/|$)", path):
            return "events"
        if verb in ("list", "watch"):
            return "list/watch"
        return "objects"


WRITE_VERBS = frozenset({"apply", "patch", "update", "create", "delete"})


def writes(requests: dict[str, int]) -> int:
    return sum(count for verb, count in requests.items() if verb in WRITE_VERBS)


# -- kubectl's requests, from its -v=6 log -------------------------------------------------------------

RESPONSE = re.compile(r'"Response" verb="(?P<method>[A-Z]+)" url="(?P<url>[^"]+)" status="(?P<status>\d{3})')
RESPONSE_OLD = re.compile(r"\] (?P<method>GET|POST|PUT|PATCH|DELETE|HEAD) (?P<url>https?://\S+) (?P<status>\d{3})")
DISCOVERY_PATH = re.compile(r"^/(api|apis|version|openapi(/.*)?|api/[^/]+|apis/[^/]+|apis/[^/]+/[^/]+)/?$")
THROTTLED = re.compile(r"client-side throttling")
DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s)\b")


def kubectl_verb(method: str, url: str) -> str:
    """The Kubernetes verb of one request kubectl logged, in the same words Moor's counter uses."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    if DISCOVERY_PATH.match(parts.path):
        return "discovery"
    if method == "PATCH":
        return "dry-run" if "dryRun" in query else "apply"  # every PATCH of `apply --server-side` is SSA
    if method == "GET":
        if query.get("watch") == ["true"]:
            return "watch"
        segments = parts.path.strip("/").split("/")
        rest = segments[2:] if segments[0] == "api" else segments[3:]
        if len(rest) >= 3 and rest[0] == "namespaces":
            rest = rest[2:]
        return "list" if len(rest) == 1 else "get"
    return {"POST": "create", "PUT": "update", "DELETE": "delete"}.get(method, method.lower())


@dataclass
class KubectlLog:
    requests: Counter[str] = field(default_factory=Counter)
    errors: int = 0
    throttled: float = 0.0

    def read(self, log: str) -> None:
        for line in log.splitlines():
            match = RESPONSE.search(line) or RESPONSE_OLD.search(line)
            if match:
                self.requests[kubectl_verb(match["method"], match["url"])] += 1
                self.errors += int(match["status"]) >= 400
            elif THROTTLED.search(line):
                duration = DURATION.search(line)
                if duration:
                    self.throttled += float(duration[1]) / (1000 if duration[2] == "ms" else 1)


# -- the benchmark -----------------------------------------------------------------------------------


def sync_ready_at(sync: dict[str, Any] | None, commit: str) -> bool:
    if not sync:
        return False
    status = sync.get("status") or {}
    if status.get("observedGeneration") != sync["metadata"].get("generation"):
        return False
    ready: dict[str, Any] = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {})
    return ready.get("status") == "True" and str(status.get("lastAppliedRevision", "")).endswith(f":{commit}")


def ready_condition(sync: dict[str, Any] | None) -> str:
    if not sync:
        return "the Sync is not in the controller's cache yet"
    ready = next((c for c in (sync.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"), None)
    if ready is None:
        return "no Ready condition yet"
    return f"Ready={ready.get('status')} {ready.get('reason')}: {str(ready.get('message'))[:300]}"


class Profile:
    """pyinstrument when it is importable, else cProfile; writes a text report (and HTML) to `path`."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._profiler: Any = None
        if path is None:
            return
        try:
            from pyinstrument import Profiler  # type: ignore[import-not-found]
        except ImportError:
            self._profiler = cProfile.Profile()
        else:
            self._profiler = Profiler(interval=0.001, async_mode="disabled")  # every task, not just this one

    def start(self) -> None:
        if isinstance(self._profiler, cProfile.Profile):
            self._profiler.enable()
        elif self._profiler is not None:
            self._profiler.start()

    def stop(self) -> None:
        if self._profiler is None or self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(self._profiler, cProfile.Profile):
            self._profiler.disable()
            with self.path.with_suffix(".txt").open("w") as out:
                pstats.Stats(self._profiler, stream=out).sort_stats("cumulative").print_stats(80)
                pstats.Stats(self._profiler, stream=out).sort_stats("tottime").print_stats(40)
        else:
            self._profiler.stop()
            self.path.with_suffix(".txt").write_text(self._profiler.output_text(unicode=False, color=False))
            self.path.with_suffix(".html").write_text(self._profiler.output_html())
        self._profiler = None


class Bench:
    def __init__(self, args: argparse.Namespace, root: Path, cluster: ClusterInfo, results: list[Measurement]) -> None:
        self.args = args
        self.root = root
        self.cluster = cluster
        self.results = results
        self.credentials: Credentials = load_kubeconfig(cluster.kubeconfig)
        self.kubectl = binaries.locate("kubectl")
        self._names = itertools.count(1)
        self._api: KubeApi | None = None

    @property
    def api(self) -> KubeApi:
        """The benchmark's own client (namespaces, GitRepository and Sync, clean-up); never counted."""
        assert self._api is not None
        return self._api

    async def run(self) -> None:
        async with KubeClient(self.credentials) as client:
            self._api = KubeApi(client)
            for size in self.args.sizes:
                await self.run_size(size)

    async def run_size(self, size: int) -> None:
        fixture = await asyncio.to_thread(make_fixture, self.root, size, self.args.replicas)
        counts = ", ".join(f"{count} {kind}" for kind, count in fixture.counts.items())
        progress(f"N={size}: {counts}; {fixture.files} files, {fixture.megabytes:.1f} MB, commit {fixture.commit[:12]}")
        for repeat in range(1, self.args.repeat + 1):
            steps: list[Callable[[], Awaitable[None]]] = [partial(self.kubectl_run, fixture, repeat, wait=False)]
            steps += [
                partial(self.moor_run, fixture, repeat, wait=False, concurrency=concurrency)
                for concurrency in self.args.apply_concurrency
            ]
            if repeat % 2 == 0:  # alternate who goes first, so a drift in the machine's load favours neither
                steps.reverse()
            if self.args.wait_true:
                first = self.args.apply_concurrency[0]
                steps.append(partial(self.moor_run, fixture, repeat, wait=True, concurrency=first))
                steps.append(partial(self.kubectl_run, fixture, repeat, wait=True))
            for step in steps:
                await step()

    def record(self, measurement: Measurement) -> None:
        self.results.append(measurement)
        verbs = " ".join(f"{verb}={count}" for verb, count in sorted(measurement.requests.items()))
        notes = f"  [{'; '.join(measurement.notes)}]" if measurement.notes else ""
        progress(
            f"  N={measurement.size} #{measurement.repeat} {measurement.tool}: {measurement.wall:.2f}s, "
            f"{measurement.total} requests ({verbs}), load {measurement.load:.2f}{notes}"
        )

    # -- Moor --

    async def moor_run(self, fixture: Fixture, repeat: int, *, wait: bool, concurrency: int) -> None:
        namespace = await self.fresh_namespace(fixture.size, "moor")
        tool = f"moor wait:{'true' if wait else 'false'} c={concurrency}"
        client = KubeClient(self.credentials, max_connections=self.args.max_connections)
        targets = RequestTargets(client)
        options = ControllerOptions(artifact_dir=self.root / f"artifacts-{namespace}", apply_concurrency=concurrency)
        controller = Controller(KubeApi(client), options)
        controller_log = ControllerLog()
        logging.getLogger("moor").addHandler(controller_log)
        stop = asyncio.Event()
        task = asyncio.create_task(controller.run(stop), name="moor controller")
        profile_path = None
        if self.args.profile is not None:
            profile_path = self.args.profile / f"moor-N{fixture.size}-wait-{str(wait).lower()}-c{concurrency}-{repeat}"
        try:
            await self.until("the controller to start", lambda: controller_log.started.is_set(), 60, task)

            def sync() -> dict[str, Any] | None:
                return controller.lookup("Sync", namespace, NAME)

            before, targets_before = Counter(client.requests), Counter(targets.counts)
            failures: set[str] = set()

            def ready() -> bool:
                current = sync()
                condition = ready_condition(current)
                if condition.startswith("Ready=False"):
                    failures.add(condition.split(":")[0].removeprefix("Ready=False "))
                return sync_ready_at(current, fixture.commit)

            profile = Profile(profile_path)
            watch = Stopwatch(self.cluster.pids)
            profile.start()
            await self.api.create(git_repository(namespace, fixture.url))
            await self.api.create(sync_object(namespace, wait=wait, timeout=self.args.timeout))
            await self.until(
                f"Sync {namespace}/{NAME} Ready at {fixture.commit[:12]}",
                ready,
                self.args.timeout + 60,
                task,
                lambda: ready_condition(sync()),
            )
            wall, cpu = watch.stop()
            profile.stop()
            seen = watch.started + wall
            written = max(
                (r.sent for r in targets.sent if r.sent <= seen and "/syncs/" in r.detail and "/status" in r.detail),
                default=0,
            )
            await settle(client)
            notes = [f"Ready written at {written - watch.started:.2f}s, seen at {wall:.2f}s"]
            if failures:
                notes.append(f"attempts that failed first: {', '.join(sorted(failures))}")
            if controller_log.warnings:
                notes.append(f"{len(controller_log.warnings)} controller warnings, first: {controller_log.warnings[0]}")
            self.record(
                Measurement(
                    fixture.size,
                    tool,
                    repeat,
                    wall,
                    dict(Counter(client.requests) - before),
                    dict(targets.counts - targets_before),
                    cpu=cpu,
                    load=watch.load,
                    notes=notes,
                    timeline=targets.timeline(watch.started),
                )
            )
            if self.args.trace is not None:
                self.args.trace.mkdir(parents=True, exist_ok=True)
                name = f"moor-N{fixture.size}-wait-{str(wait).lower()}-c{concurrency}-{repeat}"
                targets.write_trace(self.args.trace / f"{name}.requests", watch.started)
                (self.args.trace / f"{name}.warnings").write_text("\n".join(controller_log.warnings))
            if not wait:
                noop_profile = None if profile_path is None else profile_path.with_name(profile_path.name + "-noop")
                await self.noop_reconcile(fixture, repeat, namespace, controller, client, targets, task, noop_profile)
        finally:
            logging.getLogger("moor").removeHandler(controller_log)
            await stop_controller(task, stop)
            await client.close()
        await self.clean(namespace)

    async def noop_reconcile(
        self,
        fixture: Fixture,
        repeat: int,
        namespace: str,
        controller: Controller,
        client: KubeClient,
        targets: RequestTargets,
        task: asyncio.Task[None],
        profile_path: Path | None,
    ) -> None:
        """`moor reconcile sync` without the CLI: set the annotation, wait for lastHandledReconcileAt.

        First waits until the Deployments are Available and the controller has heard of no change
        for a second, so this measures the steady state (the periodic `interval` pass)."""
        settled = await self.deployments_available(namespace)
        await live_cache_quiet(controller, 1.0, 60.0)
        stamp = datetime.now(UTC).isoformat()
        before, targets_before = Counter(client.requests), Counter(targets.counts)
        object_writes_before = targets.object_writes
        profile = Profile(profile_path)
        watch = Stopwatch(self.cluster.pids)
        profile.start()
        ref = ObjectRef("moor.dev", "v1", "Sync", namespace, NAME)
        await self.api.merge_patch(ref, {"metadata": {"annotations": {RECONCILE_ANNOTATION: stamp}}})

        def handled() -> bool:
            sync = controller.lookup("Sync", namespace, NAME) or {}
            return (sync.get("status") or {}).get("lastHandledReconcileAt") == stamp

        await self.until(f"Sync {namespace}/{NAME} to handle the reconcile request", handled, 120, task)
        wall, cpu = watch.stop()
        profile.stop()
        await settle(client)
        requests = dict(Counter(client.requests) - before)
        target_counts = dict(targets.counts - targets_before)
        objects = target_counts.get("objects", 0)
        object_writes = targets.object_writes - object_writes_before
        notes = [
            f"requests for managed objects {objects}, writes to them {object_writes}; "
            f"writes in all (Moor's own status included) {writes(requests)}"
        ]
        if not settled:
            notes.append("the Deployments were not all Available yet")
        self.record(
            Measurement(
                fixture.size,
                "moor no-op reconcile",
                repeat,
                wall,
                requests,
                target_counts,
                cpu=cpu,
                load=watch.load,
                notes=notes,
                timeline=targets.timeline(watch.started),
            )
        )
        if self.args.trace is not None:
            targets.write_trace(self.args.trace / f"moor-N{fixture.size}-noop-{repeat}.requests", watch.started)

    async def deployments_available(self, namespace: str) -> bool:
        """Waits (bounded) until every Deployment in `namespace` has all its replicas available."""
        deployments = await self.api.discovery.resolve("apps/v1", "Deployment")
        assert deployments is not None
        deadline = time.monotonic() + self.args.timeout
        while time.monotonic() < deadline:
            items = (await self.api.list(deployments, namespace=namespace)).items
            if all((d.get("status") or {}).get("availableReplicas", 0) == d["spec"]["replicas"] for d in items):
                return True
            await asyncio.sleep(1.0)
        return False

    # -- kubectl --

    async def kubectl_run(self, fixture: Fixture, repeat: int, *, wait: bool) -> None:
        namespace = await self.fresh_namespace(fixture.size, "kubectl")
        cache = self.root / f"kubectl-cache-{namespace}"  # a cold discovery cache, as in a CI job
        apply = ["apply", "--server-side", f"--field-manager={FIELD_MANAGER}"]
        calls = [
            [*apply, "-f", str(fixture.crd_file)],
            ["wait", "--for=condition=Established", f"crd/{CRD_NAME}", "--timeout=60s"],
            [*apply, "-n", namespace, "-f", str(fixture.objects_file)],
        ]
        if wait:
            timeout = f"--timeout={self.args.timeout}s"
            calls.append(["wait", "--for=condition=Available", "deployment", "--all", "-n", namespace, timeout])
        log = KubectlLog()
        watch = Stopwatch(self.cluster.pids)
        for argv in calls:
            log.read(await self.run_kubectl(argv, cache, self.args.timeout + 60))
        wall, cpu = watch.stop()
        notes = [f"{len(calls)} kubectl calls"]
        if log.throttled:
            notes.append(f"client-side throttling {log.throttled:.2f}s")
        if log.errors:
            notes.append(f"{log.errors} error responses")
        tool = "kubectl apply + wait" if wait else "kubectl apply"
        self.record(
            Measurement(
                fixture.size,
                tool,
                repeat,
                wall,
                dict(log.requests),
                errors=log.errors,
                cpu=cpu,
                load=watch.load,
                notes=notes,
            )
        )
        await self.clean(namespace)

    async def run_kubectl(self, args: Sequence[str], cache: Path, timeout: float) -> str:
        """Runs the built kubectl with -v=6; returns its log; kills it if it outlives `timeout`."""
        argv = [str(self.kubectl), f"--kubeconfig={self.cluster.kubeconfig}", f"--cache-dir={cache}", "-v=6", *args]
        process = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        try:
            _, stderr = await asyncio.wait_for(process.communicate(), timeout)
        except TimeoutError:
            raise BenchError(f"`kubectl {' '.join(args)}` did not finish within {timeout:.0f}s") from None
        finally:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        log = stderr.decode(errors="replace")
        if process.returncode != 0:
            said = [line for line in log.splitlines() if not line.startswith("I")][-5:]
            raise BenchError(f"`kubectl {' '.join(args)}` exited with {process.returncode}: {' '.join(said)}")
        return log

    # -- the cluster between measurements --

    async def fresh_namespace(self, size: int, tool: str) -> str:
        """An empty namespace whose default ServiceAccount exists (Pods are refused before it does)."""
        name = f"bench-{size}-{tool}-{next(self._names)}"
        await self.api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
        account = ObjectRef("", "v1", "ServiceAccount", name, "default")
        await self.until_async(f"ServiceAccount {name}/default", lambda: self.api.get(account), 60)
        return name

    async def clean(self, namespace: str) -> None:
        """Deletes the namespace (after freeing Moor's Sync of its finalizer) and the CRD; waits until both are gone."""
        sync_ref = ObjectRef("moor.dev", "v1", "Sync", namespace, NAME)
        if await self.api.get(sync_ref) is not None:
            await self.api.merge_patch(sync_ref, {"metadata": {"finalizers": None}})
        namespace_ref = ObjectRef("", "v1", "Namespace", "", namespace)
        await self.api.delete(namespace_ref)
        await self.api.delete(CRD_REF)

        async def gone() -> bool:
            return await self.api.get(namespace_ref) is None and await self.api.get(CRD_REF) is None

        await self.until_async(f"namespace {namespace} and CRD {CRD_NAME} to be deleted", gone, self.args.timeout)
        await asyncio.sleep(1.0)  # let the garbage collector and the namespace controller settle

    # -- bounded waits --

    async def until(
        self,
        what: str,
        check: Callable[[], bool],
        timeout: float,
        task: asyncio.Task[None] | None = None,
        last_seen: Callable[[], str] | None = None,
    ) -> None:
        """Polls `check` (no requests: it reads what is in memory) every 10 ms; fails clearly after `timeout`."""
        deadline = time.monotonic() + timeout
        while not check():
            if task is not None and task.done():
                error = task.exception() if not task.cancelled() else None
                raise BenchError(f"the controller stopped while waiting for {what}: {error!r}")
            if time.monotonic() > deadline:
                seen = f"; last seen: {last_seen()}" if last_seen else ""
                raise BenchError(f"timed out after {timeout:.0f}s waiting for {what}{seen}")
            await asyncio.sleep(0.01)

    async def until_async(self, what: str, check: Callable[[], Awaitable[Any]], timeout: float) -> None:
        """Polls `check` (which sends requests) every 0.25 s; fails clearly after `timeout`."""
        deadline = time.monotonic() + timeout
        while not await check():
            if time.monotonic() > deadline:
                raise BenchError(f"timed out after {timeout:.0f}s waiting for {what}")
            await asyncio.sleep(0.25)


def git_repository(namespace: str, url: str) -> dict[str, Any]:
    return {
        "apiVersion": "moor.dev/v1",
        "kind": "GitRepository",
        "metadata": {"name": NAME, "namespace": namespace},
        "spec": {"url": url, "ref": {"branch": "main"}, "interval": "1h"},
    }


def sync_object(namespace: str, *, wait: bool, timeout: float) -> dict[str, Any]:
    return {
        "apiVersion": "moor.dev/v1",
        "kind": "Sync",
        "metadata": {"name": NAME, "namespace": namespace},
        "spec": {
            "sourceRef": {"kind": "GitRepository", "name": NAME},
            "path": "./",
            "targetNamespace": namespace,
            "interval": "1h",
            "retryInterval": "2s",
            "timeout": f"{int(timeout)}s",
            "prune": True,
            "wait": wait,
        },
    }


async def settle(client: KubeClient, quiet: float = 0.5, within: float = 15.0) -> None:
    """Waits until the controller has sent no request for `quiet` seconds (the Event after Ready, say)."""
    deadline = time.monotonic() + within
    last, changed = sum(client.requests.values()), time.monotonic()
    while time.monotonic() - changed < quiet and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        now = sum(client.requests.values())
        if now != last:
            last, changed = now, time.monotonic()


async def live_cache_quiet(controller: Controller, quiet: float, within: float) -> None:
    """Waits until the controller's live cache has seen no change for `quiet` seconds (at most `within`)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        started = time.monotonic()
        await controller.live.wait_for_change(quiet)
        if time.monotonic() - started >= quiet * 0.99:
            return


async def stop_controller(task: asyncio.Task[None], stop: asyncio.Event) -> None:
    stop.set()
    try:
        await asyncio.wait_for(task, 30)
    except TimeoutError:
        progress("  the controller did not stop within 30s; it was cancelled")
    except Exception as error:  # the measurement already failed and says why
        progress(f"  the controller ended with {error!r}")


# -- output ----------------------------------------------------------------------------------------


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def median_counts(runs: Sequence[dict[str, int]]) -> dict[str, int]:
    verbs = sorted({verb for run in runs for verb in run})
    return {verb: round(statistics.median(run.get(verb, 0) for run in runs)) for verb in verbs}


def table(results: Sequence[Measurement]) -> str:
    groups: dict[tuple[int, str], list[Measurement]] = {}
    for measurement in results:
        groups.setdefault((measurement.size, measurement.tool), []).append(measurement)
    kubectl_wall = {key: statistics.median(m.wall for m in runs) for key, runs in groups.items()}
    by_repeat = {(m.size, m.tool, m.repeat): m.wall for m in results}
    header = (
        f"{'N':>6}  {'tool':<22} {'wall s':>7} {'min-max':>13} {'requests':>8}  {'Moor/kubectl':>12}  "
        f"{'paired (range)':>18}  "
        f"{'CPU s moor|kubectl':>18} {'apiserver':>9} {'etcd':>5} {'load':>5}  by verb"
    )
    lines = [header, "-" * len(header)]
    for (size, tool), runs in groups.items():
        wall = statistics.median(m.wall for m in runs)
        spread = f"{min(m.wall for m in runs):.2f}-{max(m.wall for m in runs):.2f}" if len(runs) > 1 else ""
        requests = median_counts([m.requests for m in runs])
        baseline = "kubectl apply + wait" if "wait:true" in tool else "kubectl apply"
        ratio = paired = ""
        if tool.startswith("moor wait") and (size, baseline) in kubectl_wall:
            ratio = f"{wall / kubectl_wall[(size, baseline)]:.2f}x"
            # each repetition's Moor run against the kubectl run next to it in time: cancels slow drifts in load
            pairs = [
                m.wall / by_repeat[(size, baseline, m.repeat)] for m in runs if (size, baseline, m.repeat) in by_repeat
            ]
            if len(pairs) > 1:
                paired = f"{statistics.median(pairs):.2f}x ({min(pairs):.2f}-{max(pairs):.2f})"

        def cpu(name: str, runs: list[Measurement] = runs) -> str:
            values = [m.cpu[name] for m in runs if name in m.cpu]
            return f"{statistics.median(values):.1f}" if values else ""

        load = statistics.median(m.load for m in runs)
        verbs = " ".join(f"{verb}={count}" for verb, count in requests.items())
        lines.append(
            f"{size:>6}  {tool:<22} {wall:>7.2f} {spread:>13} {sum(requests.values()):>8}  {ratio:>12}  {paired:>18}  "
            f"{cpu('client'):>18} {cpu('kube-apiserver'):>9} {cpu('etcd'):>5} {load:>5.2f}  {verbs}"
        )
    targets = [(key, runs) for key, runs in groups.items() if runs[0].targets]
    if targets:
        lines += ["", "Moor's requests by what they are for (median):"]
        for (size, tool), runs in targets:
            counts = median_counts([m.targets for m in runs])
            lines.append(f"{size:>6}  {tool:<22} " + " ".join(f"{name}={count}" for name, count in counts.items()))
    timelines = [(key, runs) for key, runs in groups.items() if runs[0].timeline]
    if timelines:
        lines += [
            "",
            "Moor's timeline (run with the median wall time): seconds from the start to the first-last request",
        ]
        for (size, tool), runs in timelines:
            run = sorted(runs, key=lambda m: m.wall)[len(runs) // 2]
            spans = sorted(run.timeline.items(), key=lambda item: item[1][0])
            text = " ".join(f"{verb} {a:.2f}-{b:.2f}" if a != b else f"{verb} {a:.2f}" for verb, (a, b) in spans)
            lines.append(f"{size:>6}  {tool:<22} {text}; Ready at {run.wall:.2f}")
    return "\n".join(lines)


def moor_version() -> str:
    """The commit of the checkout being measured, marked when src/ has uncommitted changes (read-only git)."""
    source = Path(__file__).resolve().parent.parent
    try:
        head = git("rev-parse", "--short", "HEAD", cwd=source)
        dirty = git("status", "--porcelain", "--", "src", cwd=source)
    except (BenchError, OSError):
        return "moor (not a git checkout)"
    return f"moor {head}{' + uncommitted changes in src/' if dirty else ''}"


def machine() -> str:
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.partition(":")[2].strip()
                break
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({model}), {memory:.1f} GiB memory, Python {platform.python_version()}"


# -- main ----------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    def numbers(text: str) -> list[int]:
        try:
            values = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers") from None
        if not values or min(values) < 1:
            raise argparse.ArgumentTypeError(f"{text!r}: give one or more positive numbers")
        return values

    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--sizes", type=numbers, default=[100, 1000, 5000], help="objects per run (default 100,1000,5000)"
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per size and tool (default 1; the table shows medians)"
    )
    parser.add_argument(
        "--apply-concurrency",
        type=numbers,
        default=[16],
        help="Moor's --apply-concurrency; a list (8,16,32,64) measures each (default 16, as `moor run`)",
    )
    parser.add_argument(
        "--max-connections", type=int, default=32, help="Moor's connection pool size (default 32, as `moor run`)"
    )
    parser.add_argument(
        "--wait-true",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also measure Moor with wait: true and kubectl apply + kubectl wait (default: yes)",
    )
    parser.add_argument("--replicas", type=int, default=1, help="replicas of each Deployment (default 1)")
    parser.add_argument("--timeout", type=float, default=600.0, help="bound of every wait, in seconds (default 600)")
    parser.add_argument(
        "--profile",
        type=Path,
        help="profile Moor's runs (pyinstrument if importable, else cProfile) into this directory",
    )
    parser.add_argument("--trace", type=Path, help="write every request Moor sent, per run, into this directory")
    parser.add_argument("--json", type=Path, help="also write every measurement to this file")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory (cluster logs, repositories)")
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.replicas < 0 or args.timeout <= 0:
        parser.error("--repeat must be at least 1, --replicas at least 0 and --timeout positive")
    if min(args.sizes) < 10:
        parser.error("every size must be at least 10 (the mix of kinds needs ten objects)")
    return args


def tear_down(cluster_dir: Path, root: Path, *, keep: bool, logs: str) -> None:
    """Stops the benchmark's control plane; keeps the scratch directory (without etcd's data) when asked."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_IGN)  # stopping the cluster must not be interrupted
    stopped = stop_cluster(cluster_dir)
    if stopped:
        progress(f"stopped the control plane ({', '.join(stopped)})")
    if keep:
        shutil.rmtree(cluster_dir / "etcd", ignore_errors=True)
        progress(f"kept {root} ({logs}, the cluster's: {cluster_dir / 'logs'})")
    else:
        shutil.rmtree(root, ignore_errors=True)


def install_moor(cluster: ClusterInfo) -> None:
    executable = Path(sys.executable).with_name("moor")
    argv = [str(executable), "install"] if executable.exists() else [sys.executable, "-m", "moor", "install"]
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig)}
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=180, check=False)
    if result.returncode != 0:
        raise BenchError(f"`moor install` exited with {result.returncode}: {result.stderr.strip()}")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)  # so `finally` stops the cluster on SIGTERM too
    root = Path(tempfile.mkdtemp(prefix="moor-bench-"))
    logging.basicConfig(
        filename=root / "moor.log", level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    most_deployments = max(kind_counts(size)["Deployment"] for size in args.sizes)
    nodes = max(2, math.ceil(most_deployments * args.replicas / PODS_PER_NODE))
    results: list[Measurement] = []
    status = 0
    cluster_dir = root / "cluster"
    version = moor_version()  # the code this process loaded, even if the checkout moves on meanwhile
    progress(f"{version}; machine: {machine()}; load average {os.getloadavg()[0]:.2f}")
    progress(f"scratch directory {root}; starting a control plane with {nodes} fake nodes")
    try:
        cluster = start_cluster(cluster_dir, nodes=nodes)
        install_moor(cluster)
        asyncio.run(Bench(args, root, cluster, results).run())
    except (BenchError, MoorError) as error:  # MoorError: the cluster, a missing binary, an API error
        progress(f"benchmark failed: {error}")
        status = 1
    except KeyboardInterrupt:
        progress("interrupted")
        status = 130
    finally:
        tear_down(cluster_dir, root, keep=bool(status or args.keep), logs=f"Moor's log: {root / 'moor.log'}")
    if results:
        print(f"\nInitial sync into an empty namespace; {version}; {machine()}")
        print(table(results))
        if args.json:
            args.json.write_text(json.dumps([asdict(m) for m in results], indent=1))
    return status


if __name__ == "__main__":
    sys.exit(main())
