"""Image automation end to end, nothing set by hand: `crane` pushes to the real distribution registry
(TLS, htpasswd), whose notifications reach `moor run --webhook-port`; the ImageRepository scans (its
interval is an hour, so only the webhook explains a scan), the ImagePolicy chooses, the ImageUpdate
commits the new tag to a Git server over smart HTTP with auth, and the Sync rolls it out to the
Deployment. A tag that never becomes healthy (the chart labels its Pods `moor.dev/never-ready`, which
kwok never readies) is rolled back, lands in the policy's failedTags and is not proposed again; the
next tag goes through. A numerical policy fed out-of-order pushes never goes backwards.

Between pushes the story waits for the ImageUpdate to settle (`settled`): a policy change that lands
while an ImageUpdate pass is cloning is lost until the ImageUpdate's interval, because the pass remembers
its "nothing to write" fingerprint from the policies' statuses read after the write
(src/moor/controller/imageupdate.py, `_pass`: `seen := self._fingerprint(...)` after `_write`), so the
re-run the change queued finds the fingerprint equal and clones nothing.

The module runs its own control plane, controller (with the receiver) and notifying registry.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_image_scan import push, registry_secrets, status_of, wait_status
from tests.support.git_fixtures import GitHttpServer, GitWorkspace
from tests.support.moor_fixtures import MOOR, Moor, manifest
from tests.support.registry_fixtures import Registry
from tests.support.webhook_fixtures import notifying_registry, receiver, receiver_kubectl, receiver_moor  # noqa: F401

pytestmark = pytest.mark.cluster

CHART_TEMPLATE = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
spec:
  replicas: 1
  selector:
    matchLabels: {app: app}
  template:
    metadata:
      labels:
        app: app
        {{- if hasSuffix "-broken" .Values.image }}
        moor.dev/never-ready: "true"
        {{- end }}
    spec:
      containers:
        - name: app
          image: {{ .Values.image | quote }}
"""


def values(image: str, namespace: str) -> str:
    return (
        f'# the image is the automation\'s, the rest is ours\nimage: {image} # {{"$imagepolicy": "{namespace}:app"}}\n'
    )


def image_objects(moor: Moor, registry: Registry, repository: str, policy: dict[str, Any], name: str = "app") -> None:
    """An ImageRepository (scanned only when the registry notifies: its interval is an hour) and its ImagePolicy."""
    scan = {
        "image": f"{registry.host}/{repository}",
        "interval": "1h",
        "secretRef": {"name": "registry-auth"},
        "certSecretRef": {"name": "registry-ca"},
    }
    choose = {"imageRepositoryRef": {"name": name}, "policy": policy}
    moor.apply(
        manifest(
            {"apiVersion": "moor.dev/v1", "kind": "ImageRepository", "metadata": {"name": name}, "spec": scan},
            {"apiVersion": "moor.dev/v1", "kind": "ImagePolicy", "metadata": {"name": name}, "spec": choose},
        )
    )


def git_secret(moor: Moor, server: GitHttpServer) -> None:
    data = {key: base64.b64encode(value).decode() for key, value in server.basic_auth_secret().items()}
    moor.apply(manifest({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "git-auth"}, "data": data}))


def image_update(moor: Moor) -> None:
    spec = {
        "sourceRef": {"kind": "GitRepository", "name": "app"},
        "interval": "1h",
        "update": {"path": "chart"},
        "git": {"commit": {"author": {"name": "Moor Automation", "email": "automation@moor.invalid"}}},
    }
    moor.apply(
        manifest({"apiVersion": "moor.dev/v1", "kind": "ImageUpdate", "metadata": {"name": "app"}, "spec": spec})
    )


def event_reasons(moor: Moor, kind: str) -> list[str]:
    listed = json.loads(moor.kubectl("get", "events", "-n", moor.namespace, "-o", "json").stdout)
    return [event["reason"] for event in listed["items"] if event["involvedObject"]["kind"] == kind]


