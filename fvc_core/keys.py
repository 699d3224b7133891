"""Partition keys for videos: sanitised file names, unique, safe in paths and Dagster keys."""

from __future__ import annotations

import re

MAX_KEY_LENGTH = 96
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
_DOTS = re.compile(r"\.{2,}")


def sanitize_video_id(stem: str) -> str:
    """Map a file stem to ``[A-Za-z0-9_.-]+``.

    Runs of other characters (spaces, commas, pipes, quotes, unicode) become
    one ``_``; runs of dots collapse to one and leading dots go, so a key is
    never ``.``/``..`` nor a hidden name. A leading ``-`` is kept: YouTube ids
    such as ``-Wgsj0ne_9M`` begin with one and users search by them.
    """
    key = _UNSAFE.sub("_", stem)
    key = _DOTS.sub(".", key).lstrip("._").rstrip("_") or "video"
    return key[:MAX_KEY_LENGTH]


def unique_key(stem: str, content_hash: str, taken: set[str] | dict[str, object]) -> str:
    """The sanitised id, or with a short content-hash suffix (and a counter) when already taken."""
    base = sanitize_video_id(stem)
    if base not in taken:
        return base
    candidate = f"{base}-{content_hash[:8]}"
    n = 2
    while candidate in taken:
        candidate = f"{base}-{content_hash[:8]}-{n}"
        n += 1
    return candidate


_SAFE_KEY = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*$")


def is_safe_key(key: str) -> bool:
    """True for keys that are safe as one path component and in Dagster multi-partition keys."""
    return bool(_SAFE_KEY.match(key)) and ".." not in key
