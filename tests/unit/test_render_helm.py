"""Helm charts are rendered by the real `helm template` with the Sync's values, release and namespace."""

from __future__ import annotations

from pathlib import Path

import pytest

from moor.render import HelmOptions, RenderError, RenderRequest, render
from moor.render.helm import CHART_CRD_ANNOTATION
from moor.render.request import MAX_VALUES_LAYER_BYTES, ValuesLayer


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


def layer(text: str, *, secret: bool = False, name: str = "web-values") -> ValuesLayer:
    kind = "Secret" if secret else "ConfigMap"
    return ValuesLayer(f"the {kind} apps/{name} (key values.yaml)", text.encode(), secret=secret)


async def test_values_merge_in_order_chart_files_value_sources_inline(tmp_path: Path) -> None:
    """chart defaults < valuesFiles < valuesFrom (in order) < inline values: the later wins."""
    write_tree(tmp_path, CHART)
    helm = HelmOptions(
        values_files=("values-prod.yaml",),  # color blue, size large
        values_from=(layer("size: medium\nshape: oval\n"), layer("shape: square\n", secret=True)),
        values={"color": "red"},
    )
    [_, config, _] = await render(RenderRequest(root=tmp_path, path="charts/web", helm=helm))
    assert config["data"] | {"kube": ""} == {"color": "red", "size": "medium", "shape": "square", "kube": ""}


async def test_an_empty_value_source_adds_nothing(tmp_path: Path) -> None:
    write_tree(tmp_path, CHART)
    helm = HelmOptions(values_from=(layer("# nothing here\n"),))
    [_, config, _] = await render(RenderRequest(root=tmp_path, path="charts/web", helm=helm))
    assert config["data"]["color"] == "grey"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- a\n- b\n", r"the ConfigMap apps/web-values \(key values.yaml\) must hold one YAML mapping of values"),
        ("just a string\n", r"the ConfigMap apps/web-values \(key values.yaml\) must hold one YAML mapping"),
        ("a: 1\n---\nb: 2\n", r"the ConfigMap apps/web-values \(key values.yaml\) must hold one YAML mapping"),
        ("a: [1\n", r"the ConfigMap apps/web-values \(key values.yaml\) is not valid YAML"),
        ("a: " + "x" * (MAX_VALUES_LAYER_BYTES + 1), r"holds \d+ bytes of values; at most 1 MiB are allowed"),
    ],
)
async def test_a_value_source_must_be_a_small_yaml_mapping(tmp_path: Path, text: str, message: str) -> None:
    write_tree(tmp_path, CHART)
    with pytest.raises(RenderError, match=message):
        await render(RenderRequest(root=tmp_path, path="charts/web", helm=HelmOptions(values_from=(layer(text),))))


async def test_secret_values_never_appear_in_a_render_error(tmp_path: Path) -> None:
    marker = "hunter2-marker-5f0c"
    failing = '{{ fail (printf "bad password %s in %s" .Values.db.password (toYaml .Values)) }}\n'
    write_tree(tmp_path, CHART | {"charts/web/templates/check.yaml": failing})
    helm = HelmOptions(values_from=(layer(f"db:\n  password: {marker}\n", secret=True),))
    with pytest.raises(RenderError) as raised:
        await render(RenderRequest(root=tmp_path, path="charts/web", helm=helm))
    assert "bad password *** in" in str(raised.value)
    assert marker not in str(raised.value)


async def test_config_map_values_are_shown_in_errors(tmp_path: Path) -> None:
    failing = '{{ fail (printf "bad size %s" .Values.size) }}\n'
    write_tree(tmp_path, CHART | {"charts/web/templates/check.yaml": failing})
    helm = HelmOptions(values_from=(layer("size: enormous\n"),))
    with pytest.raises(RenderError, match="bad size enormous"):
        await render(RenderRequest(root=tmp_path, path="charts/web", helm=helm))


CAPABILITIES = {
    "charts/web/templates/monitor.yaml": """
{{- if .Capabilities.APIVersions.Has "monitoring.coreos.com/v1" }}
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata: {name: web}
spec: {endpoints: [{port: http}], selector: {matchLabels: {app: web}}}
{{- end }}
""",
    "charts/web/templates/release.yaml": """
apiVersion: v1
kind: ConfigMap
metadata: {name: release}
data:
  install: {{ .Release.IsInstall | quote }}
  upgrade: {{ .Release.IsUpgrade | quote }}
  monitor-kind: {{ .Capabilities.APIVersions.Has "monitoring.coreos.com/v1/ServiceMonitor" | quote }}
""",
}


async def test_the_chart_sees_the_api_versions_it_is_given(tmp_path: Path) -> None:
    write_tree(tmp_path, CHART | CAPABILITIES)
    bare = await render(RenderRequest(root=tmp_path, path="charts/web"))
    assert "ServiceMonitor" not in {obj["kind"] for obj in bare}
    served = ("monitoring.coreos.com/v1", "monitoring.coreos.com/v1/ServiceMonitor")
    objects = await render(RenderRequest(root=tmp_path, path="charts/web", api_versions=served))
    assert "ServiceMonitor" in {obj["kind"] for obj in objects}
    release = next(obj for obj in objects if obj["metadata"]["name"] == "release")
    assert release["data"]["monitor-kind"] == "true"


@pytest.mark.parametrize(("is_upgrade", "install", "upgrade"), [(False, "true", "false"), (True, "false", "true")])
async def test_install_or_upgrade_is_what_the_request_says(
    tmp_path: Path, is_upgrade: bool, install: str, upgrade: str
) -> None:
    write_tree(tmp_path, CHART | CAPABILITIES)
    objects = await render(RenderRequest(root=tmp_path, path="charts/web", is_upgrade=is_upgrade))
    release = next(obj for obj in objects if obj["metadata"]["name"] == "release")
    assert (release["data"]["install"], release["data"]["upgrade"]) == (install, upgrade)


async def test_the_charts_crds_are_marked_and_hooks_keep_their_generate_name(tmp_path: Path) -> None:
    hook = """
apiVersion: batch/v1
kind: Job
metadata:
  generateName: migrate-{{ randAlphaNum 5 | lower }}-
  annotations: {"helm.sh/hook": pre-install}
spec: {template: {spec: {restartPolicy: Never, containers: [{name: m, image: busybox}]}}}
"""
    write_tree(tmp_path, {**CHART, "charts/web/templates/hook.yaml": hook})

    objects = await render(RenderRequest(root=tmp_path, path="./charts/web"))

    by_kind = {obj["kind"]: obj for obj in objects}
    assert by_kind["CustomResourceDefinition"]["metadata"]["annotations"] == {CHART_CRD_ANNOTATION: "true"}
    job = by_kind["Job"]["metadata"]
    assert "name" not in job and job["annotations"] == {"helm.sh/hook": "pre-install"}, "no placeholder name"
    assert job["generateName"].startswith("migrate-")
    assert "annotations" not in by_kind["ConfigMap"]["metadata"], "templates' objects are not marked"
