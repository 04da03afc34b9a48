"""Push -> running: from `crane push` of a new tag to the Deployment's new Pod Ready, with the registry
webhook and with polling, side by side in one run.

Starts its own local control plane (`moor.devcluster`), installs Moor's CRDs and runs `moor run
--webhook-port P` in a subprocess. Two CNCF distribution registries (TLS, htpasswd, from the tests'
support code) serve the images: one notifies the webhook receiver of every push, the other notifies
nobody. For each of them a namespace holds the whole chain, each object left at an interval of an
hour except the ImageRepository of the polled registry (`--poll-interval`, default 10s):

    ImageRepository -> ImagePolicy (semver) -> ImageUpdate -> Git (smart HTTP with auth, the tests'
    server) -> GitRepository -> Sync -> Deployment (1 replica; kwok makes its Pods Ready)

Each push is `crane append` of a one-file layer onto an empty OCI base as `app:1.0.N`; the clock runs
from just before crane starts until a Pod of the Deployment at the new image is Running and Ready
(read straight from the API server every 50 ms). The two chains take turns, one push each, so both
see the same machine. Stages (from the same start): crane done, the ImagePolicy's latestTag, the
Deployment's image, the Pod Ready. Between pushes (not timed) it waits for the ImageUpdate to have
followed its commit and ended that pass, and before each polled push a random part of the interval, so
the pushes fall at every point of the polling cycle rather than in step with it. It prints the table;
it is not a test. About 5 minutes for 20 pushes each. Run from the repository root:

    .venv/bin/python bench/image_rollout.py [--pushes 20] [--poll-interval 10s]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from initial_sync import BenchError, install_moor, machine, moor_version, progress, tear_down
from moor import binaries
from moor.devcluster import ClusterInfo, pki, start_cluster
from moor.resources.durations import parse_duration
from moor.web.receiver import HOOK_PATH
from steady_state import free_port, percentile

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository root, as pytest's pythonpath
from tests.support.git_fixtures import GitHttpServer, GitWorkspace
from tests.support.moor_fixtures import ControllerProcess
from tests.support.registry_fixtures import Notifications, Registry, TestCA

TOKEN_NAMESPACE = "webhook-system"
TOKEN_SECRET = "registry-hooks"
FIRST_TAG = "1.0.0"
STEP_TIMEOUT = 120.0
POLL_EVERY = 0.05
STAGES = ("crane done", "policy", "deployment", "pod ready")


@dataclass
class Chain:
    """One namespace's ImageRepository ... Deployment, fed by one registry."""

    label: str
    namespace: str
    registry: Registry
    repo: GitWorkspace
    scratch: Path
    stages: dict[str, list[float]] = field(default_factory=lambda: {stage: [] for stage in STAGES})

    @property
    def image(self) -> str:
        return f"{self.registry.host}/bench/{self.namespace}/app"


class ApiServer:
    """GETs straight to the control plane with the admin's client certificate (no client library, so the
    bench's own polling costs the machine as little as possible)."""

    def __init__(self, cluster: ClusterInfo) -> None:
        self.server = cluster.server
        self.context = ssl.create_default_context(cafile=str(cluster.ca_cert))
        self.context.load_cert_chain(str(cluster.admin_cert), str(cluster.admin_key))

    def get(self, path: str) -> dict[str, Any]:
        with urllib.request.urlopen(self.server + path, context=self.context, timeout=10) as answer:
            document: dict[str, Any] = json.load(answer)
            return document


def kubectl(cluster: ClusterInfo, *args: str, stdin: str | None = None) -> str:
    argv = [str(binaries.locate("kubectl")), "--kubeconfig", str(cluster.kubeconfig), *args]
    result = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=120, check=False)
    if result.returncode != 0:
        raise BenchError(f"`kubectl {' '.join(args)}` exited with {result.returncode}: {result.stderr.strip()}")
    return result.stdout


def secret(name: str, data: dict[str, bytes], type_: str = "Opaque") -> dict[str, Any]:
    encoded = {key: base64.b64encode(value).decode() for key, value in data.items()}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "type": type_, "data": encoded}


def deployment_file(image: str, namespace: str) -> str:
    return f"""\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
spec:
  replicas: 1
  selector:
    matchLabels: {{app: app}}
  template:
    metadata:
      labels: {{app: app}}
    spec:
      containers:
        - name: app
          image: {image} # {{"$imagepolicy": "{namespace}:app"}}
"""


