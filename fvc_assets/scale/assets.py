"""Stage 3 — ``scaled_videos``: every clip scaled to a 256-pixel longer side."""

import contextlib
import time
from typing import Literal

import polars as pl
from pydantic import Field

import dagster as dg
from fvc_assets.augment.assets import augmented_videos
from fvc_assets.partitions import videos_partitions
from fvc_assets.scale.letterbox import scale_clip
from fvc_assets.steps.per_video import over_videos
from fvc_assets.steps.sole_writer import sole_writer
from fvc_assets.steps.step_cost import reports_cost
from fvc_assets.steps.upstream import require_upstream, table_version
from fvc_assets.steps.table_metadata import declared_columns, table_metadata
from fvc_assets.scale.columns import SCALED_CLIP_COLUMNS
from fvc_core.progress import Throttled
from fvc_core.step_cost import phase
from fvc_resources.atomic import write_parquet_atomic
from fvc_resources.autoencoder import AutoencoderOutOfMemory, AutoencoderResource, VaeScaler, pick_device
from fvc_resources.gpu_pool import holding_gpu_pool
from fvc_resources.storage import StorageResource
from fvc_resources.video import VideoError

SCALED_COMPLETE = "scaled_complete"
AUTOENCODER_FALLBACKS = "autoencoder_fallbacks"


class ScaleConfig(dg.Config):
    method: Literal["letterbox", "autoencoder"] = Field(
        default="letterbox", description="letterbox: resize (area down, bicubic up); autoencoder: VAE round trip."
    )
    target: int = Field(default=256, ge=16, description="Longer side of every scaled clip, in pixels.")


def scale_one(clip: dict, root, out_path, config: ScaleConfig, scaler: VaeScaler | None) -> dict:
    """Scale one clip; an autoencoder out of memory at batch 1 falls back to letterbox, recorded.

    ``scaler`` is shared by the clips of a step, so a batch size halved on one clip stays halved.
    """
    fallback_reason = ""
    if config.method == "autoencoder":
        try:
            facts = scale_clip(root / clip["path"], out_path, config.target, frame_transform=scaler)
        except AutoencoderOutOfMemory as exc:
            fallback_reason = str(exc)
            facts = scale_clip(root / clip["path"], out_path, config.target)
    else:
        facts = scale_clip(root / clip["path"], out_path, config.target)
    return {
        "clip_id": clip["clip_id"],
        "video_id": clip["video_id"],
        "method": config.method,
        "fallback": bool(fallback_reason),
        "fallback_reason": fallback_reason,
        **facts,
        "path": str(out_path.relative_to(root)),
    }


def scaled_checks(clips: list[dict], rows: list[dict], failures: dict[str, str], target: int):
    produced = {r["clip_id"]: r for r in rows}
    problems = dict(failures)
    for clip in clips:
        row = produced.get(clip["clip_id"])
        if row is None:
            problems.setdefault(clip["clip_id"], "not scaled")
        elif max(row["scaled_width"], row["scaled_height"]) != target:
            problems[clip["clip_id"]] = f"longer side {max(row['scaled_width'], row['scaled_height'])} != {target}"
    fallbacks = {r["clip_id"]: r["fallback_reason"] for r in rows if r["fallback"]}
    return [
        dg.AssetCheckResult(
            check_name=SCALED_COMPLETE,
            passed=not problems,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={"clips": len(clips), "scaled": len(rows), "problems": dg.MetadataValue.json(problems)},
        ),
        dg.AssetCheckResult(
            check_name=AUTOENCODER_FALLBACKS,
            passed=not fallbacks,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"fallbacks": len(fallbacks), "clips": dg.MetadataValue.json(fallbacks)},
        ),
    ]


