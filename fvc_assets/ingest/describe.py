"""One row per video for ``raw_videos``: probe, content hash, label, cascade, platform, group."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from fvc_assets.ingest.groups import dup_groups, url_node
from fvc_assets.ingest.manifest import Manifest, ManifestRow, RowIndex
from fvc_assets.ingest.registration import Registration
from fvc_resources.video import probe

FOLDER_LABELS = {"fake": "fake", "real": "real"}


@dataclass(frozen=True)
class LabelInfo:
    label: str  # fake | real | uncertain | debunked | parody | unknown
    source: str  # manifest | folder | none
    note: str = ""


def folder_label(relpath: str) -> str | None:
    """``fake`` or ``real`` from the nearest parent folder of that name inside the inbox."""
    for part in reversed(Path(relpath).parts[:-1]):
        label = FOLDER_LABELS.get(part.lower())
        if label:
            return label
    return None


def resolve_label(rows: list[ManifestRow], relpath: str) -> LabelInfo:
    labels = Counter(r.label for r in rows)
    if len(labels) == 1:
        return LabelInfo(next(iter(labels)), "manifest")
    if len(labels) > 1:
        # The same URL in cascades with different labels: keep it out of training, and say why.
        listed = ", ".join(f"{k} ({n})" for k, n in sorted(labels.items()))
        return LabelInfo("uncertain", "manifest", f"conflicting manifest labels: {listed}")
    from_folder = folder_label(relpath)
    if from_folder:
        return LabelInfo(from_folder, "folder")
    return LabelInfo("unknown", "none")


def platform_of(rows: list[ManifestRow]) -> str:
    """The platform of a video's manifest rows: the one they name, ``mixed``, or ``unknown``."""
    platforms = sorted({r.platform for r in rows if r.platform})
    return platforms[0] if len(platforms) == 1 else ("mixed" if platforms else "unknown")


def manipulation_of(rows: list[ManifestRow]) -> str | None:
    """The manipulation family a video's manifest rows name: the one, ``mixed``, or None."""
    names = sorted({r.manipulation for r in rows if r.manipulation})
    return names[0] if len(names) == 1 else ("mixed" if names else None)


def all_rows(manifests: list[Manifest]) -> list[ManifestRow]:
    return [row for m in manifests for row in m.rows]


def group_index(registry: dict[str, Registration], manifests: list[Manifest],
                rows: RowIndex | None = None) -> dict[str, str]:
    """dup_group of every registered video, over all manifests and all content hashes."""
    every_row = all_rows(manifests)
    rows = rows or RowIndex(every_row)
    links = [(r.cascade_id, url_node(r.platform, r.platform_id, r.video_url)) for r in every_row]
    videos = [
        (key, reg.sha256, {r.cascade_id for r in rows.rows_for_file(reg.path)})
        for key, reg in registry.items()
    ]
    return dup_groups(links, videos)


def video_identity(
    registration: Registration,
    manifests: list[Manifest],
    registry: dict[str, Registration],
) -> dict:
    """Label, cascades, URLs, platform and dup_group of one registered video (no decoding); the group
    over the manifests and the videos in ``registry``."""
    index = RowIndex(all_rows(manifests))
    rows = index.rows_for_file(registration.path)
    label = resolve_label(rows, registration.relpath)
    return {
        "label": label.label,
        "label_source": label.source,
        "label_note": label.note,
        "cascade_ids": sorted({r.cascade_id for r in rows}),
        "video_urls": sorted({r.video_url for r in rows if r.video_url}),
        "platform": platform_of(rows),
        "manipulation": manipulation_of(rows),
        "dup_group": group_index(registry, manifests, index)[registration.key],
    }


def describe_video(registration: Registration, identity: dict) -> dict:
    """The ``raw_videos`` row of one video. Raises VideoError when the file is not a usable video."""
    facts = probe(registration.path)
    return {
        "video_id": registration.key,
        "path": registration.path,
        "relpath": registration.relpath,
        "sha256": registration.sha256,
        **{k: v for k, v in facts.as_dict().items() if k != "path"},
        **identity,
    }
