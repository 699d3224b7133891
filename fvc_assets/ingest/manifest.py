"""FVC manifests: CSV files with ``cascade_id, video_url, label`` (and optional ``path`` and
``manipulation``, the family of a fake's manipulation where it is known, as the demo corpus writes it).

A manifest row finds its local file by ``path`` (relative to the manifest) or,
without one, by the platform id in its URL: the YouTube ``v=`` id, the
Facebook numeric video id, or the Twitter status id, which is how people who
hold a local copy of the FVC videos name their files.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlparse

REQUIRED_COLUMNS = ("cascade_id", "video_url", "label")
KNOWN_LABELS = frozenset({"fake", "real", "uncertain", "debunked", "parody"})

_YOUTUBE_HOSTS = ("youtube.com", "youtu.be", "youtube-nocookie.com")
_FACEBOOK_HOSTS = ("facebook.com", "fb.watch", "fb.com")
_TWITTER_HOSTS = ("twitter.com", "x.com")
_DIGITS = re.compile(r"^\d+$")


@dataclass(frozen=True)
class ManifestRow:
    manifest: str
    line: int
    cascade_id: str
    video_url: str
    label: str
    path: str | None  # absolute, when the manifest names a local file
    platform: str | None
    platform_id: str | None
    manipulation: str | None = None  # the fake's manipulation family, when the manifest names one


@dataclass
class Manifest:
    path: str
    rows: list[ManifestRow] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _host_is(host: str, domains: tuple[str, ...]) -> bool:
    return any(host == d or host.endswith("." + d) for d in domains)


def parse_video_url(url: str) -> tuple[str | None, str | None]:
    """(platform, platform id) for a video URL; platform is None for an empty URL."""
    url = (url or "").strip()
    if not url:
        return None, None
    parsed = urlparse(url if "://" in url else "https://" + url)
    host = (parsed.hostname or "").lower()
    parts = [p for p in parsed.path.split("/") if p]
    if _host_is(host, _YOUTUBE_HOSTS):
        if host.endswith("youtu.be") and parts:
            return "youtube", parts[0]
        query = parse_qs(parsed.query)
        if query.get("v"):
            return "youtube", query["v"][0]
        if len(parts) >= 2 and parts[0] in ("shorts", "embed", "v", "live"):
            return "youtube", parts[1]
        return "youtube", None
    if _host_is(host, _FACEBOOK_HOSTS):
        query = parse_qs(parsed.query)
        if query.get("v") and _DIGITS.match(query["v"][0]):
            return "facebook", query["v"][0]
        if "videos" in parts:
            after = parts[parts.index("videos") + 1 :]
            digits = [p for p in after if _DIGITS.match(p)]
            if digits:
                return "facebook", digits[-1]
        return "facebook", None
    if _host_is(host, _TWITTER_HOSTS):
        if "status" in parts:
            after = parts[parts.index("status") + 1 :]
            if after and _DIGITS.match(after[0]):
                return "twitter", after[0]
        return "twitter", None
    return "other", None


def read_manifest(path: str | Path) -> Manifest:
    """Parse one manifest. Problems (missing columns, bad rows) are collected, never raised."""
    path = Path(path)
    manifest = Manifest(str(path))
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        manifest.problems.append(f"{path}: unreadable ({exc})")
        return manifest
    reader = csv.DictReader(text.splitlines())
    columns = [c.strip() for c in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        manifest.problems.append(f"{path}: not an FVC manifest, missing column(s) {', '.join(missing)}")
        return manifest
    reader.fieldnames = columns
    seen: dict[tuple, int] = {}
    for line, raw in enumerate(reader, start=2):
        if None in raw:
            manifest.problems.append(f"{path}:{line}: more fields than columns; row skipped")
            continue
        row = {k: (v or "").strip() for k, v in raw.items()}
        if not any(row.values()):
            continue
        cascade, url, label = row["cascade_id"], row["video_url"], row["label"].lower()
        local = row.get("path") or None
        if not cascade or not label or not (url or local):
            manifest.problems.append(
                f"{path}:{line}: needs cascade_id, label and video_url or path; row skipped"
            )
            continue
        if label not in KNOWN_LABELS:
            manifest.problems.append(f"{path}:{line}: unknown label {label!r}; kept as given")
        identity = (cascade, url, label, local)
        if identity in seen:
            manifest.problems.append(f"{path}:{line}: duplicate of line {seen[identity]}; ignored")
            continue
        seen[identity] = line
        if local and not (path.parent / local).exists():
            manifest.problems.append(f"{path}:{line}: path {local} not found; the row applies once that file lands")
        platform, platform_id = parse_video_url(url)
        manifest.rows.append(
            ManifestRow(
                manifest=str(path),
                line=line,
                cascade_id=cascade,
                video_url=url,
                label=label,
                path=str((path.parent / local).resolve()) if local else None,
                platform=platform,
                platform_id=platform_id,
                manipulation=row.get("manipulation") or None,
            )
        )
    return manifest


def manifest_problems(inbox: str | Path) -> list[str]:
    """Every problem of every manifest in the inbox, as 'file:line: what'."""
    return [problem for path in find_manifests(inbox) for problem in read_manifest(path).problems]


def find_manifests(inbox: str | Path) -> list[Path]:
    inbox = Path(inbox)
    if not inbox.is_dir():
        return []
    return sorted(p for p in inbox.rglob("*.csv") if p.is_file() and not p.name.startswith("."))


class RowIndex:
    """Manifest rows by local path and by platform id: what ``rows_for_file`` finds, without a scan of
    every row per file (FVC_dup has 5,199 rows, and a corpus as many files)."""

    def __init__(self, rows: list[ManifestRow]):
        self.by_path: dict[str, list[ManifestRow]] = {}
        self.by_platform_id: dict[str, list[ManifestRow]] = {}
        for row in rows:
            if row.path is not None:
                self.by_path.setdefault(row.path, []).append(row)
            elif row.platform_id:
                self.by_platform_id.setdefault(row.platform_id, []).append(row)

    def rows_for_file(self, file_path: str | Path) -> list[ManifestRow]:
        """Manifest rows that describe a local file: by its path, else by platform id == file stem."""
        file_path = Path(file_path)
        return list(self.by_path.get(str(file_path.resolve())) or self.by_platform_id.get(file_path.stem, []))


def rows_for_file(rows: list[ManifestRow], file_path: str | Path) -> list[ManifestRow]:
    """Manifest rows that describe a local file: by its path, else by platform id == file stem."""
    return RowIndex(rows).rows_for_file(file_path)