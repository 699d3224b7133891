"""Stage 2 as pure code: the 15 handcrafted features of every clip of one video."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fvc_assets.features.handcrafted import aggregate, codec_features
from fvc_resources.video import VideoError, probe, sample_frames


def clip_features(path: str | Path, count_for: Callable[[int], int]) -> dict[str, float]:
    """Mean per-frame features over ``count_for(frames)`` sampled frames, plus container facts."""
    facts = probe(path)
    n = count_for(facts.frame_count)
    features, used = aggregate(s.image for s in sample_frames(path, n, fmt="gray"))
    return {
        **features,
        **codec_features(facts.bitrate, facts.fps, facts.width, facts.height),
        "frames_sampled": used,
    }


def video_features(
    clips: list[dict], root: str | Path, count_for: Callable[[int], int]
) -> tuple[list[dict], dict[str, str]]:
    """(rows with ``clip_id`` + features, {clip_id: reason} for clips that could not be read)."""
    rows, missing = [], {}
    for clip in clips:
        try:
            rows.append({"clip_id": clip["clip_id"], **clip_features(Path(root) / clip["path"], count_for)})
        except (VideoError, ValueError) as exc:
            missing[clip["clip_id"]] = str(exc)
    return rows, missing
