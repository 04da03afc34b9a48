"""Helm charts, rendered by the real `helm template` with a Sync's values, offline and without a cluster."""

from __future__ import annotations

import asyncio
import bisect
import json
import os
import re
from collections import Counter
from pathlib import Path, PurePosixPath
from typing import Any

from moor.binaries import locate
from moor.render.documents import Document, ParseBudget, parse_yaml, read_source
from moor.render.errors import RenderError
from moor.render.request import MAX_VALUES_LAYER_BYTES, MIB, HelmOptions, RenderRequest, ValuesLayer
from moor.render.tool import run_tool, scratch_directory, tool_environment
from moor.render.tree import CHART_FILE, Target, relative

_SOURCE_COMMENT = re.compile(rb"^# Source: (.+?)[ \t\r]*$", re.MULTILINE)
CHART_CRD_ANNOTATION = "moor.dev/chart-crd"
"""Marks a CustomResourceDefinition that comes from a chart's `crds/` directory (not from its templates)."""


async def template_chart(target: Target, request: RenderRequest, budget: ParseBudget) -> list[Document]:
    """`helm template` of the target chart, CRDs included, seeing the cluster's version and API versions.

    Hooks come out like other objects (Moor orders them into phases); tests do not (`--skip-tests`). The
    chart's `crds/` come out marked with CHART_CRD_ANNOTATION.

    Values merge in this order, the later winning: the chart's own values.yaml, `values_files`, each
    `values_from` layer in order, then the inline values.
    """
    options = request.helm or HelmOptions()
    layers = [_values_layer(layer, budget) for layer in options.values_from]
    hidden = {
        text
        for layer, values in zip(options.values_from, layers, strict=True)
        if layer.secret
        for text in _texts(values)
    }
    try:
        return await _template(target, request, options, layers, budget)
    except RenderError as error:
        if not hidden:
            raise
        raise RenderError(_redacted(str(error), hidden)) from None


async def _template(
    target: Target, request: RenderRequest, options: HelmOptions, layers: list[dict[str, Any]], budget: ParseBudget
) -> list[Document]:
    values_files = [await asyncio.to_thread(_values_file, target, name) for name in options.values_files]
    release = options.release_name
    if not release:
        release = await asyncio.to_thread(_default_release_name, target, request)
    helm = locate("helm")
    what = f"helm template of {target.display}"
    async with scratch_directory("moor-helm-") as scratch:
        argv = [str(helm), "template", release, str(target.path), "--include-crds", "--skip-tests"]
        namespace, kube_version = request.namespace, request.kube_version
        if namespace:
            argv += ["--namespace", namespace]
        if kube_version:
            argv += ["--kube-version", kube_version]
        for api_version in request.api_versions:
            argv += ["--api-versions", api_version]
        if request.is_upgrade:
            argv.append("--is-upgrade")
        for path in values_files:
            argv += ["--values", str(path)]
        for index, values in enumerate(layers):
            layer_file = scratch / f"values-from-{index}.json"
            await asyncio.to_thread(layer_file.write_text, json.dumps(values, default=str), encoding="utf-8")
            argv += ["--values", str(layer_file)]
        if options.values:
            inline = scratch / "inline-values.json"
            await asyncio.to_thread(inline.write_text, _values_json(options, target), encoding="utf-8")
            argv += ["--values", str(inline)]
        env = tool_environment(
            scratch,
            HELM_CACHE_HOME=str(scratch / "helm-cache"),
            HELM_CONFIG_HOME=str(scratch / "helm-config"),
            HELM_DATA_HOME=str(scratch / "helm-data"),
        )
        output = await run_tool(
            argv,
            what=what,
            cwd=target.path,
            env=env,
            time_limit=request.limits.tool_timeout,
            max_output=request.limits.max_total_bytes,
            root=target.root,
        )
    return await asyncio.to_thread(_documents, output, target, what, budget)


def _values_file(target: Target, name: str) -> Path:
    """A values file named relative to the chart, which must be a file inside the repository."""
    if not name or PurePosixPath(name).is_absolute():
        raise RenderError(f"the values file {name!r} of the chart {target.display} must be a relative path")
    resolved = Path(os.path.realpath(target.path / name))
    if not resolved.is_relative_to(target.root):
        raise RenderError(f"the values file {name!r} of the chart {target.display} is outside the repository")
    if not resolved.is_file():
        raise RenderError(f"the values file {name!r} of the chart {target.display} does not exist")
    return resolved


