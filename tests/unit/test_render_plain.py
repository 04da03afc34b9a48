"""Plain YAML directories: what a user puts in Git is what `render` returns, in apply order."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from moor.render import HelmOptions, RenderError, RenderLimits, RenderRequest, render


def write_tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def names(objects: list[dict]) -> list[str]:
    return [f"{obj['kind']}/{obj['metadata']['name']}" for obj in objects]


CONFIG_MAP = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n"


async def test_renders_every_yaml_and_json_file_recursively_in_path_order(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "app/b.yaml": CONFIG_MAP.format(name="b1") + "---\n" + CONFIG_MAP.format(name="b2"),
            "app/a.yml": CONFIG_MAP.format(name="a"),
            "app/sub/c.json": json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}),
            "app/sub/list.yaml": (
                "apiVersion: v1\nkind: List\nitems:\n"
                "- {apiVersion: v1, kind: ConfigMap, metadata: {name: item1}}\n"
                "- {apiVersion: v1, kind: ConfigMap, metadata: {name: item2}}\n"
            ),
            "app/README.md": "not a manifest",
            "app/.hidden.yaml": "this: is never read: at all",
            "app/.git/config.yaml": "neither: [is, this",
            "app/empty.yaml": "---\n# only a comment\n---\n",
        },
    )
    objects = await render(RenderRequest(root=tmp_path, path="./app"))
    assert names(objects) == [
        "ConfigMap/a",
        "ConfigMap/b1",
        "ConfigMap/b2",
        "ConfigMap/c",
        "ConfigMap/item1",
        "ConfigMap/item2",
    ]


async def test_objects_come_out_in_apply_order(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "all.yaml": """
apiVersion: example.com/v1
kind: Widget
metadata: {name: w}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
---
apiVersion: v1
kind: Service
metadata: {name: web}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: config}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: reader}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: web}
---
apiVersion: v1
kind: Namespace
metadata: {name: shop}
""",
        },
    )
    objects = await render(RenderRequest(root=tmp_path))
    assert names(objects) == [
        "Namespace/shop",
        "CustomResourceDefinition/widgets.example.com",
        "ClusterRole/reader",
        "ServiceAccount/web",
        "ConfigMap/config",
        "Service/web",
        "Widget/w",
        "Deployment/web",
    ]


async def test_a_single_file_path_renders_that_file(tmp_path: Path) -> None:
    write_tree(tmp_path, {"one.yaml": CONFIG_MAP.format(name="one"), "two.yaml": CONFIG_MAP.format(name="two")})
    assert names(await render(RenderRequest(root=tmp_path, path="one.yaml"))) == ["ConfigMap/one"]


async def test_an_empty_directory_renders_nothing(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert await render(RenderRequest(root=tmp_path, path="empty")) == []


async def test_a_missing_path_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RenderError, match=r"the path './nope' does not exist in the repository"):
        await render(RenderRequest(root=tmp_path, path="./nope"))


async def test_helm_options_on_a_plain_directory_are_refused(tmp_path: Path) -> None:
    write_tree(tmp_path, {"app/cm.yaml": CONFIG_MAP.format(name="a")})
    with pytest.raises(RenderError, match=r"spec.helm is set but app is a plain YAML directory"):
        await render(RenderRequest(root=tmp_path, path="app", helm=HelmOptions()))


async def test_malformed_yaml_names_the_file_and_line(tmp_path: Path) -> None:
    write_tree(tmp_path, {"app/bad.yaml": CONFIG_MAP.format(name="ok") + "---\nkind: ConfigMap\nmetadata: {name: [x\n"})
    with pytest.raises(RenderError, match=r"^app/bad.yaml is not valid YAML at line 8: "):
        await render(RenderRequest(root=tmp_path, path="app"))


async def test_malformed_json_names_the_file_and_line(tmp_path: Path) -> None:
    write_tree(tmp_path, {"app/bad.json": '{\n  "apiVersion": "v1",\n  "kind": ConfigMap\n}'})
    with pytest.raises(RenderError, match=r"^app/bad.json is not valid JSON at line 3: "):
        await render(RenderRequest(root=tmp_path, path="app"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("kind: ConfigMap\nmetadata: {name: a}\n", r"app/x.yaml document 1 \(line 1\) has no apiVersion"),
        ("apiVersion: v1\nmetadata: {name: a}\n", r"app/x.yaml document 1 \(line 1\) has no kind"),
        ("apiVersion: v1\nkind: ConfigMap\n", r"app/x.yaml document 1 \(line 1\) \(ConfigMap\) has no metadata$"),
        (
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {labels: {a: b}}\n",
            r"app/x.yaml document 1 \(line 1\) \(ConfigMap\) has no metadata.name",
        ),
        (
            CONFIG_MAP.format(name="a") + "---\n- just\n- a list\n",
            r"app/x.yaml document 2 \(line 6\) is a list, not a Kubernetes object",
        ),
        ("just a string\n", r"app/x.yaml document 1 \(line 1\) is a string, not a Kubernetes object"),
        (
            "apiVersion: v1\nkind: List\nitems:\n- 42\n",
            r"app/x.yaml document 1 \(line 1\) item 1 is a number, not a Kubernetes object",
        ),
    ],
)
async def test_documents_that_are_not_objects_are_refused(tmp_path: Path, text: str, message: str) -> None:
    write_tree(tmp_path, {"app/x.yaml": text})
    with pytest.raises(RenderError, match=message):
        await render(RenderRequest(root=tmp_path, path="app"))


async def test_typed_lists_are_unwrapped_as_kubectl_does(tmp_path: Path) -> None:
    """Monitoring stacks ship dashboards as ConfigMapLists whose items omit kind and apiVersion."""
    write_tree(
        tmp_path,
        {
            "app/dashboards.yaml": (
                "apiVersion: v1\nkind: ConfigMapList\nitems:\n"
                "- metadata: {name: grafana-nodes, labels: {grafana_dashboard: '1'}}\n"
                "  data: {nodes.json: '{}'}\n"
                "- {apiVersion: v1, kind: ConfigMap, metadata: {name: grafana-pods}}\n"
            ),
            "app/secrets.json": json.dumps(
                {"apiVersion": "v1", "kind": "SecretList", "items": [{"metadata": {"name": "token"}}]}
            ),
            "app/rules.yaml": (
                "apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRuleList\nmetadata: {}\nitems:\n"
                "- metadata: {name: alerts}\n  spec: {groups: []}\n"
            ),
            "app/empty.yaml": "apiVersion: v1\nkind: ServiceList\nitems: []\n",
        },
    )
    objects = await render(RenderRequest(root=tmp_path, path="app"))
    by_name = {obj["metadata"]["name"]: obj for obj in objects}
    assert sorted(by_name) == ["alerts", "grafana-nodes", "grafana-pods", "token"]
    assert by_name["grafana-nodes"] == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "grafana-nodes", "labels": {"grafana_dashboard": "1"}},
        "data": {"nodes.json": "{}"},
    }
    assert (by_name["token"]["apiVersion"], by_name["token"]["kind"]) == ("v1", "Secret")
    assert (by_name["alerts"]["apiVersion"], by_name["alerts"]["kind"]) == (
        "monitoring.coreos.com/v1",
        "PrometheusRule",
    )


async def test_a_list_of_mixed_kinds_and_lists_inside_lists_are_unwrapped(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "app/all.yaml": (
                "apiVersion: v1\nkind: List\nitems:\n"
                "- {apiVersion: v1, kind: Namespace, metadata: {name: shop}}\n"
                "- {apiVersion: v1, kind: Service, metadata: {name: web}}\n"
                "- apiVersion: v1\n  kind: ConfigMapList\n  items:\n  - metadata: {name: inner}\n"
            ),
        },
    )
    objects = await render(RenderRequest(root=tmp_path, path="app"))
    assert names(objects) == ["Namespace/shop", "ConfigMap/inner", "Service/web"]


async def test_a_kind_ending_in_list_without_items_is_an_object(tmp_path: Path) -> None:
    write_tree(tmp_path, {"app/x.yaml": "apiVersion: example.com/v1\nkind: AllowList\nmetadata: {name: ips}\n"})
    assert names(await render(RenderRequest(root=tmp_path, path="app"))) == ["AllowList/ips"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "apiVersion: v1\nkind: ConfigMapList\nitems:\n- metadata: {name: a}\n- metadata: {labels: {x: y}}\n",
            r"^app/x.yaml document 1 \(line 1\) item 2 \(ConfigMap\) has no metadata.name$",
        ),
        (
            "apiVersion: v1\nkind: ConfigMapList\nitems:\n- metadata: {name: a}\n"
            "- {apiVersion: v1, kind: Secret, metadata: {name: b}}\n",
            r"^app/x.yaml document 1 \(line 1\) item 2 is a Secret in a ConfigMapList, "
            r"which holds only ConfigMap objects$",
        ),
        (
            "apiVersion: v1\nkind: SecretList\nitems: {name: a}\n",
            r"^app/x.yaml document 1 \(line 1\) is a SecretList whose items are a mapping, not a list$",
        ),
        (
            "kind: ConfigMapList\nitems:\n- metadata: {name: a}\n",
            r"^app/x.yaml document 1 \(line 1\) item 1 has no apiVersion$",
        ),
    ],
)
async def test_typed_list_items_that_do_not_fit_are_named(tmp_path: Path, text: str, message: str) -> None:
    write_tree(tmp_path, {"app/x.yaml": text})
    with pytest.raises(RenderError, match=message):
        await render(RenderRequest(root=tmp_path, path="app"))


HPA = "kind: HorizontalPodAutoscaler\nmetadata: {name: web, namespace: shop}\n"


async def test_duplicates_name_both_sources_whatever_the_version(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "app/a.yaml": f"apiVersion: autoscaling/v1\n{HPA}",
            "app/b.yaml": CONFIG_MAP.format(name="x") + f"---\napiVersion: autoscaling/v2\n{HPA}",
        },
    )
    with pytest.raises(
        RenderError,
        match=r"^HorizontalPodAutoscaler.autoscaling shop/web is defined twice: "
        r"in app/a.yaml document 1 \(line 1\) and in app/b.yaml document 2 \(line 6\)$",
    ):
        await render(RenderRequest(root=tmp_path, path="app"))


async def test_same_name_in_other_namespaces_groups_or_kinds_is_no_duplicate(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "a.yaml": """
apiVersion: v1
kind: ConfigMap
metadata: {name: web, namespace: one}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: web, namespace: two}
---
apiVersion: v1
kind: Secret
metadata: {name: web, namespace: one}
---
apiVersion: example.com/v1
kind: ConfigMap
metadata: {name: web, namespace: one}
""",
        },
    )
    assert len(await render(RenderRequest(root=tmp_path))) == 4


async def test_a_yaml_bomb_is_refused_quickly(tmp_path: Path) -> None:
    levels = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    header = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bomb}\nlol:\n"
    write_tree(tmp_path, {"bomb.yaml": header + "".join(f"  {line}\n" for line in levels)})
    started = time.perf_counter()
    with pytest.raises(
        RenderError, match=r"^bomb.yaml is not valid YAML: aliases expand to more than 10000 extra nodes"
    ):
        await render(RenderRequest(root=tmp_path))
    assert time.perf_counter() - started < 1


async def test_a_few_aliases_of_a_large_node_are_refused(tmp_path: Path) -> None:
    big = "[" + ", ".join(["x"] * 3000) + "]"
    text = f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: a}}\nbig: &big {big}\n"
    text += "".join(f"copy{i}: *big\n" for i in range(4))
    write_tree(tmp_path, {"a.yaml": text})
    with pytest.raises(
        RenderError,
        match=r"^a.yaml is not valid YAML: aliases expand to more than 10000 extra nodes \(anchor at line 4\)$",
    ):
        await render(RenderRequest(root=tmp_path))


async def test_many_small_aliases_are_refused(tmp_path: Path) -> None:
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata:\n  base: &v x\n"
    text += "".join(f"  k{i}: *v\n" for i in range(101))
    write_tree(tmp_path, {"a.yaml": text})
    with pytest.raises(
        RenderError, match=r"^a.yaml is not valid YAML: the document uses more than 100 aliases \(anchor at line 5\)$"
    ):
        await render(RenderRequest(root=tmp_path))


async def test_an_alias_inside_its_own_anchor_is_refused(tmp_path: Path) -> None:
    write_tree(tmp_path, {"a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\nloop: &l [*l]\n"})
    with pytest.raises(
        RenderError,
        match=r"^a.yaml is not valid YAML: an alias refers to a node that contains it \(anchor at line 4\)$",
    ):
        await render(RenderRequest(root=tmp_path))


async def test_anchors_and_merge_keys_work_and_are_not_shared(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "a.yaml": """
apiVersion: v1
kind: ConfigMap
metadata:
  name: a
  labels: &labels {app: web, tier: front}
  annotations:
    <<: *labels
    tier: back
    note: merged
