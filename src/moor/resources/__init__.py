"""Moor's custom resources as typed values: pure parsing of GitRepository and Sync objects.

Kubernetes objects stay plain dicts everywhere else; these specs are what the controller reads from
them, with the CRDs' defaults filled in and every field checked, so a bad spec fails with a message
that names the object and the field.
"""

from moor.resources.conditions import Condition, get_condition, is_condition_true, remove_condition, set_condition
from moor.resources.durations import DurationError, format_duration, parse_duration
from moor.resources.fields import SpecError
from moor.resources.gitrepository import GitRepositorySpec, VerifyMode, VerifySpec
from moor.resources.kinds import (
    ALERT,
    API_VERSION,
    GITREPOSITORY,
    GROUP,
    HELMREPOSITORY,
    IMAGEPOLICY,
    IMAGEREPOSITORY,
    IMAGEUPDATE,
    OCIREPOSITORY,
    PROVIDER,
    SYNC,
    SYNC_RECORD,
    VERSION,
    CustomResourceKind,
)
from moor.resources.ocirepository import OCIRepositorySpec
from moor.resources.sync import (
    ApprovalMode,
    DecryptionProvider,
    DecryptionSpec,
    DependencyRef,
    DriftIgnoreRule,
    DriftMode,
    DriftSpec,
    HelmSpec,
    SourceRef,
    SyncSpec,
)

__all__ = [
    "ALERT",
    "API_VERSION",
    "GITREPOSITORY",
    "GROUP",
    "HELMREPOSITORY",
    "IMAGEPOLICY",
    "IMAGEREPOSITORY",
    "IMAGEUPDATE",
    "OCIREPOSITORY",
    "PROVIDER",
    "SYNC",
    "SYNC_RECORD",
    "VERSION",
    "ApprovalMode",
    "Condition",
    "CustomResourceKind",
    "DecryptionProvider",
    "DecryptionSpec",
    "DependencyRef",
    "DriftIgnoreRule",
    "DriftMode",
    "DriftSpec",
    "DurationError",
    "GitRepositorySpec",
    "HelmSpec",
    "OCIRepositorySpec",
    "SourceRef",
    "SpecError",
    "SyncSpec",
    "VerifyMode",
    "VerifySpec",
    "format_duration",
    "get_condition",
    "is_condition_true",
    "parse_duration",
    "remove_condition",
    "set_condition",
]
