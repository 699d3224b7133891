"""Registering inbox files as videos: one small JSON record per video in the registry folder.

The registry is the one place that maps a partition key to its file. Both the
inbox sensor and ``fvc run`` register through :func:`register_new_videos`, so a
file gets the same key whichever saw it first. A key is claimed by hard-linking
a complete record into place, which fails if the key is taken: two registrars
at once can never hand one key to two files, and no record is ever half written.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from fvc_core.keys import sanitize_video_id, unique_key
from fvc_resources.video import VIDEO_EXTENSIONS


@dataclass(frozen=True)
class Registration:
    key: str
    path: str  # absolute path of the file as found in the inbox
    relpath: str  # path relative to the inbox
    sha256: str
    size_bytes: int
    registered_at: float

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Rejected:
    path: str
    reason: str


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def scan_inbox(inbox: str | Path) -> tuple[list[Path], list[Rejected]]:
    """Video files under the inbox (by extension), sorted; symlinks that leave the inbox are rejected."""
    inbox = Path(inbox)
    if not inbox.is_dir():
        return [], []
    root = inbox.resolve()
    found, rejected = [], []
    for path in sorted(inbox.rglob("*")):
        in_hidden_folder = any(part.startswith(".") for part in path.parent.relative_to(inbox).parts)
        if path.suffix.lower() not in VIDEO_EXTENSIONS or in_hidden_folder:
            continue
        if path.name.startswith("."):
            # Said out loud rather than skipped: a dot file is easily a video someone expects to see.
            rejected.append(Rejected(str(path), "hidden file (name starts with '.'); rename it to ingest it"))
            continue
        if path.is_symlink():
            target = path.resolve()
            if not target.is_relative_to(root):
                rejected.append(Rejected(str(path), f"symlink points outside the inbox ({target})"))
                continue
        if path.is_file():
            found.append(path)
    return found, rejected


def load_registry(registry_dir: str | Path) -> dict[str, Registration]:
    registry_dir = Path(registry_dir)
    if not registry_dir.is_dir():
        return {}
    out = {}
    for record in sorted(registry_dir.glob("*.json")):
        if record.name.startswith("."):
            continue
        data = json.loads(record.read_text())
        out[data["key"]] = Registration(**data)
    return out


def _claim(registry_dir: Path, registration: Registration) -> bool:
    """Create the key's record iff the key is free. True when this call claimed it."""
    target = registry_dir / f"{registration.key}.json"
    fd, tmp = tempfile.mkstemp(prefix=f".{registration.key}.tmp-", suffix=".json", dir=registry_dir)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(registration.as_dict(), f, indent=2, sort_keys=True)
        os.link(tmp, target)
        return True
    except FileExistsError:
        return False
    finally:
        os.unlink(tmp)


def register_new_videos(inbox: str | Path, registry_dir: str | Path) -> tuple[list[Registration], list[Rejected]]:
    """Register every inbox video file not registered yet. Input files are only read."""
    inbox, registry_dir = Path(inbox), Path(registry_dir)
    registry_dir.mkdir(parents=True, exist_ok=True)
    registry = load_registry(registry_dir)
    known_paths = {r.relpath for r in registry.values()}
    files, rejected = scan_inbox(inbox)
    new: list[Registration] = []
    for path in files:
        relpath = path.relative_to(inbox).as_posix()
        if relpath in known_paths:
            continue
        try:
            digest, size = file_sha256(path), path.stat().st_size
        except OSError as exc:
            rejected.append(Rejected(str(path), f"unreadable ({exc.strerror or exc})"))
            continue
        while True:
            key = unique_key(path.stem, digest, registry)
            registration = Registration(key, str(path.absolute()), relpath, digest, size, time.time())
            if _claim(registry_dir, registration):
                break
            registry = load_registry(registry_dir)  # someone else took it meanwhile
        registry[key] = registration
        known_paths.add(relpath)
        new.append(registration)
    return new, rejected


__all__ = [
    "Registration",
    "Rejected",
    "file_sha256",
    "load_registry",
    "register_new_videos",
    "sanitize_video_id",
    "scan_inbox",
]
