"""The names of Moor's own API: group, version, kinds and plurals, as the CRDs declare them."""

from __future__ import annotations

from dataclasses import dataclass

GROUP = "moor.dev"
VERSION = "v1"
API_VERSION = f"{GROUP}/{VERSION}"


@dataclass(frozen=True)
class CustomResourceKind:
    kind: str
    plural: str
    singular: str

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{GROUP}"


GITREPOSITORY = CustomResourceKind(kind="GitRepository", plural="gitrepositories", singular="gitrepository")
OCIREPOSITORY = CustomResourceKind(kind="OCIRepository", plural="ocirepositories", singular="ocirepository")
HELMREPOSITORY = CustomResourceKind(kind="HelmRepository", plural="helmrepositories", singular="helmrepository")
IMAGEREPOSITORY = CustomResourceKind(kind="ImageRepository", plural="imagerepositories", singular="imagerepository")
IMAGEPOLICY = CustomResourceKind(kind="ImagePolicy", plural="imagepolicies", singular="imagepolicy")
IMAGEUPDATE = CustomResourceKind(kind="ImageUpdate", plural="imageupdates", singular="imageupdate")
SYNC = CustomResourceKind(kind="Sync", plural="syncs", singular="sync")
SYNC_RECORD = CustomResourceKind(kind="SyncRecord", plural="syncrecords", singular="syncrecord")
PROVIDER = CustomResourceKind(kind="Provider", plural="providers", singular="provider")
ALERT = CustomResourceKind(kind="Alert", plural="alerts", singular="alert")
