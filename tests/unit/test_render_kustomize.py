"""Kustomizations are built by the real kustomize, and may not reach outside the repository or online."""

from __future__ import annotations

from pathlib import Path

import pytest

from moor.render import RenderError, RenderRequest, render


def write_tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


BASE = {
    "base/kustomization.yaml": "resources: [deployment.yaml, service.yaml]\n",
    "base/deployment.yaml": """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: nginx:1.27}]
""",
    "base/service.yaml": """
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80}]
""",
}

OVERLAY = {
    "overlays/prod/kustomization.yaml": """
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namePrefix: prod-
resources: [../../base]
patches:
- path: replicas.yaml
configMapGenerator:
- name: settings
  literals: [MODE=production]
  files: [app.properties]
""",
    "overlays/prod/replicas.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {replicas: 3}",
    "overlays/prod/app.properties": "color=blue\n",
}


async def test_a_base_renders_as_kustomize_builds_it(tmp_path: Path) -> None:
    write_tree(tmp_path, BASE)
    objects = await render(RenderRequest(root=tmp_path, path="./base"))
    assert [(obj["kind"], obj["metadata"]["name"]) for obj in objects] == [("Service", "web"), ("Deployment", "web")]


async def test_an_overlay_applies_prefix_patches_and_generators(tmp_path: Path) -> None:
    write_tree(tmp_path, BASE | OVERLAY)
    objects = await render(RenderRequest(root=tmp_path, path="overlays/prod"))
    by_kind = {obj["kind"]: obj for obj in objects}
    assert [obj["kind"] for obj in objects] == ["ConfigMap", "Service", "Deployment"]
    config_map = by_kind["ConfigMap"]
    assert config_map["metadata"]["name"].startswith("prod-settings-")  # name hash from the generator
    assert config_map["data"] == {"MODE": "production", "app.properties": "color=blue\n"}
    assert by_kind["Service"]["metadata"]["name"] == "prod-web"
    assert by_kind["Deployment"]["metadata"]["name"] == "prod-web"
    assert by_kind["Deployment"]["spec"]["replicas"] == 3


async def test_kustomize_errors_carry_its_message(tmp_path: Path) -> None:
    write_tree(tmp_path, {"app/kustomization.yaml": "patches: [{path: missing-patch.yaml}]\n"})
    with pytest.raises(RenderError, match=r"^kustomize build of app failed: .*missing-patch.yaml") as raised:
        await render(RenderRequest(root=tmp_path, path="app"))
    assert str(tmp_path) not in str(raised.value)  # paths are shown relative to the repository


@pytest.mark.parametrize("name", ["kustomization.yml", "Kustomization"])
async def test_every_kustomization_file_name_is_recognised(tmp_path: Path, name: str) -> None:
    write_tree(tmp_path, {f"app/{name}": "resources: [cm.yaml]\nnamePrefix: k-\n"})
    write_tree(tmp_path, {"app/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n"})
    [obj] = await render(RenderRequest(root=tmp_path, path="app"))
    assert obj["metadata"]["name"] == "k-a"


async def test_a_base_outside_the_repository_is_refused(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    write_tree(tmp_path, {f"other-tenant/{name.removeprefix('base/')}": text for name, text in BASE.items()})
    write_tree(repo, {"app/kustomization.yaml": "resources: [../../other-tenant]\n"})
    with pytest.raises(
        RenderError, match=r"^app/kustomization.yaml names '../../other-tenant', which is outside the repository$"
    ):
        await render(RenderRequest(root=repo, path="app"))


async def test_a_base_outside_reached_through_another_base_is_refused(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    write_tree(tmp_path, {"elsewhere/kustomization.yaml": "resources: []\n"})
    write_tree(
        repo,
        {
            "app/kustomization.yaml": "resources: [../base]\n",
            "base/kustomization.yaml": "components: [../../elsewhere]\n",
        },
    )
    with pytest.raises(RenderError, match=r"^base/kustomization.yaml names '../../elsewhere', which is outside"):
        await render(RenderRequest(root=repo, path="app"))


@pytest.mark.parametrize(
    ("kustomization", "reference"),
    [
        ("resources: [https://github.com/kubernetes-sigs/kustomize//examples/helloWorld?ref=v5.0.0]\n", "resources"),
        ("resources: [git@github.com:org/repo.git]\n", "resources"),
        ("patches: [{path: 'https://example.com/patch.yaml'}]\n", "patches"),
        ("configMapGenerator: [{name: x, files: ['conf=https://example.com/x']}]\n", "configMapGenerator"),
    ],
)
async def test_remote_resources_are_refused(tmp_path: Path, kustomization: str, reference: str) -> None:
    write_tree(tmp_path, {"app/kustomization.yaml": kustomization})
    with pytest.raises(RenderError, match=rf"^app/kustomization.yaml names the remote .* in {reference}; only paths"):
        await render(RenderRequest(root=tmp_path, path="app"))


async def test_a_resource_that_does_not_exist_locally_is_refused_before_kustomize_goes_online(tmp_path: Path) -> None:
    write_tree(tmp_path, {"app/kustomization.yaml": "resources: [github.com/org/repo/deploy]\n"})
    with pytest.raises(RenderError, match=r"names 'github.com/org/repo/deploy' in resources, which does not exist"):
        await render(RenderRequest(root=tmp_path, path="app"))


async def test_a_symlink_out_of_a_kustomization_is_refused(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    write_tree(tmp_path, {"outside/.env": "TOKEN=secret\n"})
    write_tree(repo, {"app/kustomization.yaml": "secretGenerator: [{name: s, envs: [.env]}]\n"})
    (repo / "app" / ".env").symlink_to(tmp_path / "outside" / ".env")
    with pytest.raises(RenderError, match=r"^app/.env is a symlink to a place outside the repository$"):
        await render(RenderRequest(root=repo, path="app"))
