"""Duplicate groups: connected components over cascades, platform videos and content hashes.

A few FVC URLs appear in more than one cascade, so a cascade alone is not a
group. Every video, cascade, URL and content hash is a node; a manifest row
joins its cascade to its URL, a local file joins its hash and its rows. Every
augmentation later inherits its source video's group.
"""

from __future__ import annotations

from collections.abc import Iterable


class UnionFind:
    def __init__(self) -> None:
        self._parent: dict[str, str] = {}

    def find(self, node: str) -> str:
        parent = self._parent.setdefault(node, node)
        if parent != node:
            parent = self._parent[node] = self.find(parent)
        return parent

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            # Keep the smaller name as root so the result does not depend on order.
            if rb < ra:
                ra, rb = rb, ra
            self._parent[rb] = ra

    def components(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for node in list(self._parent):
            out.setdefault(self.find(node), []).append(node)
        return out


def url_node(platform: str | None, platform_id: str | None, url: str) -> str:
    if platform and platform_id:
        return f"url:{platform}:{platform_id}"
    return f"url:{url.strip().rstrip('/').lower()}"


def dup_groups(
    manifest_links: Iterable[tuple[str, str]],
    videos: Iterable[tuple[str, str, Iterable[str]]],
) -> dict[str, str]:
    """Group name for every video.

    ``manifest_links``: (cascade_id, url node) per manifest row.
    ``videos``: (video key, content hash, cascade ids of its manifest rows).
    A group is named after the smallest cascade id in it (``cascade:f0``), or
    after the smallest content hash when no manifest names it (``hash:1a2b…``).
    """
    uf = UnionFind()
    for cascade, url in manifest_links:
        uf.union(f"cascade:{cascade}", url)
    video_keys = []
    for key, content_hash, cascades in videos:
        node = f"video:{key}"
        video_keys.append(node)
        uf.union(node, f"hash:{content_hash}")
        for cascade in cascades:
            uf.union(node, f"cascade:{cascade}")
    names: dict[str, str] = {}
    for root, members in uf.components().items():
        cascades = sorted(m for m in members if m.startswith("cascade:"))
        hashes = sorted(m for m in members if m.startswith("hash:"))
        names[root] = cascades[0] if cascades else (hashes[0][:17] if hashes else root)
    return {node.removeprefix("video:"): names[uf.find(node)] for node in video_keys}
