"""Render: a path of a repository checkout (plain YAML, a kustomization or a Helm chart) into the desired
objects, validated and in apply order. Pure apart from running kustomize and helm."""

from moor.render.errors import RenderError
from moor.render.renderer import render
from moor.render.request import DecryptionKeys, HelmOptions, RenderLimits, RenderRequest
from moor.render.sops import decryption_keys

__all__ = [
    "DecryptionKeys",
    "HelmOptions",
    "RenderError",
    "RenderLimits",
    "RenderRequest",
    "decryption_keys",
    "render",
]
