"""Stage 1 as pure code: stream one source video into the original + 10 augmented clips."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from pathlib import Path

import numpy as np

from fvc_assets.augment.transforms import AUGMENTATIONS, ORIGINAL_INDEX, build_transform
from fvc_assets.ingest.preview import fit_tile
from fvc_core.progress import Throttled
from fvc_resources.video import ClipWriter, VideoError, WrittenClip, iter_chunks, probe, upright, x264_encoder_mb

CLIP_INDICES = (ORIGINAL_INDEX, *range(len(AUGMENTATIONS)))
CLIPS_PER_VIDEO = len(CLIP_INDICES)


def clip_name(augmentation_idx: int) -> str:
    return "original" if augmentation_idx == ORIGINAL_INDEX else AUGMENTATIONS[augmentation_idx]


def clip_id(video_id: str, augmentation_idx: int) -> str:
    return f"{video_id}__{clip_name(augmentation_idx)}"


CHUNK_BYTES = 16 * 2**20  # frames decoded at a time: small enough for malloc to reuse, not map afresh


def clip_memory_mb(width: int, height: int) -> float:
    """Resident memory one clip in flight adds at this frame size: its x264 encoder, its decoder
    and the frames between them. Measured here: about 280 MB at 1080p (749 MB with two at once in
    a process that held 187 MB before), 165 MB at 720p, 97 MB at 480p."""
    return x264_encoder_mb(width, height) + 40.0 + 60e-6 * width * height


def encoders_at_once(width: int, height: int, memory_mb: float, cores: int | None = None) -> int:
    """How many clips may be encoded side by side within ``memory_mb``, and no more than cores.

    Each clip in flight holds an x264 encoder (its look-ahead and reference frames), a
    decoder and frames: about 280 MB at 1080p (:func:`clip_memory_mb`), so 11 at once need
    about 3 GB, and more encoders than cores buy no speed. At least one, at most all 11.
    """
    cores = cores or len(os.sched_getaffinity(0))
    return max(1, min(CLIPS_PER_VIDEO, cores, int(memory_mb // clip_memory_mb(width, height))))


def chunk_frames_for(width: int, height: int) -> int:
    return max(1, min(16, CHUNK_BYTES // max(1, width * height * 3)))


# Longest first, so the last clips to finish are short ones and no core idles long at the end
# (transform costs measured at 1080p: the combination's four steps most, the original nothing).
ENCODING_ORDER = tuple(AUGMENTATIONS.index(name) for name in (
    "combination", "gaussian_noise", "affine", "rotation", "elastic", "gaussian_blur", "saturation",
    "contrast", "brightness", "horizontal_flip")) + (ORIGINAL_INDEX,)


def _write_clip(source: Path, path: Path, transform, fps: float, *, options, chunk_frames: int,
                max_frames: int | None, stop: threading.Event, frames: dict, idx: int,
                preview_at: int, previews: dict[int, np.ndarray]) -> WrittenClip:
    """Decode the source and write one clip: its own decoder, transform and encoder. The clip's
    frame number ``preview_at`` (or its last, if it is shorter) goes into ``previews`` at a
    contact sheet's tile size, taken from the frames in hand rather than decoded again."""
    with ClipWriter(path, fps, options=options) as writer:
        # FFmpeg's own decoder threading, as everywhere else: its single-threaded decoder raises on a
        # truncated file's last packet where the threaded one ends the stream (the decodable prefix).
        chunk = None
        for chunk in iter_chunks(source, chunk_frames, max_frames=max_frames, upright=True):
            if stop.is_set():
                raise RuntimeError("stopped: another clip of this video failed")
            chunk = transform.apply(chunk)
            if idx not in previews and writer.frames <= preview_at < writer.frames + len(chunk):
                previews[idx] = fit_tile(chunk[preview_at - writer.frames])
            writer.write(chunk)
            frames[idx] = writer.frames
        if writer.frames == 0:
            raise VideoError(source, "no decodable frames")
        if idx not in previews:
            previews[idx] = fit_tile(chunk[-1])
        return writer.close()