def chain_objects(chain: Chain, git: GitHttpServer, scan_interval: str) -> list[dict[str, Any]]:
    hour = "1h"
    meta = {"name": "app"}
    return [
        secret("git-auth", git.basic_auth_secret()),
        secret(
            "registry-auth",
            {".dockerconfigjson": chain.registry.docker_config_json()},
            "kubernetes.io/dockerconfigjson",
        ),
        secret("registry-ca", {"ca.crt": chain.registry.ca_bundle.read_bytes()}),
        {
            "apiVersion": "moor.dev/v1",
            "kind": "GitRepository",
            "metadata": meta,
            "spec": {
                "url": chain.repo.url,
                "ref": {"branch": "main"},
                "interval": hour,
                "secretRef": {"name": "git-auth"},
            },
        },
        {
            "apiVersion": "moor.dev/v1",
            "kind": "Sync",
            "metadata": meta,
            "spec": {"sourceRef": {"kind": "GitRepository", "name": "app"}, "path": "deploy", "interval": hour},
        },
        {
            "apiVersion": "moor.dev/v1",
            "kind": "ImageRepository",
            "metadata": meta,
            "spec": {
                "image": chain.image,
                "interval": scan_interval,
                "secretRef": {"name": "registry-auth"},
                "certSecretRef": {"name": "registry-ca"},
            },
        },
        {
            "apiVersion": "moor.dev/v1",
            "kind": "ImagePolicy",
            "metadata": meta,
            "spec": {"imageRepositoryRef": {"name": "app"}, "policy": {"semver": {"range": ">=1.0.0"}}},
        },
        {
            "apiVersion": "moor.dev/v1",
            "kind": "ImageUpdate",
            "metadata": meta,
            "spec": {
                "sourceRef": {"kind": "GitRepository", "name": "app"},
                "interval": hour,
                "update": {"path": "deploy"},
            },
        },
    ]


def push(chain: Chain, tag: str) -> None:
    """`crane append` of a one-file layer (unique per tag) onto an empty OCI base, as `app:<tag>`."""
    layer = chain.scratch / f"layer-{tag}.txt"
    layer.write_text(f"app {tag}\n")
    chain.registry.run("crane", "append", "--oci-empty-base", "-f", layer, "-t", f"{chain.image}:{tag}")


def until(what: str, check: Callable[[], bool], deadline: float) -> float:
    while not check():
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {STEP_TIMEOUT:.0f}s waiting for {what}")
        time.sleep(POLL_EVERY)
    return time.monotonic()


def pod_ready_at(api: ApiServer, namespace: str, image: str) -> bool:
    selector = urllib.parse.quote("app=app")
    for pod in api.get(f"/api/v1/namespaces/{namespace}/pods?labelSelector={selector}")["items"]:
        images = [container["image"] for container in pod["spec"]["containers"]]
        status = pod.get("status") or {}
        ready = any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions") or [])
        if (
            images == [image]
            and status.get("phase") == "Running"
            and ready
            and "deletionTimestamp" not in pod["metadata"]
        ):
            return True
    return False


def deployment_image(api: ApiServer, namespace: str) -> str:
    deployment = api.get(f"/apis/apps/v1/namespaces/{namespace}/deployments/app")
    return str(deployment["spec"]["template"]["spec"]["containers"][0]["image"])


def latest_tag(api: ApiServer, namespace: str) -> str:
    policy = api.get(f"/apis/moor.dev/v1/namespaces/{namespace}/imagepolicies/app")
    return str((policy.get("status") or {}).get("latestTag", ""))


def update_settled(api: ApiServer, namespace: str) -> bool:
    """The ImageUpdate followed its last commit to the cluster and ended that pass."""
    update = api.get(f"/apis/moor.dev/v1/namespaces/{namespace}/imageupdates/app")
    status = update.get("status") or {}
    ready = [c for c in status.get("conditions") or [] if c.get("type") == "Ready"]
    return not status.get("followedCommits") and bool(ready) and "is up to date" in ready[0].get("message", "")


def measure(api: ApiServer, chain: Chain, tag: str, phase: float) -> None:
    """One push, `phase` seconds (not timed) after the last one settled, timed through its stages into
    `chain.stages`."""
    image = f"{chain.image}:{tag}"
    time.sleep(phase)
    start = time.monotonic()
    deadline = start + STEP_TIMEOUT
    push(chain, tag)
    marks = [time.monotonic()]
    marks.append(
        until(f"{chain.label}: the policy at {tag}", lambda: latest_tag(api, chain.namespace) == tag, deadline)
    )
    marks.append(
        until(
            f"{chain.label}: the Deployment at {tag}", lambda: deployment_image(api, chain.namespace) == image, deadline
        )
    )
    marks.append(
        until(f"{chain.label}: a Pod Ready at {tag}", lambda: pod_ready_at(api, chain.namespace, image), deadline)
    )
    for stage, mark in zip(STAGES, marks, strict=True):
        chain.stages[stage].append(mark - start)
    # Not timed: a policy change while the ImageUpdate's pass after the rollout still runs is lost until its
    # interval (ImageUpdateReconciler._pass remembers policies read after its write), so each push waits.
    until(
        f"{chain.label}: the ImageUpdate settled",
        lambda: update_settled(api, chain.namespace),
        time.monotonic() + STEP_TIMEOUT,
    )
    progress(
        f"  {chain.label} {tag}: " + ", ".join(f"{s} {m - start:.2f}s" for s, m in zip(STAGES, marks, strict=True))
    )


