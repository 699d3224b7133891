"""Registering inbox files as videos: one small JSON record per video in the registry folder.

The registry is the one place that maps a partition key to its file. Both the
inbox sensor and ``fvc run`` register through :func:`register_new_videos`, so a
file gets the same key whichever saw it first. A key is claimed by hard-linking
a complete record into place, which fails if the key is taken: two registrars
at once can never hand one key to two files, and no record is ever half written.

A file is registered only once it has settled: not modified for ``settle_seconds``
(the sensor and ``fvc run`` pass the storage resource's ``inbox_settle_seconds``), and
unchanged while it was hashed; until then it is *waiting*. Names that downloaders and
copy tools use for unfinished files (``*.part``, ``*.crdownload``, ``*.tmp``, dot-files)
never have a video extension or are refused, so they are never registered.

A registered path whose content changes later (size or mtime differ, then the hash) is
*changed*: the new content becomes a new partition (the stem plus a hash suffix), the old
partition keeps its outputs, and ``raw_videos`` of the old key refuses to read the new
content. A file touched without a content change only has its mtime noted.

Reading the registry must not cost a file per video on every sensor tick and every
``raw_videos`` step (5,199 of them in FVC_dup), so each record written is also appended,
as one line, to ``.index.jsonl`` (under an flock). A reader takes the index when it names
exactly the records present (one directory listing, no record read); otherwise (a
record claimed but not yet indexed, a record removed by hand) it rebuilds the index from
the records. The records stay the truth; the index is only ever a copy of them.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from fvc_core.keys import sanitize_video_id, unique_key
from fvc_resources.atomic import write_json_atomic
from fvc_resources.video import VIDEO_EXTENSIONS


@dataclass(frozen=True)
class Registration:
    key: str
    path: str  # absolute path of the file as found in the inbox
    relpath: str  # path relative to the inbox
    sha256: str
    size_bytes: int
    registered_at: float
    mtime_ns: int | None = None  # the file's mtime when hashed (None in records from before it was kept)

    def as_dict(self) -> dict:
        return asdict(self)

    def matches(self, stat: os.stat_result) -> bool:
        """The file still looks like what was hashed (size, and mtime where recorded)."""
        return stat.st_size == self.size_bytes and self.mtime_ns in (None, stat.st_mtime_ns)


@dataclass(frozen=True)
class Rejected:
    path: str
    reason: str


@dataclass(frozen=True)
class Waiting:
    """A file still being written: not registered yet."""

    path: str
    modified_seconds_ago: float


@dataclass(frozen=True)
class Changed:
    """A registered path whose content changed: its new content is partition ``new_key``."""

    path: str
    old_key: str
    new_key: str


@dataclass
class InboxScan:
    new: list[Registration] = field(default_factory=list)  # new files and new content, registered now
    rejected: list[Rejected] = field(default_factory=list)
    waiting: list[Waiting] = field(default_factory=list)
    changed: list[Changed] = field(default_factory=list)
    registry: dict[str, Registration] = field(default_factory=dict)  # every record, after this scan


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


INDEX_NAME = ".index.jsonl"
_INDEX_LOCK = ".index.lock"


def _record_keys(registry_dir: Path) -> set[str]:
    return {e.name[:-5] for e in os.scandir(registry_dir) if e.name.endswith(".json") and not e.name.startswith(".")}


def _read_index(registry_dir: Path) -> dict[str, Registration]:
    """key -> its last indexed record; a last line still being appended is left out."""
    try:
        text = (registry_dir / INDEX_NAME).read_text()
    except FileNotFoundError:
        return {}
    lines = text.split("\n")
    complete = lines[:-1]  # what follows the last newline is an append in progress (or nothing)
    if not complete:
        return {}
    return {d["key"]: Registration(**d) for d in json.loads("[" + ",".join(complete) + "]")}


class _IndexLock:
    """Appends to the index and rebuilds of it, one at a time."""

    def __init__(self, registry_dir: Path):
        self.path = registry_dir / _INDEX_LOCK

    def __enter__(self):
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def __exit__(self, *exc):
        os.close(self.fd)


def _index_line(registration: Registration) -> str:
    return json.dumps(registration.as_dict(), sort_keys=True) + "\n"


def _append_to_index(registry_dir: Path, registration: Registration) -> None:
    with _IndexLock(registry_dir):
        with open(registry_dir / INDEX_NAME, "a") as f:
            f.write(_index_line(registration))


def _rebuild_index(registry_dir: Path) -> dict[str, Registration]:
    with _IndexLock(registry_dir):
        records = (load_registration(registry_dir, key) for key in sorted(_record_keys(registry_dir)))
        out = {r.key: r for r in records if r is not None}  # None: removed since the listing
        fd, tmp = tempfile.mkstemp(prefix=".index.tmp-", dir=registry_dir)
        with os.fdopen(fd, "w") as f:
            f.writelines(_index_line(r) for r in out.values())
        os.replace(tmp, registry_dir / INDEX_NAME)
    return out


def load_registry(registry_dir: str | Path) -> dict[str, Registration]:
    """key -> record of every registered video, sorted by key: from the index when it is complete."""
    registry_dir = Path(registry_dir)
    if not registry_dir.is_dir():
        return {}
    index = _read_index(registry_dir)
    if index.keys() != _record_keys(registry_dir):
        index = _rebuild_index(registry_dir)
    return dict(sorted(index.items()))


def load_registration(registry_dir: str | Path, key: str) -> Registration | None:
    """One video's record, read from its own file (what ``raw_videos`` needs of the registry for itself)."""
    try:
        return Registration(**json.loads((Path(registry_dir) / f"{key}.json").read_text()))
    except FileNotFoundError:
        return None


