"""`moor convert`: Flux and Argo CD manifests as the equivalent Moor objects (pure: documents in,
documents and notes out). Every field that has no place in Moor is named in a note with the reason;
documents of other kinds pass through untouched, so a whole directory can be converted at once."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from moor.convert import argo, flux
from moor.convert.notes import Note, describe


@dataclass(frozen=True)
class Conversion:
    """The Moor objects (and the untouched others), in input order, and the notes."""

    objects: tuple[dict[str, Any], ...]
    notes: tuple[Note, ...]


_FLUX = {
    ("source.toolkit.fluxcd.io", "GitRepository"): flux.git_repository,
    ("source.toolkit.fluxcd.io", "OCIRepository"): flux.oci_repository,
    ("source.toolkit.fluxcd.io", "HelmRepository"): flux.helm_repository,
    ("kustomize.toolkit.fluxcd.io", "Kustomization"): flux.kustomization,
    ("helm.toolkit.fluxcd.io", "HelmRelease"): flux.helm_release,
}


def convert_documents(documents: Iterable[Mapping[str, Any]], *, namespace: str | None = None) -> Conversion:
    """Converts every Flux and Argo CD object of `documents`; `namespace` puts every converted object
    (and the references between them) into one namespace instead of each input's own."""
    objects: list[dict[str, Any]] = []
    notes: list[Note] = []
    sources = argo.SourceNames()
    for document in documents:
        group = str(document.get("apiVersion") or "").rpartition("/")[0]
        kind = str(document.get("kind") or "")
        converter = _FLUX.get((group, kind))
        if converter is not None:
            converted, found = converter(document)
            objects.extend([converted] if converted else [])
            notes.extend(found)
        elif (group, kind) == ("argoproj.io", "Application"):
            made, found = argo.application(document, sources)
            objects.extend(made)
            notes.extend(found)
        elif (group, kind) == ("argoproj.io", "AppProject"):
            notes.extend(argo.app_project(document))
        else:
            objects.append(dict(document))
            if group.endswith(("fluxcd.io", "argoproj.io")):
                notes.append(Note(describe(document), "kind", f"Moor has no equivalent of {kind}: passed through"))
    if namespace:
        objects = [_into(obj, namespace) for obj in objects]
    return Conversion(tuple(objects), tuple(notes))


def _into(obj: dict[str, Any], namespace: str) -> dict[str, Any]:
    """A converted object moved into `namespace`, with its source and dependency references."""
    if not str(obj.get("apiVersion") or "").startswith("moor.dev/"):
        return obj
    moved = {**obj, "metadata": {**obj["metadata"], "namespace": namespace}}
    spec = dict(obj.get("spec") or {})
    if isinstance(spec.get("sourceRef"), Mapping):
        spec["sourceRef"] = {key: value for key, value in spec["sourceRef"].items() if key != "namespace"}
    if spec.get("dependsOn"):
        spec["dependsOn"] = [{"name": entry["name"]} for entry in spec["dependsOn"]]
    moved["spec"] = spec
    return moved


__all__ = ["Conversion", "Note", "convert_documents"]
