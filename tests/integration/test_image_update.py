"""ImageUpdate end to end through `moor run`: a policy's new tag becomes a commit in Git, the Sync rolls it
out, a tag that never becomes healthy is rolled back, recorded in the policy's failedTags and not proposed
again, and the next tag goes through. Real Git servers, a real control plane; the ImagePolicy's choice
is set by the test through its status subresource (scanning a registry is the ImagePolicy's business)."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from tests.support.git_fixtures import GitHttpServer, GitSshServer, GitWorkspace, SigningKeys
from tests.support.moor_fixtures import Moor, manifest

IMAGE = "registry.invalid/team/web"

CHART_TEMPLATE = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels:
        app: web
        {{- if hasSuffix "-broken" .Values.image.tag }}
        moor.dev/never-ready: "true"
        {{- end }}
    spec:
      containers:
        - name: web
          image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"
"""


def values(namespace: str, tag: str) -> str:
    return (
        "# values kept by hand, apart from the marked image\n"
        "image:\n"
        f'  repository: {IMAGE} # {{"$imagepolicy": "{namespace}:web:name"}}\n'
        f'  tag: "{tag}" # {{"$imagepolicy": "{namespace}:web:tag"}}\n'
        "  pullPolicy: IfNotPresent\n"
    )


def publish_chart(repo: GitWorkspace, namespace: str, tag: str = "1.2.0") -> str:
    repo.write("chart/Chart.yaml", "apiVersion: v2\nname: web\nversion: 0.1.0\n")
    repo.write("chart/values.yaml", values(namespace, tag))
    repo.write("chart/templates/deployment.yaml", CHART_TEMPLATE)
    sha = repo.commit("The web chart")
    repo.push()
    return sha


def secret(moor: Moor, name: str, data: dict[str, bytes]) -> None:
    encoded = {key: base64.b64encode(value).decode() for key, value in data.items()}
    moor.apply(manifest({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "data": encoded}))


def image_policy(moor: Moor, tag: str, name: str = "web") -> None:
    """An ImagePolicy whose latest image the test chooses (its ImageRepository is never scanned)."""
    if not moor.exists("imagepolicy", name):
        spec = {"imageRepositoryRef": {"name": f"{name}-unscanned"}, "policy": {"semver": {"range": ">=1.0.0"}}}
        moor.apply(
            manifest({"apiVersion": "moor.dev/v1", "kind": "ImagePolicy", "metadata": {"name": name}, "spec": spec})
        )
    status = {"status": {"latestTag": tag, "latestImage": f"{IMAGE}:{tag}"}}
    moor.kubectl(
        "patch",
        "imagepolicy",
        name,
        "-n",
        moor.namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps(status),
    )


def image_update(moor: Moor, name: str = "web", **spec: Any) -> None:
    body = {
        "sourceRef": {"kind": "GitRepository", "name": "app"},
        "git": {"commit": {"author": {"name": "Moor Automation", "email": "automation@moor.invalid"}}},
        "update": {"path": "chart"},
        "interval": "1h",
        **spec,
    }
    moor.apply(manifest({"apiVersion": "moor.dev/v1", "kind": "ImageUpdate", "metadata": {"name": name}, "spec": body}))


def request_reconcile(moor: Moor, kind: str, name: str) -> None:
    token = f"test-{time.monotonic_ns()}"
    moor.kubectl("annotate", "--overwrite", kind, name, "-n", moor.namespace, f"moor.dev/reconcile={token}")


