"""The one way Moor derives a name or label value from another name, within Kubernetes' length limits.

A derived name that fits is the plain concatenation, so short names stay as users expect them. One that
does not keeps a readable prefix of the base, then a hash of the whole base, then the suffix: two bases
that share a long prefix still get different names, and every name derived from one base (the records
of one Sync) shares its prefix and sorts by its suffix.
"""

from __future__ import annotations

import hashlib

DNS_SUBDOMAIN_MAX = 253
"""Most object names (Secrets, custom resources, Events, Leases): DNS-1123 subdomains."""
LABEL_VALUE_MAX = 63
"""Label values."""
DNS_LABEL_MAX = 63
"""Names that must be DNS-1123 labels (Namespaces, Services)."""

_HASH_LENGTH = 10
_SEPARATORS = ".-_"


def fit_name(base: str, suffix: str = "", *, limit: int = DNS_SUBDOMAIN_MAX) -> str:
    """`base + suffix` when it fits in `limit` characters, else `<base cut short>-<hash of base><suffix>`.

    `base` must be a valid name or label value (it starts with a letter or digit), so is the result.
    """
    if len(base) + len(suffix) <= limit:
        return base + suffix
    room = limit - len(suffix) - _HASH_LENGTH - 1
    if room < 1:
        raise ValueError(f"a name of at most {limit} characters cannot end with {suffix!r} and a hash")
    digest = hashlib.sha256(base.encode()).hexdigest()[:_HASH_LENGTH]
    prefix = base[:room].rstrip(_SEPARATORS)
    return f"{prefix}-{digest}{suffix}" if prefix else f"{digest}{suffix}"
