"""Stage 1 as pure code: stream one source video into the original + 10 augmented clips."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from fvc_assets.augment.transforms import AUGMENTATIONS, ORIGINAL_INDEX, build_transform
from fvc_core.progress import Throttled
from fvc_resources.video import ClipWriter, VideoError, iter_chunks

CLIP_INDICES = (ORIGINAL_INDEX, *range(len(AUGMENTATIONS)))
CLIPS_PER_VIDEO = len(CLIP_INDICES)


def clip_name(augmentation_idx: int) -> str:
    return "original" if augmentation_idx == ORIGINAL_INDEX else AUGMENTATIONS[augmentation_idx]


def clip_id(video_id: str, augmentation_idx: int) -> str:
    return f"{video_id}__{clip_name(augmentation_idx)}"


def _write(writer: ClipWriter, transform, chunk) -> None:
    writer.write(transform.apply(chunk))


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
    chunk_frames: int = 16,
    encoder_options: dict[str, str] | None = None,
    path_root: str | Path | None = None,
    workers: int | None = None,
    indices: tuple[int, ...] = CLIP_INDICES,
    log: Callable[[str], None] | None = None,
    log_every_s: float = 10.0,
) -> list[dict]:
    """Write the 11 clips of one video (or those in ``indices``) and return their clip-table rows.

    The source is decoded once, in chunks, upright (display rotation applied);
    each chunk is transformed and handed to all 11 encoders, so memory holds one
    chunk plus the encoders' own buffers, whatever the video's length. A source
    that fails to decode raises VideoError and leaves no clip behind. ``log`` gets a
    progress line every ``log_every_s`` seconds while it works and one line per clip at the end.
    """
    source, clips_dir = Path(source), Path(clips_dir)
    fps = fps if fps and fps > 0 else 25.0
    if ORIGINAL_INDEX not in indices:
        raise ValueError("the original clip is always written")
    transforms = {idx: build_transform(video_id, idx, global_seed) for idx in indices}
    writers: dict[int, ClipWriter] = {}
    progress = Throttled(log, log_every_s)
    try:
        for idx in indices:
            writers[idx] = ClipWriter(clips_dir / f"{clip_name(idx)}.mp4", fps, options=encoder_options)
        # Clips are independent: transform + encode them on worker threads (OpenCV and
        # FFmpeg release the GIL); one task per clip per chunk keeps each clip in order.
        with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
            for chunk in iter_chunks(source, chunk_frames, max_frames=max_frames, upright=True):
                tasks = [pool.submit(_write, writers[idx], transforms[idx], chunk) for idx in indices]
                for task in tasks:
                    task.result()
                progress(lambda: (f"{writers[ORIGINAL_INDEX].frames} frames read, each written to "
                                  f"{len(indices)} clips: {writers[ORIGINAL_INDEX].frames / progress.elapsed():.1f} "
                                  f"source frames/s"))
        if writers[ORIGINAL_INDEX].frames == 0:
            raise VideoError(source, "no decodable frames")
        written = {idx: writer.close() for idx, writer in writers.items()}
    except BaseException as exc:
        for writer in writers.values():
            writer.abort(exc)
        raise
    rows = []
    seconds = max(progress.elapsed(), 1e-9)
    for n, (idx, clip) in enumerate(written.items(), start=1):
        if log:
            log(f"clip {n}/{len(written)} {clip_name(idx)}: {clip.frames} frames {clip.width}x{clip.height}, "
                f"{clip.frames / seconds:.1f} frames/s")
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