def running_image(moor: Moor) -> str | None:
    deployment = moor.get("deployment", "web") or {}
    containers = (((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or []
    return containers[0]["image"] if containers else None


def wait_running(moor: Moor, tag: str) -> None:
    moor.wait_for(f"the Deployment to run {IMAGE}:{tag}", lambda: running_image(moor) == f"{IMAGE}:{tag}", 90)


def wait_pushed(moor: Moor, repo: GitWorkspace, tag: str) -> str:
    """Waits for the automation's commit that sets `tag`; returns it."""

    def pushed() -> str | None:
        text = repo.remote_file("chart/values.yaml")
        return repo.remote_rev_parse("main") if f'tag: "{tag}"' in text else None

    commit: str = moor.wait_for(f"a commit setting {tag}", pushed, 90)
    return commit


def observed(moor: Moor, kind: str, name: str) -> bool:
    obj = moor.get(kind, name) or {}
    return bool((obj.get("status") or {}).get("observedGeneration") == obj["metadata"]["generation"])


def event_reasons(moor: Moor, kind: str) -> list[str]:
    result = moor.kubectl("get", "events", "-n", moor.namespace, "-o", "json")
    return [e["reason"] for e in json.loads(result.stdout)["items"] if e["involvedObject"]["kind"] == kind]


def test_new_tags_roll_out_and_a_tag_that_was_rolled_back_is_not_proposed_again(
    moor: Moor, git_http_server: GitHttpServer
) -> None:
    repo = git_http_server.create_repo()
    publish_chart(repo, moor.namespace)
    secret(moor, "git-auth", git_http_server.basic_auth_secret())
    moor.source_and_sync(
        repo,
        "chart",
        source_spec="secretRef: {name: git-auth}",
        sync_spec="{rollback: {onFailure: true}, timeout: 6s}",
    )
    wait_running(moor, "1.2.0")

    image_policy(moor, "1.4.0")
    image_update(moor)
    commit = wait_pushed(moor, repo, "1.4.0")
    message = repo.remote_log()[0]
    assert f"Moor-Image-Update: {moor.namespace}/web {IMAGE} 1.2.0 -> 1.4.0" in message
    assert f"Moor-Automation: {moor.namespace}/web" in message
    assert repo.remote_file("chart/values.yaml") == values(moor.namespace, "1.4.0"), "only the tag changed"
    wait_running(moor, "1.4.0")
    status = moor.wait_for("the ImageUpdate's status", lambda: (moor.get("imageupdate", "web") or {}).get("status"))
    assert status["lastCommit"] == commit
    assert [(c["file"], c["policy"], c["old"], c["new"]) for c in status["lastChanges"]] == [
        ("chart/values.yaml", f"{moor.namespace}/web", "1.2.0", "1.4.0")
    ]

    image_policy(moor, "1.5.0-broken")
    broken = wait_pushed(moor, repo, "1.5.0-broken")

    def failed_tags() -> list[dict[str, Any]] | None:
        policy = moor.get("imagepolicy", "web") or {}
        return (policy.get("status") or {}).get("failedTags")

    [failed] = moor.wait_for("the broken tag in failedTags", failed_tags, 120)
    assert (failed["tag"], failed["sync"], failed["reason"]) == (
        "1.5.0-broken",
        f"{moor.namespace}/app",
        "HealthCheckFailed",
    )
    assert failed["revision"].endswith(broken)
    assert running_image(moor) == f"{IMAGE}:1.4.0", "the Sync rolled back to the healthy tag"
    moor.wait_for("an ImageRolledBack event", lambda: "ImageRolledBack" in event_reasons(moor, "ImageUpdate"))
    assert "ImageRolledBack" in event_reasons(moor, "ImagePolicy")

    request_reconcile(moor, "imageupdate", "web")
    moor.wait_condition("imageupdate", "web", "True", revision="holding")
    assert repo.remote_rev_parse("main") == broken, "the failed tag is not proposed again"

    image_policy(moor, "1.5.1")
    wait_pushed(moor, repo, "1.5.1")
    wait_running(moor, "1.5.1")
    moor.wait_condition("sync", "app", "True", timeout=90)


def test_a_protected_branch_gives_a_clear_status(moor: Moor, git_http_server: GitHttpServer) -> None:
    repo = git_http_server.create_repo()
    start = publish_chart(repo, moor.namespace)
    repo.protect("main", "GL-HOOK-ERR: main is a protected branch")
    secret(moor, "git-auth", git_http_server.basic_auth_secret())
    moor.source_and_sync(repo, "chart", source_spec="secretRef: {name: git-auth}")
    image_policy(moor, "1.4.0")
    image_update(moor)

    condition = moor.wait_condition("imageupdate", "web", "False", reason="PushRejected", timeout=90)
    assert "main is a protected branch" in condition["message"]
    assert "the push to main of" in condition["message"]
    assert git_http_server.password not in condition["message"]
    assert repo.remote_rev_parse("main") == start


def test_bad_markers_and_unknown_policies_name_the_file_and_line(moor: Moor, git_http_server: GitHttpServer) -> None:
    repo = git_http_server.create_repo()
    publish_chart(repo, moor.namespace)
    secret(moor, "git-auth", git_http_server.basic_auth_secret())
    moor.source_and_sync(repo, "chart", source_spec="secretRef: {name: git-auth}")
    image_update(moor)

    condition = moor.wait_condition("imageupdate", "web", "False", reason="PolicyNotFound", timeout=90)
    assert condition["message"].startswith(
        f"chart/values.yaml:3: the marker names the ImagePolicy {moor.namespace}/web"
    )

    repo.write("chart/broken.yaml", 'image: a:1 # {"$imagepolicy": "x:y"}\n  bad: [\n')
    repo.commit("A broken file")
    repo.push()
    image_policy(moor, "1.4.0")
    condition = moor.wait_condition("imageupdate", "web", "False", reason="MarkerInvalid", timeout=90)
    assert condition["message"].startswith("chart/broken.yaml:")
    assert "not valid YAML" in condition["message"]


def test_two_automations_on_one_branch_both_land_and_signed_commits_pass_verify(
    moor: Moor, git_ssh_server: GitSshServer, signing_keys: SigningKeys
) -> None:
    repo = git_ssh_server.create_repo()
    key = signing_keys.ssh("automation@moor.invalid")
    trust = {"allowed_signers": key.allowed_signer().encode()}
    publish_chart(repo, moor.namespace)
    repo.write("other/values.yaml", values(moor.namespace, "1.2.0").replace(":web:", ":api:"))
    start = repo.commit("The api values", sign_with=key)
    repo.push()
    secret(moor, "git-auth", git_ssh_server.auth_secret())
    secret(moor, "trusted-keys", trust)
    secret(moor, "signing-key", {"identity": key.private_key.read_bytes()})
    moor.source_and_sync(
        repo,
        "chart",
        source_spec="{secretRef: {name: git-auth}, verify: {mode: HEAD, secretRef: {name: trusted-keys}}}",
    )
    moor.wait_condition("gitrepository", "app", "True", revision=start, timeout=90)
    image_policy(moor, "1.4.0", name="web")
    image_policy(moor, "2.0.0", name="api")
    signed = {"commit": {"author": {"name": "Moor Automation"}, "signingKey": {"secretRef": {"name": "signing-key"}}}}
    image_update(moor, "web", git=signed)
    image_update(moor, "api", git=signed, update={"path": "other"})

    def both_landed() -> bool:
        messages = "\n".join(repo.remote_log())
        return "1.2.0 -> 1.4.0" in messages and "1.2.0 -> 2.0.0" in messages

    moor.wait_for("both automations' commits", both_landed, 120)
    head = repo.remote_rev_parse("main")
    moor.wait_condition("gitrepository", "app", "True", revision=head, timeout=90)
    wait_running(moor, "1.4.0")
    artifact = moor.get("gitrepository", "app")["status"]["artifact"]  # type: ignore[index]
    assert artifact["verified"] is True

    moor.apply(
        manifest(
            {
                "apiVersion": "moor.dev/v1",
                "kind": "ImageUpdate",
                "metadata": {"name": "web"},
                "spec": {"sourceRef": {"name": "app"}, "update": {"path": "chart"}, "interval": "1h"},
            }
        )
    )
    moor.wait_for("the ImageUpdate without a signing key observed", lambda: observed(moor, "imageupdate", "web"))
    image_policy(moor, "1.5.0", name="web")
    unsigned = wait_pushed(moor, repo, "1.5.0")
    condition = moor.wait_condition("gitrepository", "app", "False", reason="VerificationFailed", timeout=90)
    assert f"commit {unsigned[:12]} is not signed" in condition["message"]
    assert running_image(moor) == f"{IMAGE}:1.4.0"


def test_per_policy_review_branches_leave_the_checkout_branch_alone(moor: Moor, git_http_server: GitHttpServer) -> None:
    repo = git_http_server.create_repo()
    publish_chart(repo, moor.namespace)
    repo.write("chart/api-values.yaml", values(moor.namespace, "1.2.0").replace(":web:", ":api:"))
    start = repo.commit("The api values")
    repo.push()
    secret(moor, "git-auth", git_http_server.basic_auth_secret())
    moor.source_and_sync(repo, "chart", source_spec="secretRef: {name: git-auth}")
    image_policy(moor, "1.4.0", name="web")
    image_policy(moor, "2.0.0", name="api")
    image_update(moor, git={"push": {"strategy": "PerPolicy"}})

    web_branch, api_branch = f"moor/image-{moor.namespace}-web", f"moor/image-{moor.namespace}-api"
    moor.wait_condition("imageupdate", "web", "True", revision=api_branch, timeout=90)
    assert repo.remote_rev_parse("main") == start
    assert 'tag: "1.4.0"' in repo.remote_file("chart/values.yaml", web_branch)
    assert 'tag: "1.2.0"' in repo.remote_file("chart/api-values.yaml", web_branch), "one policy per branch"
    assert 'tag: "2.0.0"' in repo.remote_file("chart/api-values.yaml", api_branch)
    assert 'tag: "1.2.0"' in repo.remote_file("chart/values.yaml", api_branch)

    image_policy(moor, "1.5.0", name="web")
    moor.wait_for(
        "the web proposal replaced", lambda: 'tag: "1.5.0"' in repo.remote_file("chart/values.yaml", web_branch)
    )
    assert len(repo.remote_log(web_branch)) == len(repo.remote_log("main")) + 1, "one proposal on top of main"
