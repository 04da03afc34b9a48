"""Fail-over: from kill -9 of a member to its objects' next successful reconcile by another.

Starts its own local control plane (`moor.devcluster`), installs Moor's CRDs and runs three
`moor run --replicas` processes beside it (default Lease of 15 s). One GitRepository (interval 5s) follows
a local bare repository (file://); SYNCS Syncs apply one ConfigMap each. Each trial:

1. waits until every object is marked with the owner the shard table gives it and every ConfigMap holds
   the current version;
2. picks the member owning the most Syncs, commits a new version and kills that member with SIGKILL at
   the same moment;
3. stops the clock when every Sync the killed member owned has applied the new version, by a survivor
   (its `moor.dev/shard-owner` names another member);
4. starts a member again under a new identity, for the next trial.

It prints each trial and p50/p95; it is not a test. Run from the repository root:

    .venv/bin/python bench/fail_over.py [--trials 10] [--syncs 30] [--lease 15]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from moor import binaries
from moor.devcluster import start_cluster, stop_cluster
from moor.sharding.shard import OWNER_ANNOTATION

NAMESPACE = "fail-over"
MOOR = [sys.executable, "-m", "moor"]


class Bench:
    def __init__(self, directory: Path, syncs: int, lease: int) -> None:
        self.directory = directory
        self.syncs = syncs
        self.lease = lease
        self.kubeconfig = directory / "cluster" / "kubeconfig"
        self.repo = directory / "repo"
        self.members: dict[str, subprocess.Popen[bytes]] = {}
        self.version = 0
        self.started = 0

    def kubectl(self, *args: str, input: str | None = None) -> str:
        kubectl = str(binaries.locate("kubectl"))
        argv = [kubectl, f"--kubeconfig={self.kubeconfig}", *args]
        return subprocess.run(argv, input=input, capture_output=True, text=True, check=True).stdout

    def git(self, *args: str) -> None:
        env = {**os.environ, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.com"}
        env.update(GIT_COMMITTER_NAME="bench", GIT_COMMITTER_EMAIL="bench@example.com")
        subprocess.run(["git", *args], cwd=self.repo, env=env, check=True, capture_output=True)

    def set_up(self) -> None:
        self.repo.mkdir()
        self.git("init", "-q", "-b", "main")
        self.commit()
        self.kubectl("create", "namespace", NAMESPACE)
        documents: list[dict[str, Any]] = [
            self.moor_object(
                "GitRepository", "source", {"url": f"file://{self.repo}", "ref": {"branch": "main"}, "interval": "5s"}
            )
        ]
        for index in range(self.syncs):
            spec = {
                "sourceRef": {"kind": "GitRepository", "name": "source"},
                "path": f"./app-{index}",
                "interval": "1h",
            }
            documents.append(self.moor_object("Sync", f"app-{index}", spec))
        self.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(documents))
        for _ in range(3):
            self.start_member()

    @staticmethod
    def moor_object(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        return {
            "apiVersion": "moor.dev/v1",
            "kind": kind,
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": spec,
        }

    def commit(self) -> None:
        self.version += 1
        for index in range(self.syncs):
            path = self.repo / f"app-{index}" / "cm.yaml"
            path.parent.mkdir(exist_ok=True)
            document = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"cm-{index}"}}
            path.write_text(yaml.safe_dump({**document, "data": {"v": str(self.version)}}))
        self.git("add", "-A")
        self.git("commit", "-q", "-m", f"version {self.version}")

    def start_member(self) -> None:
        self.started += 1
        identity = f"member-{self.started}"
        log = (self.directory / f"{identity}.log").open("ab")
        argv = [*MOOR, "run", "--replicas", "--identity", identity, "--lease-duration", str(self.lease)]
        argv += ["--artifact-dir", str(self.directory / identity)]
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig)}
        self.members[identity] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)

    def syncs_now(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = json.loads(self.kubectl("get", "syncs.moor.dev", "-n", NAMESPACE, "-o", "json"))[
            "items"
        ]
        return items

    def versions(self) -> dict[str, str]:
        data = json.loads(self.kubectl("get", "configmaps", "-n", NAMESPACE, "-o", "json"))["items"]
        return {obj["metadata"]["name"]: (obj.get("data") or {}).get("v", "") for obj in data}

    def settled(self) -> bool:
        owners = {owner_of(sync) for sync in self.syncs_now()}
        current = all(v == str(self.version) for name, v in self.versions().items() if name.startswith("cm-"))
        return current and owners <= set(self.members) and len(self.versions()) > self.syncs

    def trial(self) -> float:
        wait(self.settled, 300)
        time.sleep(2 * self.lease / 3)  # every member has renewed since the last change
        by_owner: dict[str, list[str]] = {}
        for sync in self.syncs_now():
            by_owner.setdefault(owner_of(sync), []).append(sync["metadata"]["name"])
        victim = max(by_owner, key=lambda owner: len(by_owner[owner]))
        moved = {name.replace("app-", "cm-") for name in by_owner[victim]}
        self.commit()
        started = time.monotonic()
        self.members.pop(victim).send_signal(signal.SIGKILL)

        def taken_over() -> bool:
            owners = {sync["metadata"]["name"].replace("app-", "cm-"): owner_of(sync) for sync in self.syncs_now()}
            versions = self.versions()
            return all(versions.get(name) == str(self.version) and owners[name] != victim for name in moved)

        wait(taken_over, 120, every=0.2)
        took = time.monotonic() - started
        self.start_member()
        return took

    def tear_down(self) -> None:
        for process in self.members.values():
            process.send_signal(signal.SIGTERM)
        for process in self.members.values():
            process.wait(timeout=30)


def owner_of(obj: dict[str, Any]) -> str:
    return str((obj["metadata"].get("annotations") or {}).get(OWNER_ANNOTATION, ""))


def wait(check: Any, timeout: float, every: float = 0.5) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit("timed out")
        time.sleep(every)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--syncs", type=int, default=30)
    parser.add_argument("--lease", type=int, default=15)
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="moor-fail-over-"))
    start_cluster(directory / "cluster")
    bench = Bench(directory, args.syncs, args.lease)
    try:
        subprocess.run(
            [*MOOR, "install"], env={**os.environ, "KUBECONFIG": str(bench.kubeconfig)}, check=True, capture_output=True
        )
        bench.set_up()
        figures = []
        for trial in range(args.trials):
            figures.append(bench.trial())
            print(f"trial {trial + 1}: {figures[-1]:.1f}s", flush=True)
        quantiles = statistics.quantiles(figures, n=20, method="inclusive")
        print(
            f"kill -9 -> reconciled by another, {args.trials} trials, Lease {args.lease}s: "
            f"p50 {statistics.median(figures):.1f}s, p95 {quantiles[18]:.1f}s, max {max(figures):.1f}s"
        )
    finally:
        bench.tear_down()
        stop_cluster(directory / "cluster")


if __name__ == "__main__":
    main()