def augment_video(
    source: str | Path,
    clips_dir: str | Path,
    *,
    video_id: str,
    label: str,
    dup_group: str,
    fps: float,
    global_seed: int = 0,
    max_frames: int | None = None,
    encoder_options: dict[str, str] | None = None,
    path_root: str | Path | None = None,
    memory_mb: float = 600.0,
    at_once: int | None = None,
    indices: tuple[int, ...] = CLIP_INDICES,
    log: Callable[[str], None] | None = None,
    log_every_s: float = 10.0,
    previews: dict[int, np.ndarray] | None = None,
) -> list[dict]:
    """Write the 11 clips of one video (or those in ``indices``) and return their clip-table rows.

    Each clip decodes the source itself, upright (display rotation applied), chunk by
    chunk, and goes through its own transform and encoder; as many clips run side by
    side as fit ``memory_mb`` at the source's frame size (or ``at_once``), so memory
    holds that many encoders and a few small chunks, whatever the video's length.
    Decoding a source once per clip costs about a sixth of encoding it (H.264 1080p:
    about 10 ms against 57 ms a frame here), and no clip waits on another. The clips'
    bytes do not depend on how many run at once. A source that fails to decode raises
    VideoError; a failure leaves no clip behind (all 11 or none). ``log`` gets a
    progress line every ``log_every_s`` seconds and one line per clip at the end.
    ``previews``, if given, receives each clip's middle frame (RGB, a contact sheet's tile size)
    by augmentation index, taken while the clip is written.
    """
    source, clips_dir = Path(source), Path(clips_dir)
    fps = fps if fps and fps > 0 else 25.0
    if ORIGINAL_INDEX not in indices:
        raise ValueError("the original clip is always written")
    facts = probe(source)
    width, height = upright(facts.width, facts.height, facts.rotation)
    announced = facts.frame_count if max_frames is None else min(facts.frame_count, max_frames)
    preview_at = max(0, announced) // 2
    previews = {} if previews is None else previews
    workers = at_once or encoders_at_once(width, height, memory_mb)
    transforms = {idx: build_transform(video_id, idx, global_seed) for idx in indices}
    paths = {idx: clips_dir / f"{clip_name(idx)}.mp4" for idx in indices}
    stop = threading.Event()
    progress = Throttled(log, log_every_s)
    frames = dict.fromkeys(indices, 0)  # written so far, per clip (for the progress line)
    written: dict[int, WrittenClip] = {}
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="clip") as pool:
        futures = {
            pool.submit(_write_clip, source, paths[idx], transforms[idx], fps, options=encoder_options,
                        chunk_frames=chunk_frames_for(width, height), max_frames=max_frames, stop=stop,
                        frames=frames, idx=idx, preview_at=preview_at, previews=previews): idx
            for idx in sorted(indices, key=ENCODING_ORDER.index)
        }
        pending = set(futures)
        try:
            while pending:
                done, pending = wait(pending, timeout=log_every_s, return_when=FIRST_EXCEPTION)
                for future in done:
                    written[futures[future]] = future.result()
                progress(lambda: (f"{len(written)}/{len(indices)} clips written, {workers} at a time: "
                                  f"{sum(frames.values())} frames, "
                                  f"{sum(frames.values()) / progress.elapsed():.1f} frames/s"))
        except BaseException:
            stop.set()
            for future in futures:
                future.cancel()
            wait(futures)
            for path in paths.values():
                path.unlink(missing_ok=True)  # all 11 clips or none
            raise
    written = {idx: written[idx] for idx in indices}
    rows = []
    seconds = max(progress.elapsed(), 1e-9)
    if log:  # one line for the step (each log line stays in the event log of every video's run)
        total = sum(clip.frames for clip in written.values())
        sizes = {f"{clip.width}x{clip.height}" for clip in written.values()}
        counts = {clip.frames for clip in written.values()}
        each = (f"{counts.pop()} frames each" if len(counts) == 1 else
                ", ".join(f"{clip_name(idx)} {clip.frames}" for idx, clip in written.items()) + " frames")
        log(f"{len(written)} clips ({each}, {', '.join(sorted(sizes))}), {workers} at a time: {total} frames in "
            f"{seconds:.1f} s, {total / seconds:.1f} frames/s")
    for idx, clip in written.items():
        path = Path(clip.path)
        rows.append(
            {
                "clip_id": clip_id(video_id, idx),
                "video_id": video_id,
                "augmentation_idx": idx,
                "augmentation": transforms[idx].name,
                "params": json.dumps(transforms[idx].params, sort_keys=True),
                "label": label,
                "dup_group": dup_group,
                "frames": clip.frames,
                "fps": clip.fps,
                "width": clip.width,
                "height": clip.height,
                "path": str(path.relative_to(path_root)) if path_root else str(path),
            }
        )
    return rows
