"""Stage 2 as pure code: the 15 handcrafted features of every clip of one video.

The original clip's features come from the uploaded file itself (decoded as it
is, display rotation applied), not from the platform's re-encode of it: the
codec and block-grid cues are there to describe the upload's own encoding
history, which a fresh x264 pass would overwrite. Augmented clips are
described as written.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fvc_assets.augment.transforms import ORIGINAL_INDEX
from fvc_assets.features.handcrafted import aggregate, codec_features
from fvc_assets.features.scaled import aggregate_scaled
from fvc_assets.scale.letterbox import resize_plan
from fvc_resources.video import VideoError, frame_array, probe, sample_frames, sample_video_frames

FROM_SOURCE = "source"  # features_from: the uploaded file
FROM_CLIP = "clip"  # features_from: the clip stage 1 wrote


def clip_features(path: str | Path, count_for: Callable[[int], int]) -> dict[str, float]:
    """Mean per-frame features over ``count_for(frames)`` sampled upright frames, plus container facts."""
    facts = probe(path)
    n = count_for(facts.frame_count)
    features, used = aggregate(s.image for s in sample_frames(path, n, fmt="gray", upright=True))
    return {
        **features,
        **codec_features(facts.bitrate, facts.fps, facts.width, facts.height),
        "frames_sampled": used,
    }


def source_and_scaled_features(
    path: str | Path, count_for: Callable[[int], int], target: int
) -> tuple[dict[str, float], dict[str, float]]:
    """A new video's features in one sampling pass over the file, for scoring it.

    The same frames give stage 2's features (full-size grey, as :func:`clip_features`
    takes them from an upload) and stage 4's per-frame features on those frames resized
    as stage 3 resizes (longer side ``target``, area averaging down, bicubic up). Stage 4
    in the pipeline reads its frames back from the x264 clip stage 3 wrote; skipping that
    clip here (a full decode and two encodes of the video) is what makes scoring cost
    about one stage-2 pass (measured gap: benchmarks/predict.py).
    """
    facts = probe(path)
    plan = resize_plan(facts.width, facts.height, facts.rotation, target)
    small: list = []  # count_for caps the frames (50 by default): a few MB at 256 px

    def grey_frames():
        for _, _, frame in sample_video_frames(path, count_for(facts.frame_count)):
            small.append(frame_array(frame, plan.stored_width, plan.stored_height, "rgb24", upright=True,
                                     interpolation=plan.interpolation))
            yield frame_array(frame, None, None, "gray", upright=True)

    handcrafted, used = aggregate(grey_frames())
    scaled, _ = aggregate_scaled(small)
    return (
        {**handcrafted, **codec_features(facts.bitrate, facts.fps, facts.width, facts.height), "frames_sampled": used},
        {**scaled, "is_upscaled": float(plan.is_upscaled), "is_downscaled": float(plan.is_downscaled)},
    )


def features_file(clip: dict, root: str | Path, source: str | Path) -> tuple[str, Path]:
    """(features_from, file) of one clip-table row: the source for the original, else the clip."""
    if clip["augmentation_idx"] == ORIGINAL_INDEX:
        return FROM_SOURCE, Path(source)
    return FROM_CLIP, Path(root) / clip["path"]


def relative_to_root(path: Path, root: str | Path) -> str:
    """The path as the tables keep it: relative to the data root when inside it (so tables do not depend
    on where the root is mounted), else absolute."""
    root = Path(root).absolute()
    path = Path(path).absolute()
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def video_features(
    clips: list[dict], root: str | Path, count_for: Callable[[int], int], source: str | Path
) -> tuple[list[dict], dict[str, str]]:
    """(rows with ``clip_id``, ``features_from``, ``features_path`` (relative to ``root`` when inside it) and the features, {clip_id: reason} for
    clips that could not be read). ``source``: the uploaded file the clips were made from."""
    rows, missing = [], {}
    for clip in clips:
        origin, path = features_file(clip, root, source)
        try:
            rows.append({"clip_id": clip["clip_id"], "features_from": origin,
                         "features_path": relative_to_root(path, root), **clip_features(path, count_for)})
        except (VideoError, ValueError, OSError) as exc:
            missing[clip["clip_id"]] = f"{path}: {exc}"
    return rows, missing
