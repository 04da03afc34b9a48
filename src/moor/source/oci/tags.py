"""Scanning a repository's tags, conditionally: the registry's pages as it sends them, ETags remembered.

Only tag strings are kept (never a page's body beyond its parsing), so 100,000 tags cost their strings.
A registry that offers an ETag per page is asked with If-None-Match next time; a 304 reuses that page's
tags from the previous scan, so an unchanged single-page repository costs one request, and one that
changed costs one request per page.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from moor.source.oci.client import RegistryClient
from moor.source.oci.errors import RegistryError


@dataclass(frozen=True)
class ScannedPage:
    url: str
    etag: str | None
    tags: tuple[str, ...]


@dataclass(frozen=True)
class TagScan:
    pages: tuple[ScannedPage, ...]
    unchanged: bool
    """Every page was answered 304: the registry says nothing changed since the previous scan."""

    def tags(self) -> Iterator[str]:
        for page in self.pages:
            yield from page.tags


async def scan_tags(client: RegistryClient, repository: str, previous: TagScan | None = None) -> TagScan:
    """Every tag of `repository`, asking conditionally for the pages `previous` saw with an ETag."""
    remembered = {page.url: page for page in previous.pages} if previous is not None else {}
    known = {url: page.etag for url, page in remembered.items() if page.etag}
    pages: list[ScannedPage] = []
    unchanged = previous is not None
    async for page in client.tag_pages(repository, known):
        if page.tags is None:
            earlier = remembered.get(page.url)
            if earlier is None:
                raise RegistryError(f"the registry said a page of tags it never sent has not changed ({page.url})")
            pages.append(earlier)
            continue
        unchanged = False
        pages.append(ScannedPage(page.url, page.etag, tuple(page.tags)))
    if previous is not None and len(pages) != len(previous.pages):
        unchanged = False
    return TagScan(tuple(pages), unchanged)
