"""Recovery time: from an empty, fresh local control plane to every Sync Ready with `moor bootstrap`.

The repository (a local bare repository over file://) holds the guestbook example and 10 Syncs of
100 objects each (70 ConfigMaps, 20 Services, 10 one-replica Deployments: 1,000 objects), all
declared under clusters/bench with `wait: true`, so Ready means applied and healthy. Each run:

1. starts a fresh control plane (`moor.devcluster.start_cluster`, empty etcd): the control plane's
   share, measured apart;
2. `moor install` (CRDs and RBAC), then `moor run` out of cluster (no image can be built here, so the
   Deployment bootstrap writes into Git cannot run in the test cluster);
3. `moor bootstrap git --url file://... --path clusters/bench` until it exits 0 (every Sync Ready);
4. destroys the cluster and its data.

Run 1 also commits Moor's manifests to the repository; later runs find them there (the rebuild of a
lost cluster). Moor's share is install + controller start + bootstrap. Prints one row per run.

    .venv/bin/python bench/recovery.py [--runs 3] [--syncs 10] [--objects-per-sync 100]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from moor.binaries import locate
from moor.devcluster import start_cluster, stop_cluster

ROOT = Path(__file__).resolve().parent.parent
MOOR = [sys.executable, "-m", "moor"]
BOOTSTRAP = [
    sys.executable,
    "-c",
    "import sys; from moor.cli.bootstrap import bootstrap; from moor.cli.main import MoorGroup; "
    "MoorGroup(commands={'bootstrap': bootstrap})(sys.argv[1:], prog_name='moor')",
]
GIT_ENV = {
    **{key: os.environ[key] for key in ("PATH", "HOME") if key in os.environ},
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "Bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "Bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
}


def git(*args: str | Path, cwd: Path | None = None) -> str:
    done = subprocess.run(["git", *map(str, args)], cwd=cwd, env=GIT_ENV, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def sync(name: str, path: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "moor.dev/v1",
        "kind": "Sync",
        "metadata": {"name": name, "namespace": "moor-system"},
        "spec": {"sourceRef": {"kind": "GitRepository", "name": "moor-system"}, "path": path, "wait": True, **spec},
    }


def objects_of(index: int, count: int) -> list[dict[str, Any]]:
    namespace = f"bench-{index}"
    found: list[dict[str, Any]] = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}]
    deployments, services = count // 10, count // 5
    for number in range(count - deployments - services - 1):
        found.append(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"c{number}", "namespace": namespace},
             "data": {"index": str(number)}}
        )  # fmt: skip
    for number in range(services):
        found.append(
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": f"s{number}", "namespace": namespace},
             "spec": {"selector": {"app": f"d{number % max(deployments, 1)}"}, "ports": [{"port": 80}]}}
        )  # fmt: skip
    for number in range(deployments):
        labels = {"app": f"d{number}"}
        found.append(
            {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": f"d{number}", "namespace": namespace},
             "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                      "template": {"metadata": {"labels": labels},
                                   "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}}
        )  # fmt: skip
    return found


def make_repository(directory: Path, syncs: int, per_sync: int) -> str:
    bare, work = directory / "fleet.git", directory / "work"
    git("init", "--quiet", "--bare", "--initial-branch=main", bare)
    git("init", "--quiet", "--initial-branch=main", work)
    shutil.copytree(ROOT / "examples" / "guestbook", work / "guestbook")
    declared = [sync("guestbook-dev", "./guestbook/overlays/dev")]
    for index in range(syncs):
        (work / "apps" / f"app-{index}").mkdir(parents=True)
        (work / "apps" / f"app-{index}" / "objects.yaml").write_text(yaml.safe_dump_all(objects_of(index, per_sync)))
        declared.append(sync(f"app-{index}", f"./apps/app-{index}"))
    (work / "clusters" / "bench").mkdir(parents=True)
    (work / "clusters" / "bench" / "syncs.yaml").write_text(yaml.safe_dump_all(declared))
    git("add", "-A", cwd=work)
    git("commit", "--quiet", "-m", "the bench fleet", cwd=work)
    git("push", "--quiet", str(bare), "main", cwd=work)
    return f"file://{bare}"


def one_run(directory: Path, url: str, nodes: int) -> dict[str, float]:
    figures: dict[str, float] = {}
    started = time.monotonic()
    info = start_cluster(directory / "cluster", nodes=nodes)
    figures["control plane"] = time.monotonic() - started
    env = {**os.environ, "KUBECONFIG": str(info.kubeconfig)}
    controller = None
    try:
        moor_started = time.monotonic()
        subprocess.run([*MOOR, "install"], env=env, check=True, capture_output=True, timeout=300)
        figures["install"] = time.monotonic() - moor_started
        log = (directory / "moor-run.log").open("wb")
        controller = subprocess.Popen(
            [*MOOR, "run", "--artifact-dir", str(directory / "artifacts")],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        while b"controller started" not in (directory / "moor-run.log").read_bytes():
            if controller.poll() is not None:
                raise RuntimeError((directory / "moor-run.log").read_text())
            time.sleep(0.05)
        figures["controller start"] = time.monotonic() - moor_started - figures["install"]
        bootstrap_started = time.monotonic()
        done = subprocess.run(
            [*BOOTSTRAP, "bootstrap", "git", "--url", url, "--path", "clusters/bench", "--timeout", "10m"],
            env=env, capture_output=True, text=True, timeout=900, check=False,
        )  # fmt: skip
        figures["bootstrap"] = time.monotonic() - bootstrap_started
        if done.returncode != 0:
            raise RuntimeError(f"bootstrap exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
        figures["Moor's share"] = time.monotonic() - moor_started
        figures["total"] = time.monotonic() - started
        figures.update(_record_figures(env))
        return figures
    finally:
        if controller is not None:
            controller.terminate()
            controller.wait(timeout=30)
        stop_cluster(directory / "cluster")


def _record_figures(env: dict[str, str]) -> dict[str, float]:
    """From the SyncRecords: the longest attempt of a Sync (apply and health wait), and the time from
    the first attempt's start to the last one's end."""
    done = subprocess.run(
        [str(locate("kubectl")), "get", "syncrecords.moor.dev", "-A", "-o", "json"],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        return {}
    spans = []
    for item in json.loads(done.stdout)["items"]:
        spec = item["spec"]
        start, end = _moment(spec.get("startedAt")), _moment(spec.get("finishedAt"))
        if start and end:
            spans.append((start, end))
    if not spans:
        return {}
    return {
        "longest attempt": max(end - start for start, end in spans),
        "first start to last end": max(end for _, end in spans) - min(start for start, _ in spans),
    }


def _moment(text: str | None) -> float | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() if text else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--syncs", type=int, default=10)
    parser.add_argument("--objects-per-sync", type=int, default=100)
    parser.add_argument("--nodes", type=int, default=4)
    options = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="moor-bench-recovery-"))
    try:
        url = make_repository(scratch, options.syncs, options.objects_per_sync)
        total_objects = options.syncs * options.objects_per_sync
        print(f"{options.syncs} Syncs of {options.objects_per_sync} objects ({total_objects}) + guestbook-dev\n")
        columns = ("control plane", "install", "controller start", "bootstrap", "Moor's share", "total")
        extra = ("longest attempt", "first start to last end")
        print("run  " + "  ".join(f"{column:>16}" for column in columns))
        rows = []
        for run in range(1, options.runs + 1):
            figures = one_run(scratch / f"run-{run}", url, options.nodes)
            rows.append(figures)
            print(f"{run:<4} " + "  ".join(f"{figures[column]:15.1f}s" for column in columns), flush=True)
            print("     " + ", ".join(f"{name}: {figures[name]:.1f}s" for name in extra if name in figures), flush=True)
            shutil.rmtree(scratch / f"run-{run}", ignore_errors=True)
        if len(rows) > 1:
            print("med  " + "  ".join(f"{statistics.median(r[c] for r in rows):15.1f}s" for c in columns))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
