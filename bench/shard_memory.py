"""Peak memory per replica at 1, 2 and 3 replicas for 20,000 managed objects.

Starts its own local control plane (`moor.devcluster`), installs Moor's CRDs, commits SYNCS paths of
OBJECTS / SYNCS ConfigMaps each to a local bare repository (file://) and creates one GitRepository
and SYNCS Syncs. A single `moor run` applies everything first. Then, for each replica count N, N
`moor run --replicas` processes start, the benchmark waits until every Sync is Ready and marked with
the owner the shard table gives it, lets them settle, and reads each process's peak RSS (VmHWM) and
its live cache's size (`moor_cache_objects` on /metrics); then they stop (SIGTERM) before the next N.

Each member's live cache selects the managed objects of its own buckets (the `moor.dev/shard-bucket`
label every managed object carries; docs/scale-out.md). It prints a table; it is not a test. Run from
the root:

    .venv/bin/python bench/shard_memory.py [--objects 20000] [--syncs 40]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from moor import binaries
from moor.devcluster import start_cluster, stop_cluster
from moor.sharding.shard import OWNER_ANNOTATION

NAMESPACE = "shard-memory"
MOOR = [sys.executable, "-m", "moor"]
SETTLE = 20.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Bench:
    def __init__(self, directory: Path, objects: int, syncs: int) -> None:
        self.directory = directory
        self.objects = objects
        self.syncs = syncs
        self.kubeconfig = directory / "cluster" / "kubeconfig"
        self.repo = directory / "repo"

    def kubectl(self, *args: str, input: str | None = None) -> str:
        argv = [str(binaries.locate("kubectl")), f"--kubeconfig={self.kubeconfig}", *args]
        return subprocess.run(argv, input=input, capture_output=True, text=True, check=True).stdout

    def set_up(self) -> None:
        env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@b", "GIT_COMMITTER_NAME": "b"}
        env["GIT_COMMITTER_EMAIL"] = "b@b"
        self.repo.mkdir()
        subprocess.run(["git", "init", "-q", "-b", "main"], cwd=self.repo, check=True)
        per_sync = self.objects // self.syncs
        for index in range(self.syncs):
            documents = [
                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"cm-{index}-{i}"}, "data": {"v": "1"}}
                for i in range(per_sync)
            ]
            path = self.repo / f"app-{index}" / "objects.yaml"
            path.parent.mkdir()
            path.write_text(yaml.safe_dump_all(documents))
        subprocess.run(["git", "add", "-A"], cwd=self.repo, check=True)
        subprocess.run(["git", "commit", "-q", "-m", "objects"], cwd=self.repo, check=True, env=env)
        self.kubectl("create", "namespace", NAMESPACE)
        source = {"url": f"file://{self.repo}", "ref": {"branch": "main"}, "interval": "1h"}
        documents = [_moor("GitRepository", "source", source)]
        for index in range(self.syncs):
            spec = {"sourceRef": {"kind": "GitRepository", "name": "source"}, "path": f"./app-{index}"}
            documents.append(_moor("Sync", f"app-{index}", {**spec, "interval": "1h", "timeout": "5m"}))
        self.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(documents))

    def syncs_now(self) -> list[dict[str, Any]]:
        answer = self.kubectl("get", "syncs.moor.dev", "-n", NAMESPACE, "-o", "json")
        items: list[dict[str, Any]] = json.loads(answer)["items"]
        return items

    def all_ready(self, owners: set[str] | None) -> bool:
        for sync in self.syncs_now():
            ready = [c for c in (sync.get("status") or {}).get("conditions") or [] if c["type"] == "Ready"]
            if not ready or ready[0]["status"] != "True":
                return False
            owner = (sync["metadata"].get("annotations") or {}).get(OWNER_ANNOTATION)
            if owners is not None and owner not in owners:
                return False
        return True

    def run(self, replicas: int) -> list[tuple[str, int, float]]:
        """Starts the members, waits until they own and reconciled everything; (identity, peak KiB, cached)."""
        members = []
        for index in range(replicas):
            identity = f"r{replicas}-{index}"
            port = free_port()
            argv = [*MOOR, "run", "--metrics-port", str(port), "--artifact-dir", str(self.directory / identity)]
            argv += ["--replicas", "--identity", identity] if replicas > 1 else []
            log = (self.directory / f"{identity}.log").open("ab")
            env = {**os.environ, "KUBECONFIG": str(self.kubeconfig)}
            process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
            members.append((identity, port, process))
        owners = {identity for identity, _, _ in members} if replicas > 1 else None
        _wait(lambda: self.all_ready(owners), 1800)
        time.sleep(SETTLE)
        figures = [(identity, _peak_kib(process.pid), _cached(port)) for identity, port, process in members]
        for _, _, process in members:
            process.send_signal(signal.SIGTERM)
        for _, _, process in members:
            process.wait(timeout=60)
        return figures


def _moor(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "moor.dev/v1", "kind": kind, "metadata": {"name": name, "namespace": NAMESPACE}, "spec": spec}


def _peak_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def _cached(port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        for line in answer.read().decode().splitlines():
            if line.startswith("moor_cache_objects "):
                return float(line.split()[1])
    return 0.0


def _wait(check: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit("timed out")
        time.sleep(2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, default=20000)
    parser.add_argument("--syncs", type=int, default=40)
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="moor-shard-memory-"))
    start_cluster(directory / "cluster")
    bench = Bench(directory, args.objects, args.syncs)
    try:
        env = {**os.environ, "KUBECONFIG": str(bench.kubeconfig)}
        subprocess.run([*MOOR, "install"], env=env, check=True, capture_output=True)
        bench.set_up()
        print("replicas  member    peak RSS  cached objects", flush=True)
        for replicas in (1, 2, 3):
            for identity, peak, cached in bench.run(replicas):
                print(f"{replicas:>8}  {identity:<8} {peak / 1024:>6.0f} MiB  {cached:>14.0f}", flush=True)
    finally:
        stop_cluster(directory / "cluster")


if __name__ == "__main__":
    main()
