"""Helm charts are rendered by the real `helm template` with the Sync's values, release and namespace."""

from __future__ import annotations

from pathlib import Path

import pytest

from moor.render import HelmOptions, RenderError, RenderRequest, render


def write_tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


CHART = {
    "charts/web/Chart.yaml": "apiVersion: v2\nname: web\nversion: 0.1.0\n",
    "charts/web/values.yaml": "color: grey\nsize: small\nshape: round\n",
    "charts/web/values-prod.yaml": "color: blue\nsize: large\n",
    "charts/web/values-eu.yaml": "size: medium\n",
    "charts/web/templates/config.yaml": """
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-settings
  namespace: {{ .Release.Namespace }}
data:
  color: {{ .Values.color | quote }}
  size: {{ .Values.size | quote }}
  shape: {{ .Values.shape | quote }}
  kube: {{ .Capabilities.KubeVersion.Version | quote }}
""",
    "charts/web/templates/deployment.yaml": """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: nginx}]
""",
    "charts/web/templates/tests/test-connection.yaml": """
apiVersion: v1
kind: Pod
metadata:
  name: {{ .Release.Name }}-test
  annotations: {"helm.sh/hook": test}
spec:
  containers: [{name: wget, image: busybox}]
""",
    "charts/web/crds/widgets.yaml": """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
""",
}


async def test_a_chart_renders_with_defaults(tmp_path: Path) -> None:
    write_tree(tmp_path, CHART)
    objects = await render(RenderRequest(root=tmp_path, path="./charts/web"))
    assert [(obj["kind"], obj["metadata"]["name"]) for obj in objects] == [
        ("CustomResourceDefinition", "widgets.example.com"),  # --include-crds
        ("ConfigMap", "web-settings"),  # the release is named after the directory
        ("Deployment", "web"),
    ]  # and the test Pod is left out
    assert objects[1]["data"] == {
        "color": "grey",
        "size": "small",
        "shape": "round",
        "kube": objects[1]["data"]["kube"],
    }


async def test_values_files_then_inline_values_override_each_other(tmp_path: Path) -> None:
    write_tree(tmp_path, CHART)
    helm = HelmOptions(
        values_files=("values-prod.yaml", "values-eu.yaml"), values={"shape": "square"}, release_name="shop"
    )
    request = RenderRequest(root=tmp_path, path="charts/web", helm=helm, namespace="store", kube_version="1.31.4")
    objects = await render(request)
    config = next(obj for obj in objects if obj["kind"] == "ConfigMap")
    assert config["metadata"] == {"name": "shop-settings", "namespace": "store"}
    assert config["data"] == {"color": "blue", "size": "medium", "shape": "square", "kube": "v1.31.4"}


async def test_inline_values_win_over_values_files(tmp_path: Path) -> None:
    write_tree(tmp_path, CHART)
    helm = HelmOptions(values_files=("values-prod.yaml",), values={"color": "red"})
    [_, config, _] = await render(RenderRequest(root=tmp_path, path="charts/web", helm=helm))
    assert (config["data"]["color"], config["data"]["size"]) == ("red", "large")


async def test_a_chart_at_the_repository_root_takes_its_release_name_from_the_chart(tmp_path: Path) -> None:
    write_tree(tmp_path, {name.removeprefix("charts/web/"): text for name, text in CHART.items()})
    objects = await render(RenderRequest(root=tmp_path, path="."))
    assert {obj["metadata"]["name"] for obj in objects} == {"widgets.example.com", "web-settings", "web"}


@pytest.mark.parametrize(
    ("values_file", "message"),
    [
        ("../../../outside.yaml", r"the values file '../../../outside.yaml' of the chart charts/web is outside"),
        ("/etc/hostname", r"the values file '/etc/hostname' of the chart charts/web must be a relative path"),
        ("missing.yaml", r"the values file 'missing.yaml' of the chart charts/web does not exist"),
    ],
)
async def test_values_files_must_be_files_inside_the_repository(tmp_path: Path, values_file: str, message: str) -> None:
    repo = write_tree(tmp_path / "repo", CHART)
    (tmp_path / "outside.yaml").write_text("color: stolen\n")
    helm = HelmOptions(values_files=(values_file,))
    with pytest.raises(RenderError, match=message):
        await render(RenderRequest(root=repo, path="charts/web", helm=helm))


async def test_template_errors_carry_helms_message(tmp_path: Path) -> None:
    write_tree(tmp_path, CHART | {"charts/web/templates/broken.yaml": "{{ .Values.nope.deeper }}\n"})
    with pytest.raises(RenderError, match=r"^helm template of charts/web failed: .*broken.yaml.*nil pointer"):
        await render(RenderRequest(root=tmp_path, path="charts/web"))


async def test_errors_in_rendered_objects_name_the_template(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        CHART | {"charts/web/templates/nameless.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {labels: {a: b}}\n"},
    )
    with pytest.raises(
        RenderError, match=r"^web/templates/nameless.yaml \(chart charts/web\) document 1 \(ConfigMap\) has no metadata"
    ):
        await render(RenderRequest(root=tmp_path, path="charts/web"))