def running_image(moor: Moor) -> str | None:
    deployment = moor.get("deployment", "app") or {}
    containers = (((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or []
    return containers[0]["image"] if containers else None


def wait_running(moor: Moor, image: str, timeout: float = 120) -> None:
    try:
        moor.wait_for(f"the Deployment to run {image}", lambda: running_image(moor) == image, timeout)
    except AssertionError as error:
        raise AssertionError(f"{error}; runs {running_image(moor)}") from None


def wait_committed(moor: Moor, repo: GitWorkspace, image: str) -> str:
    """Waits for the remote's values file to name `image`; returns the remote's head then."""

    def committed() -> str | None:
        return repo.remote_rev_parse("main") if f"image: {image} #" in repo.remote_file("chart/values.yaml") else None

    try:
        commit: str = moor.wait_for(f"a commit setting {image}", committed, 120)
    except AssertionError as error:
        update = status_of(moor, "imageupdate")
        raise AssertionError(f"{error}; ImageUpdate status: {update}") from None
    return commit


def proposals(repo: GitWorkspace, tag: str) -> int:
    """The commits on the remote's main that moved an image to `tag`."""
    return sum(f" -> {tag}" in message for message in repo.remote_log())


def settled(moor: Moor, commit: str) -> None:
    """Waits until the ImageUpdate has followed `commit` to a healthy Sync and ended that pass (its Ready
    message back to "up to date"). A push during that pass would be lost: see the module docstring."""

    def healthy() -> bool:
        update = moor.get("imageupdate", "app") or {}
        followed = [entry.get("commit") for entry in (update.get("status") or {}).get("followedCommits") or []]
        condition = moor.condition("imageupdate", "app") or {}
        return commit not in followed and "is up to date" in condition.get("message", "")

    moor.wait_for(f"the ImageUpdate to settle after {commit[:12]}", healthy, 120)


def wide_cli(moor: Moor, *args: str) -> str:
    """`moor ARGS -n NS` printed on a terminal wide enough that no table cell wraps."""
    env = {**os.environ, "KUBECONFIG": str(moor.kubeconfig), "COLUMNS": "400", "NO_COLOR": "1"}
    argv = [*MOOR, *args, "-n", moor.namespace]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_pushed_tags_are_committed_rolled_out_and_a_broken_one_is_rolled_back_and_skipped(
    receiver_moor: Moor,  # noqa: F811
    notifying_registry: Registry,  # noqa: F811
    git_http_server: GitHttpServer,
    tmp_path: Path,
) -> None:
    moor, registry = receiver_moor, notifying_registry
    repository = f"e2e/{moor.namespace}/app"
    image = f"{registry.host}/{repository}"
    push(registry, tmp_path, repository, "1.2.0")

    repo = git_http_server.create_repo()
    repo.write("chart/Chart.yaml", "apiVersion: v2\nname: app\nversion: 0.1.0\n")
    repo.write("chart/values.yaml", values(f"{image}:1.2.0", moor.namespace))
    repo.write("chart/templates/deployment.yaml", CHART_TEMPLATE)
    repo.commit("The app chart")
    repo.push()
    git_secret(moor, git_http_server)
    registry_secrets(moor, registry)
    moor.source_and_sync(
        repo,
        "chart",
        source_spec="secretRef: {name: git-auth}",
        sync_spec="{rollback: {onFailure: true}, timeout: 6s}",
    )
    image_objects(moor, registry, repository, {"semver": {"range": ">=1.0.0-0"}})
    image_update(moor)
    wait_running(moor, f"{image}:1.2.0")
    wait_status(moor, "imagepolicy", "latest tag 1.2.0", lambda s: s.get("latestTag") == "1.2.0")
    moor.wait_condition("imageupdate", "app", "True", reason="Succeeded", timeout=90)

    push(registry, tmp_path, repository, "1.3.0")
    first = wait_committed(moor, repo, f"{image}:1.3.0")
    message = repo.remote_log()[0]
    assert f"Moor-Image-Update: {moor.namespace}/app {image} 1.2.0 -> 1.3.0" in message
    assert f"Moor-Automation: {moor.namespace}/app" in message
    assert repo.remote_file("chart/values.yaml") == values(f"{image}:1.3.0", moor.namespace), "only the image moved"
    wait_running(moor, f"{image}:1.3.0")
    settled(moor, first)
    assert "ImageHealthy" in event_reasons(moor, "ImageUpdate")

    push(registry, tmp_path, repository, "1.4.0-broken")
    broken = wait_committed(moor, repo, f"{image}:1.4.0-broken")

    def failed_tags() -> list[dict[str, Any]] | None:
        return status_of(moor, "imagepolicy").get("failedTags")

    [failed] = moor.wait_for("the broken tag in the policy's failedTags", failed_tags, 180)
    assert (failed["tag"], failed["sync"], failed["reason"]) == (
        "1.4.0-broken",
        f"{moor.namespace}/app",
        "HealthCheckFailed",
    )
    assert failed["revision"].endswith(broken)
    wait_running(moor, f"{image}:1.3.0")
    assert proposals(repo, "1.4.0-broken") == 1, "the failed tag is proposed once"
    moor.wait_for("an ImageRolledBack event", lambda: "ImageRolledBack" in event_reasons(moor, "ImagePolicy"))
    wait_status(moor, "imagepolicy", "the policy back at 1.3.0", lambda s: s.get("latestTag") == "1.3.0")
    back = wait_committed(moor, repo, f"{image}:1.3.0")  # Git says again what runs
    assert f"Moor-Image-Update: {moor.namespace}/app {image} 1.4.0-broken -> 1.3.0" in repo.remote_log()[0]
    settled(moor, back)
    for verb in (("history", "sync", "app"), ("audit",)):  # the story as a person reads it
        shown = wide_cli(moor, *verb)
        assert "app 1.3.0 -> 1.4.0-broken by automation, rolled back at" in shown, shown
        assert "app 1.2.0 -> 1.3.0 by automation" in shown, shown

    push(registry, tmp_path, repository, "1.3.1")
    wait_committed(moor, repo, f"{image}:1.3.1")
    wait_running(moor, f"{image}:1.3.1")
    moor.wait_condition("sync", "app", "True", timeout=120)
    assert proposals(repo, "1.4.0-broken") == 1, "and never again"
    assert status_of(moor, "imagepolicy")["latestTag"] == "1.3.1"


def test_a_numerical_policy_fed_out_of_order_pushes_never_goes_backwards(
    receiver_moor: Moor,  # noqa: F811
    notifying_registry: Registry,  # noqa: F811
    tmp_path: Path,
) -> None:
    moor, registry = receiver_moor, notifying_registry
    repository = f"e2e/{moor.namespace}/build"
    push(registry, tmp_path, repository, "5")
    registry_secrets(moor, registry)
    image_objects(moor, registry, repository, {"numerical": {"order": "asc"}}, name="build")
    wait_status(moor, "imagepolicy", "latest build 5", lambda s: s.get("latestTag") == "5", name="build")

    push(registry, tmp_path, repository, "7")
    wait_status(moor, "imagepolicy", "latest build 7", lambda s: s.get("latestTag") == "7", name="build")
    push(registry, tmp_path, repository, "6")
    wait_status(
        moor, "imagerepository", "the late build scanned", lambda s: s.get("tagCount") == 3, name="build", timeout=60
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the policy reconciles on the new tags within this; it must stay on 7
        assert status_of(moor, "imagepolicy", "build")["latestTag"] == "7", "a later push of an older build"
        time.sleep(0.5)
    chosen = status_of(moor, "imagepolicy", "build")
    assert (chosen["latestTag"], chosen["previousTag"]) == ("7", "5"), "6 came later but is older than 7"
    assert chosen["latestImage"] == f"{registry.host}/{repository}:7"