def set_up_chain(
    cluster: ClusterInfo,
    api: ApiServer,
    git: GitHttpServer,
    registry: Registry,
    label: str,
    scan_interval: str,
    root: Path,
) -> Chain:
    namespace = f"image-{label}"
    repo = git.create_repo(namespace)
    scratch = root / f"pushes-{label}"
    scratch.mkdir()
    chain = Chain(label, namespace, registry, repo, scratch)
    push(chain, FIRST_TAG)
    repo.write("deploy/app.yaml", deployment_file(f"{chain.image}:{FIRST_TAG}", namespace))
    repo.commit("The app")
    repo.push()
    kubectl(cluster, "create", "namespace", namespace)
    documents = yaml.safe_dump_all(chain_objects(chain, git, scan_interval), sort_keys=False)
    kubectl(cluster, "apply", "-n", namespace, "-f", "-", stdin=documents)
    deadline = time.monotonic() + STEP_TIMEOUT
    first = f"{chain.image}:{FIRST_TAG}"
    until(f"{label}: the first Pod Ready", lambda: pod_ready_at(api, namespace, first), deadline)
    until(f"{label}: the policy's first choice", lambda: latest_tag(api, namespace) == FIRST_TAG, deadline)
    return chain


def table(chains: Sequence[Chain], pushes: int, poll_interval: str) -> str:
    lines = [
        f"push -> running, {pushes} pushes each ({moor_version()}; {machine()})",
        "seconds from `crane push` starting; p50 / p95 / max",
        "",
        f"{'':<28}" + "".join(f"{stage:>22}" for stage in STAGES),
    ]
    for chain in chains:
        cells = []
        for stage in STAGES:
            values = chain.stages[stage]
            cells.append(f"{percentile(values, 50):6.2f} /{percentile(values, 95):6.2f} /{max(values):6.2f}")
        name = "webhook" if chain.label == "webhook" else f"polling every {poll_interval}"
        lines.append(f"{name:<28}" + "".join(f"{cell:>22}" for cell in cells))
    return "\n".join(lines)


def run(args: argparse.Namespace, root: Path) -> str:
    cluster_dir = root / "cluster"
    progress("starting the control plane")
    cluster = start_cluster(cluster_dir)
    install_moor(cluster)
    api = ApiServer(cluster)
    kubectl(cluster, "create", "namespace", TOKEN_NAMESPACE)
    token = base64.b32encode(os.urandom(15)).decode()
    kubectl(
        cluster, "create", "secret", "generic", TOKEN_SECRET, "-n", TOKEN_NAMESPACE, f"--from-literal=token={token}"
    )
    port = free_port()
    controller = ControllerProcess(
        cluster.kubeconfig,
        root / "controller",
        *("--webhook-port", str(port), "--webhook-address", "127.0.0.1"),
        *("--webhook-secret", f"{TOKEN_NAMESPACE}/{TOKEN_SECRET}"),
    )
    (root / "ca").mkdir()
    ca_pair = pki.create_ca("moor-bench-registry-ca")
    pki.write_key_pair(ca_pair, root / "ca", "ca")
    ca = TestCA(root / "ca", ca_pair)
    (root / "git-repos").mkdir()
    (root / "git-work").mkdir()
    git = GitHttpServer(root / "git-repos", root / "git-work")
    registries: list[Registry] = []
    try:
        git.start()
        controller.start()
        for name, notify in (
            ("notifying", Notifications(f"http://127.0.0.1:{port}{HOOK_PATH}", token)),
            ("silent", None),
        ):
            (root / name).mkdir()
            registries.append(Registry(root / name, ca, notify=notify))
            registries[-1].start()
        progress("setting up both chains")
        chains = [
            set_up_chain(cluster, api, git, registries[0], "webhook", "1h", root),
            set_up_chain(cluster, api, git, registries[1], "polling", args.poll_interval, root),
        ]
        poll_every = parse_duration(args.poll_interval).total_seconds()
        for number in range(1, args.pushes + 1):
            measure(api, chains[0], f"1.0.{number}", 0.0)
            measure(api, chains[1], f"1.0.{number}", random.uniform(0.0, poll_every))
        return table(chains, args.pushes, args.poll_interval)
    finally:
        for registry in registries:
            registry.stop()
        if controller.process is not None:
            controller.stop()
        git.stop()
        tear_down(cluster_dir, root, keep=args.keep, logs=f"the controller's log: {controller.log_path}")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pushes", type=int, default=20, help="pushes per chain (default 20)")
    parser.add_argument("--poll-interval", default="10s", help="the polled ImageRepository's interval (default 10s)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory (logs) afterwards")
    return parser.parse_args(argv)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    root = Path(tempfile.mkdtemp(prefix="moor-image-rollout-"))
    try:
        print(run(args, root))
    except BenchError as error:
        progress(f"failed: {error}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