def registrations_with_content(registry_dir: str | Path, sha256: str) -> dict[str, Registration]:
    """key -> record of every indexed video with this content hash: a text search of the index, which
    parses only the matching lines (a video's step needs its duplicates, not all 5,199 records)."""
    try:
        text = (Path(registry_dir) / INDEX_NAME).read_text()
    except FileNotFoundError:
        return {}
    needle, out, start = f'"sha256": "{sha256}"', {}, 0
    while (found := text.find(needle, start)) != -1:
        end = text.find("\n", found)
        if end == -1:
            break  # an append in progress
        data = json.loads(text[text.rfind("\n", 0, found) + 1 : end])
        out[data["key"]] = Registration(**data)
        start = end
    return out


def _claim(registry_dir: Path, registration: Registration) -> bool:
    """Create the key's record iff the key is free. True when this call claimed it."""
    target = registry_dir / f"{registration.key}.json"
    fd, tmp = tempfile.mkstemp(prefix=f".{registration.key}.tmp-", suffix=".json", dir=registry_dir)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(registration.as_dict(), f, indent=2, sort_keys=True)
        os.link(tmp, target)
    except FileExistsError:
        return False
    finally:
        os.unlink(tmp)
    _append_to_index(registry_dir, registration)
    return True


def latest_by_path(registry: dict[str, Registration]) -> dict[str, Registration]:
    """relpath -> the registration of the content last seen there."""
    return {r.relpath: r for r in sorted(registry.values(), key=lambda r: (r.registered_at, r.key))}


def register_inbox_files(inbox: str | Path, registry_dir: str | Path, settle_seconds: float = 0.0,
                         now: float | None = None) -> InboxScan:
    """Register every settled inbox file that is new or whose content changed. Input files are only read."""
    inbox, registry_dir = Path(inbox), Path(registry_dir)
    registry_dir.mkdir(parents=True, exist_ok=True)
    registry = load_registry(registry_dir)
    latest = latest_by_path(registry)
    files, rejected = scan_inbox(inbox)
    scan = InboxScan(rejected=rejected)
    now = time.time() if now is None else now
    for path in files:
        relpath = path.relative_to(inbox).as_posix()
        known = latest.get(relpath)
        try:
            before = path.stat()
            if known is not None and known.matches(before):
                continue
            age = now - before.st_mtime
            if age < settle_seconds:
                scan.waiting.append(Waiting(str(path), max(age, 0.0)))
                continue
            digest = file_sha256(path)
            after = path.stat()
        except OSError as exc:
            scan.rejected.append(Rejected(str(path), f"unreadable ({exc.strerror or exc})"))
            continue
        if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
            scan.waiting.append(Waiting(str(path), 0.0))  # written to while it was hashed
            continue
        if known is not None and digest == known.sha256:
            # Same content, new mtime: note it, so the file is not hashed again.
            noted = dataclasses.replace(known, size_bytes=after.st_size, mtime_ns=after.st_mtime_ns)
            write_json_atomic(registry_dir / f"{known.key}.json", noted.as_dict())
            _append_to_index(registry_dir, noted)
            registry[known.key] = latest[relpath] = noted
            continue
        while True:
            key = unique_key(path.stem, digest, registry)
            registration = Registration(key, str(path.absolute()), relpath, digest, after.st_size, time.time(),
                                        after.st_mtime_ns)
            if _claim(registry_dir, registration):
                break
            registry = load_registry(registry_dir)  # someone else took it meanwhile
        registry[key] = latest[relpath] = registration
        scan.new.append(registration)
        if known is not None:
            scan.changed.append(Changed(str(path), known.key, key))
    scan.registry = registry
    return scan


def register_new_videos(inbox: str | Path, registry_dir: str | Path) -> tuple[list[Registration], list[Rejected]]:
    """``register_inbox_files``' registrations and refusals, waiting for nothing (tests, benchmarks)."""
    scan = register_inbox_files(inbox, registry_dir)
    return scan.new, scan.rejected


def changed_since_registered(registration: Registration) -> str | None:
    """Why the registered file no longer holds the registered content, or None when it does."""
    path = Path(registration.path)
    try:
        stat = path.stat()
    except OSError as exc:
        return f"the registered file is gone or unreadable ({exc.strerror or exc})"
    if registration.matches(stat):
        return None
    digest = file_sha256(path)
    if digest == registration.sha256:
        return None
    return (f"the file changed since it was registered (sha256 {registration.sha256[:12]} -> {digest[:12]}); "
            "its new content becomes a partition of its own at the next inbox scan, this one keeps its outputs")


__all__ = [
    "Changed",
    "InboxScan",
    "Registration",
    "Rejected",
    "Waiting",
    "changed_since_registered",
    "register_inbox_files",
    "file_sha256",
    "load_registration",
    "registrations_with_content",
    "load_registry",
    "register_new_videos",
    "sanitize_video_id",
    "scan_inbox",
]
