"""An ImageRepository's spec as a typed value: which image to scan, how often, how reached, which tags to drop."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from moor.images.names import ImageName
from moor.resources.fields import FieldReader
from moor.source.errors import InvalidSourceSpec

DEFAULT_INTERVAL = timedelta(minutes=5)
DEFAULT_TIMEOUT = timedelta(seconds=60)
DEFAULT_EXCLUSIONS = (r"^.*\.sig$", r"^.*\.att$", r"^.*\.sbom$")
"""cosign's signature, attestation and SBOM tags: never an image to run."""
MAX_EXCLUSIONS = 64


@dataclass(frozen=True)
class ImageRepositorySpec:
    image: ImageName
    interval: timedelta = DEFAULT_INTERVAL
    timeout: timedelta = DEFAULT_TIMEOUT
    secret_name: str | None = None
    """A kubernetes.io/dockerconfigjson Secret (or username/password)."""
    service_account_name: str | None = None
    """A ServiceAccount whose imagePullSecrets are tried after secretRef."""
    cert_secret_name: str | None = None
    insecure: bool = False
    exclusions: tuple[re.Pattern[str], ...] = tuple(re.compile(pattern) for pattern in DEFAULT_EXCLUSIONS)
    suspend: bool = False

    @classmethod
    def from_object(cls, obj: Mapping[str, Any]) -> ImageRepositorySpec:
        """Reads and checks an ImageRepository custom resource, filling in the CRD's defaults."""
        spec = FieldReader.spec_of(obj)
        text = spec.required_str("image", max_length=2048)
        try:
            image = ImageName.parse(text)
        except InvalidSourceSpec as error:
            raise spec.error("image", str(error)) from None
        patterns = spec.strings("exclusionList") if spec.has("exclusionList") else list(DEFAULT_EXCLUSIONS)
        if len(patterns) > MAX_EXCLUSIONS:
            raise spec.error("exclusionList", f"must hold at most {MAX_EXCLUSIONS} patterns")
        exclusions: list[re.Pattern[str]] = []
        for index, pattern in enumerate(patterns):
            try:
                exclusions.append(re.compile(pattern))
            except re.error as error:
                raise spec.error(
                    f"exclusionList[{index}]", f"{pattern!r} is not a regular expression: {error}"
                ) from None
        return cls(
            image=image,
            interval=spec.duration("interval", DEFAULT_INTERVAL),
            timeout=spec.duration("timeout", DEFAULT_TIMEOUT),
            secret_name=_name_of(spec.child("secretRef")),
            service_account_name=spec.name("serviceAccountName"),
            cert_secret_name=_name_of(spec.child("certSecretRef")),
            insecure=spec.boolean("insecure", False),
            exclusions=tuple(exclusions),
            suspend=spec.boolean("suspend", False),
        )


def _name_of(ref: FieldReader | None) -> str | None:
    return None if ref is None else ref.required_name("name")