""",
        },
    )
    [obj] = await render(RenderRequest(root=tmp_path))
    assert obj["metadata"]["labels"] == {"app": "web", "tier": "front"}
    assert obj["metadata"]["annotations"] == {"app": "web", "tier": "back", "note": "merged"}
    obj["metadata"]["labels"]["app"] = "changed"
    assert obj["metadata"]["annotations"]["app"] == "web"


async def test_scalars_are_read_as_kubectl_reads_them_and_stay_json(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "a.yaml": """
apiVersion: v1
kind: ConfigMap
metadata: {name: a}
values:
  date: 2024-01-02
  time: 12:30
  equals: =
  octal: 0644
  hex: 0x1F
  big: 1_000
  float: 1.5
  answer: yes
  switch: off
  nothing: ~
  quoted: "true"
  version: 1.10
data:
  8080: tcp
  true: on
""",
        },
    )
    [obj] = await render(RenderRequest(root=tmp_path))
    assert obj["values"] == {
        "date": "2024-01-02",
        "time": "12:30",
        "equals": "=",
        "octal": 420,
        "hex": 31,
        "big": 1000,
        "float": 1.5,
        "answer": True,
        "switch": False,
        "nothing": None,
        "quoted": "true",
        "version": 1.1,
    }
    assert obj["data"] == {"8080": "tcp", "true": True}  # JSON keys are strings, as kubectl makes them
    json.dumps(obj)


async def test_duplicate_keys_are_refused_with_their_line(tmp_path: Path) -> None:
    write_tree(tmp_path, {"a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  name: b\n"})
    with pytest.raises(RenderError, match=r"^a.yaml is not valid YAML at line 5: the key 'name' appears twice"):
        await render(RenderRequest(root=tmp_path))


@pytest.mark.parametrize("value", ["!!binary aGVsbG8=", "!!python/object:os.system {}", "!custom x", "!!set {a, b}"])
async def test_tags_other_than_plain_data_are_refused(tmp_path: Path, value: str) -> None:
    write_tree(tmp_path, {"a.yaml": f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: a}}\ndata:\n  x: {value}\n"})
    with pytest.raises(RenderError, match=r"^a.yaml is not valid YAML at line 5: the tag .* is not allowed"):
        await render(RenderRequest(root=tmp_path))


async def test_files_above_the_size_limit_are_refused(tmp_path: Path) -> None:
    write_tree(tmp_path, {"big.yaml": CONFIG_MAP.format(name="a") + "data:\n  x: " + "y" * 2000 + "\n"})
    limits = RenderLimits(max_file_bytes=1000)
    with pytest.raises(RenderError, match=r"^big.yaml is larger than the limit of 1000 bytes$"):
        await render(RenderRequest(root=tmp_path, limits=limits))


async def test_the_total_size_and_document_count_are_bounded(tmp_path: Path) -> None:
    write_tree(tmp_path, {f"{i}.yaml": CONFIG_MAP.format(name=f"c{i}") for i in range(5)})
    with pytest.raises(RenderError, match=r"exceed the limit of 100 bytes in total at 1.yaml"):
        await render(RenderRequest(root=tmp_path, limits=RenderLimits(max_total_bytes=100)))
    with pytest.raises(RenderError, match=r"exceed the limit of 3 documents at 3.yaml"):
        await render(RenderRequest(root=tmp_path, limits=RenderLimits(max_documents=3)))


async def test_render_returns_fresh_objects_each_time(tmp_path: Path) -> None:
    write_tree(tmp_path, {"a.yaml": CONFIG_MAP.format(name="a")})
    request = RenderRequest(root=tmp_path)
    first = await render(request)
    first[0]["metadata"]["name"] = "changed"
    assert names(await render(request)) == ["ConfigMap/a"]


async def test_deeply_nested_documents_are_refused(tmp_path: Path) -> None:
    write_tree(tmp_path, {"a.yaml": CONFIG_MAP.format(name="a") + "x: " + "[" * 900 + "]" * 900 + "\n"})
    with pytest.raises(RenderError, match=r"^a.yaml is not valid YAML at line 1: the document is nested too deeply$"):
        await render(RenderRequest(root=tmp_path))


async def test_bytes_that_are_not_text_are_refused(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_bytes(b"apiVersion: v1\nkind: \xff\xfe\n")
    with pytest.raises(RenderError, match=r"^a.yaml is not valid YAML: unacceptable character #x00ff"):
        await render(RenderRequest(root=tmp_path))


async def test_the_pure_python_parser_reads_the_same_and_refuses_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PyYAML without libyaml (rare, but possible) still yields the same objects and the same refusals."""
    from moor.render import safe_yaml

    text = """
apiVersion: v1
kind: ConfigMap
metadata: {name: a, labels: &l {app: web}}
data: {date: 2024-01-02, time: "12:30", mode: 0644, on: yes, merged: {<<: *l, extra: x}}
"""
    write_tree(tmp_path, {"a.yaml": text})
    with_libyaml = await render(RenderRequest(root=tmp_path))
    monkeypatch.setattr(safe_yaml, "_composer_class", safe_yaml._PythonComposer)
    assert await render(RenderRequest(root=tmp_path)) == with_libyaml
    big = "[" + ", ".join(["x"] * 300) + "]"
    write_tree(tmp_path, {"b.yaml": f"a: &a {big}\n" + "".join(f"b{i}: *a\n" for i in range(50))})
    with pytest.raises(RenderError, match=r"^b.yaml is not valid YAML: aliases expand to more than 10000 extra nodes"):
        await render(RenderRequest(root=tmp_path))