@dg.asset(
    partitions_def=videos_partitions,
    output_required=False,  # a batch records each video's materialisation itself (steps/per_video.py)
    deps=[augmented_videos],
    group_name="scale",
    metadata=declared_columns(SCALED_CLIP_COLUMNS),
    code_version="2",
    kinds={"video", "parquet"},
    # No static pool: the step holds the `gpu` pool only while the autoencoder runs on CUDA
    # (fvc_resources.gpu_pool); letterbox scaling runs side by side with other CPU work.
    check_specs=[
        dg.AssetCheckSpec(SCALED_COMPLETE, partitions_def=videos_partitions, asset="scaled_videos", blocking=True,
                          description="Every stage-1 clip has a scaled clip whose longer side is the target."),
        dg.AssetCheckSpec(AUTOENCODER_FALLBACKS, partitions_def=videos_partitions, asset="scaled_videos",
                          description="Clips that fell back from the autoencoder to letterbox (WARN)."),
    ],
    description="Stage 3: every clip scaled so its longer side is 256 px (letterbox or a VAE autoencoder).",
)
@over_videos
@sole_writer(lambda storage, c: [storage.scaled_dir(c.partition_key), storage.scaled_table_path(c.partition_key)])
@reports_cost
def scaled_videos(
    context: dg.AssetExecutionContext,
    config: ScaleConfig,
    storage: StorageResource,
    autoencoder: AutoencoderResource,
) -> dg.MaterializeResult:
    key = context.partition_key
    with phase("tables"):
        clips = pl.read_parquet(require_upstream(storage.clip_table_path(key), "augmented_videos", key)).to_dicts()
    started = time.perf_counter()
    rows, failures = [], {}
    progress = Throttled(context.log.info)  # at most a line every 10 s
    uses_gpu = config.method == "autoencoder" and pick_device(autoencoder.device).startswith("cuda")
    with holding_gpu_pool(context.instance, context.run.run_id, context.op_handle.name, context.log.info) \
            if uses_gpu else contextlib.nullcontext():
        scaler = autoencoder.scaler(log=context.log.info) if config.method == "autoencoder" else None
        for n, clip in enumerate(clips, start=1):
            name = clip["clip_id"].split("__")[-1]
            out_path = storage.scaled_dir(key) / f"{name}.mp4"
            clip_started = time.perf_counter()
            try:
                with phase("kernel"):
                    rows.append(scale_one(clip, storage.root, out_path, config, scaler))
            except VideoError as error:
                failures[clip["clip_id"]] = error.reason
                context.log.warning(f"clip {n}/{len(clips)} {name}: {error.reason}")
                continue
            clip_seconds = max(time.perf_counter() - clip_started, 1e-9)
            # A line per clip where clips take a while (the autoencoder, long videos), not for every
            # clip of a quick step: every log line is kept in the event log of every video's run.
            progress(lambda: f"clip {n}/{len(clips)} {name}: {rows[-1]['frames']} frames "
                             f"{rows[-1]['scaled_width']}x{rows[-1]['scaled_height']} ({config.method}), "
                             f"{rows[-1]['frames'] / clip_seconds:.1f} frames/s")
    seconds = time.perf_counter() - started
    context.log.info(f"{len(rows)}/{len(clips)} clips scaled ({config.method}): "
                     f"{sum(r['frames'] for r in rows)} frames in {seconds:.1f} s")
    # pandera (with pandas under it, ~130 MB resident) loads when a step validates, not with the code location.
    with phase("tables"):
        from fvc_assets.scale.schema import ScaledClipTable

        table = ScaledClipTable.validate(pl.DataFrame(rows, schema_overrides={"frames": pl.Int64}))
        write_parquet_atomic(storage.scaled_table_path(key), table)
        metadata = table_metadata(table, SCALED_CLIP_COLUMNS)
    with phase("checks"):
        checks = scaled_checks(clips, rows, failures, config.target)
    frames = int(table["frames"].sum()) if rows else 0
    return dg.MaterializeResult(
        metadata={
            **metadata,
            "method": config.method,
            "target": config.target,
            "held_gpu_pool": uses_gpu,
            "clips": len(rows),
            "fallbacks": int(table["fallback"].sum()) if rows else 0,
            "frames": frames,
            "frames_per_second": round(frames / max(seconds, 1e-9), 1),
            "output": dg.MetadataValue.path(str(storage.scaled_table_path(key))),
        },
        check_results=checks,
        data_version=table_version(table),
    )
