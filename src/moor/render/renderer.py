"""A Sync's path of a checkout in, validated objects in apply order out."""

from __future__ import annotations

import asyncio

from moor.objects import KubeObject
from moor.ordering import in_apply_order
from moor.render.documents import Document, ParseBudget, parse_json, parse_yaml, read_source
from moor.render.errors import RenderError
from moor.render.helm import template_chart
from moor.render.kustomize import build_kustomization
from moor.render.request import RenderRequest
from moor.render.sops import decrypt_documents
from moor.render.tree import SourceKind, Target, locate_target, manifest_files, relative, walk_files
from moor.render.validate import collect_objects


async def render(request: RenderRequest) -> list[KubeObject]:
    """Renders plain YAML, a kustomization or a Helm chart into checked objects, in apply order.

    Labels and namespaces are not added here (that needs discovery); an empty result is not an error,
    the caller decides what an empty path means. SOPS-encrypted documents of the output are decrypted
    with `request.decryption` before anything is checked.
    """
    target = await asyncio.to_thread(locate_target, request.root, request.path)
    if request.helm is not None and target.kind is not SourceKind.HELM_CHART:
        raise RenderError(f"spec.helm is set but {target.display} is a {target.kind.value} directory, not a Helm chart")
    budget = ParseBudget(request.limits)
    if target.kind is SourceKind.PLAIN:
        documents = await asyncio.to_thread(_plain_documents, target, budget)
    else:
        await asyncio.to_thread(walk_files, target.path, target.root, include_hidden=True)
        if target.kind is SourceKind.KUSTOMIZATION:
            documents = await build_kustomization(target, request.limits, budget)
        else:
            documents = await template_chart(target, request, budget)
    documents = await decrypt_documents(
        documents, request.decryption, request.limits, keep_encrypted=request.keep_encrypted
    )
    return await asyncio.to_thread(_ordered_objects, documents)


def _plain_documents(target: Target, budget: ParseBudget) -> list[Document]:
    documents: list[Document] = []
    for path in manifest_files(target):
        source = relative(path, target.root)
        data = read_source(path, source, budget.limits)
        parse = parse_json if path.suffix.lower() == ".json" else parse_yaml
        documents += parse(data, source, budget)
    return documents


def _ordered_objects(documents: list[Document]) -> list[KubeObject]:
    return in_apply_order(collect_objects(documents))