def _values_layer(layer: ValuesLayer, budget: ParseBudget) -> dict[str, Any]:
    """A `valuesFrom` key's values: a YAML mapping of at most MAX_VALUES_LAYER_BYTES (empty: no values)."""
    if len(layer.data) > MAX_VALUES_LAYER_BYTES:
        cap = MAX_VALUES_LAYER_BYTES // MIB
        raise RenderError(f"{layer.origin} holds {len(layer.data)} bytes of values; at most {cap} MiB are allowed")
    documents = [document for document in parse_yaml(layer.data, layer.origin, budget) if document.body is not None]
    if not documents:
        return {}
    if len(documents) > 1 or not isinstance(documents[0].body, dict):
        raise RenderError(f"{layer.origin} must hold one YAML mapping of values (key: value)")
    return documents[0].body


REDACTED = "***"
_SHORTEST_HIDDEN = 3
"""Secret values shorter than this are not searched for in messages: they would hide every number and word."""


def _texts(values: Any) -> set[str]:
    """Every string a values tree holds (its scalars, as Helm would print them), to keep out of messages."""
    if isinstance(values, dict):
        return {text for value in values.values() for text in _texts(value)}
    if isinstance(values, list):
        return {text for value in values for text in _texts(value)}
    if isinstance(values, bool) or values is None:
        return set()
    text = str(values)
    return {text, *(line for line in text.splitlines() if line.strip())} if len(text) >= _SHORTEST_HIDDEN else set()


def _redacted(message: str, hidden: set[str]) -> str:
    """`message` with every Secret-derived value replaced, the longest first (one may contain another)."""
    for text in sorted(hidden, key=len, reverse=True):
        if len(text) >= _SHORTEST_HIDDEN:
            message = message.replace(text, REDACTED)
    return message


def _default_release_name(target: Target, request: RenderRequest) -> str:
    """The chart's directory name; for a chart at the repository root (a cache directory), its own name."""
    if target.path != target.root:
        return target.path.name
    where = relative(target.path / CHART_FILE, target.root)
    data = read_source(target.path / CHART_FILE, where, request.limits)
    documents = parse_yaml(data, where, ParseBudget(request.limits))
    chart = documents[0].body if documents else None
    name = chart.get("name") if isinstance(chart, dict) else None
    if not isinstance(name, str) or not name:
        raise RenderError(f"{where} has no name, so spec.helm.releaseName must be set")
    return name


def _values_json(options: HelmOptions, target: Target) -> str:
    try:
        return json.dumps(dict(options.values))
    except (TypeError, ValueError) as error:
        raise RenderError(f"the inline values for the chart {target.display} are not plain data: {error}") from None


def _documents(output: bytes, target: Target, what: str, budget: ParseBudget) -> list[Document]:
    """Helm's output as documents named after the template each came from (`# Source:` comments)."""
    documents = parse_yaml(output, what, budget, whole_output=True)
    starts: list[int] = []
    templates: list[str] = []
    line, offset = 1, 0
    for match in _SOURCE_COMMENT.finditer(output):
        line += output.count(b"\n", offset, match.start())
        offset = match.start()
        starts.append(line)
        templates.append(match.group(1).decode("utf-8", "replace"))
    counts: Counter[str] = Counter()
    named: list[Document] = []
    for document in documents:
        found = bisect.bisect_right(starts, document.line or 0) - 1
        source = f"{templates[found]} (chart {target.display})" if found >= 0 else what
        counts[source] += 1
        body = document.body
        if isinstance(body, dict) and found >= 0:
            body = _marked(body, templates[found])
        named.append(Document(source, counts[source], None, body))
    return named


def _marked(body: dict[str, Any], template: str) -> dict[str, Any]:
    """`body` with the annotation that says it is one of the chart's CRDs, when it is."""
    metadata = body.get("metadata")
    if not isinstance(metadata, dict) or not _is_chart_crd(template) or body.get("kind") != "CustomResourceDefinition":
        return body
    annotations = metadata.get("annotations")
    marked = {**(annotations if isinstance(annotations, dict) else {}), CHART_CRD_ANNOTATION: "true"}
    return {**body, "metadata": {**metadata, "annotations": marked}}


def _is_chart_crd(template: str) -> bool:
    """`chart/crds/x.yaml` or `chart/charts/sub/crds/x.yaml`: a file of a chart's (or subchart's) crds/."""
    parts = template.split("/")
    return any(part == "crds" and (index == 1 or parts[index - 2] == "charts") for index, part in enumerate(parts))
