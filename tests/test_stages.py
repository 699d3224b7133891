"""Stages 1 and 2 materialised through Dagster: checks, metadata, determinism, failures."""

import shutil

import dagster as dg
from dagster_shared.serdes import serialize_value
import polars as pl
import pytest

from fvc_assets.augment.assets import CLIPS_COMPLETE, augmented_videos, completeness
from fvc_assets.augment.clips import CLIPS_PER_VIDEO
from fvc_assets.features.assets import FEATURES_COMPLETE, FEATURES_SANE, handcrafted_features
from fvc_assets.features.handcrafted import HANDCRAFTED_FEATURES
from fvc_assets.ingest.assets import raw_videos
from fvc_assets.ingest.preview import PREVIEW_THUMBNAIL_BYTES, SHEET_THUMBNAIL_BYTES
from fvc_assets.features.scaled_assets import SCALED_FEATURES_COMPLETE, SCALED_FEATURES_SANE, scaled_features
from fvc_assets.ingest.registration import register_new_videos
from fvc_assets.scale.assets import AUTOENCODER_FALLBACKS, SCALED_COMPLETE, scaled_videos
from fvc_assets.partitions import VIDEOS_PARTITIONS_NAME
from fvc_resources.autoencoder import AutoencoderResource
from fvc_resources.sampling import FrameSamplingResource
from fvc_resources.storage import StorageResource
from fvc_resources.video import probe
from fvc_resources.video_resource import VideoResource
from tests.conftest import encode_video

ASSETS = [raw_videos, augmented_videos, handcrafted_features, scaled_videos, scaled_features]


def setup_video(data, name="clip.mp4", **kwargs):
    inbox = data / "inbox"
    (inbox / "fake").mkdir(parents=True, exist_ok=True)
    encode_video(inbox / "fake" / name, **kwargs)
    registered, _ = register_new_videos(inbox, data / "registry")
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(VIDEOS_PARTITIONS_NAME, [r.key for r in registered])
    resources = {"storage": StorageResource(data_dir=str(data)), "video": VideoResource(),
                 "sampling": FrameSamplingResource(), "autoencoder": AutoencoderResource()}
    return registered[0].key, instance, resources


def checks_of(result):
    return {e.asset_check_evaluation_data.check_name: e.asset_check_evaluation_data
            for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"}


def test_stages_materialise_with_passing_checks_and_deterministic_features(tmp_path):
    data = tmp_path / "data"
    key, instance, resources = setup_video(data, frames=30, width=192, height=108, fps=15)
    result = dg.materialize(ASSETS, instance=instance, resources=resources, partition_key=key)
    assert result.success
    checks = checks_of(result)
    assert {CLIPS_COMPLETE, FEATURES_COMPLETE, FEATURES_SANE, SCALED_COMPLETE, AUTOENCODER_FALLBACKS,
            SCALED_FEATURES_COMPLETE, SCALED_FEATURES_SANE} <= set(checks)
    assert all(c.passed for c in checks.values())

    metadata = result.asset_materializations_for_node("augmented_videos")[0].metadata
    assert metadata["clips"].value == CLIPS_PER_VIDEO
    assert metadata["frames_written"].value == CLIPS_PER_VIDEO * 30
    assert "data:image/jpeg;base64," in metadata["contact_sheet"].value
    assert (data / "videos" / key / "contact_sheet.png").read_bytes().startswith(b"\x89PNG")
    # The event log keeps a thumbnail within its budget, not the full image: at the corpus's 5,199
    # videos every kilobyte here is 5 MB of instance per pass.
    assert len(serialize_value(metadata["contact_sheet"])) < SHEET_THUMBNAIL_BYTES * 4 / 3 + 200
    preview = result.asset_materializations_for_node("raw_videos")[0].metadata["preview"]
    assert "data:image/jpeg;base64," in preview.value
    assert len(serialize_value(preview)) < PREVIEW_THUMBNAIL_BYTES * 4 / 3 + 200

    clips = pl.read_parquet(data / "videos" / key / "clips.parquet")
    assert clips.height == CLIPS_PER_VIDEO and set(clips["label"]) == {"fake"}
    # Stages 1 and 3 sum up in one line each (every line stays in the event log of every video's run);
    # a quick step logs no line per clip (those come at most every 10 s, for long steps).
    messages = [e.message for e in instance.all_logs(result.run_id) if e.is_dagster_event is False]
    assert sum(m.startswith("11 clips (30 frames each, 192x108), ") for m in messages) == 1, messages
    assert sum(m.startswith("11/11 clips scaled (letterbox): 330 frames") for m in messages) == 1, messages
    assert not [m for m in messages if m.startswith("clip ")], messages
    # The UI's asset page shows each table's columns (declared on the definition, the same as the file's,
    # so not repeated in every materialisation) and row count.
    definitions = {a.key.to_user_string(): a for a in ASSETS if isinstance(a, dg.AssetsDefinition)}
    for asset, file in [("raw_videos", "raw_video.parquet"), ("augmented_videos", "clips.parquet"),
                        ("handcrafted_features", "handcrafted_features.parquet"),
                        ("scaled_videos", "scaled.parquet"), ("scaled_features", "scaled_features.parquet")]:
        table_meta = result.asset_materializations_for_node(asset)[0].metadata
        written = pl.read_parquet(data / "videos" / key / file)
        declared = definitions[asset].specs_by_key[dg.AssetKey(asset)].metadata["dagster/column_schema"].schema
        assert [(c.name, c.type) for c in declared.columns] == [(n, str(t)) for n, t in written.schema.items()], asset
        assert "dagster/column_schema" not in table_meta, asset
        assert table_meta["dagster/row_count"].value == written.height, asset
        # What the step cost, for sizing slurm/mem and slurm/time from the UI.
        assert table_meta["cost/wall_s"].value > 0 and table_meta["cost/cpu_s"].value > 0, asset
        assert 50 < table_meta["cost/peak_rss_mb"].value < 4000, asset
    first = pl.read_parquet(data / "videos" / key / "handcrafted_features.parquet")
    assert first.height == CLIPS_PER_VIDEO
    assert set(HANDCRAFTED_FEATURES) <= set(first.columns)
    assert first["clip_id"].to_list() == clips["clip_id"].to_list()
    # The original's features describe the uploaded file (its bitrate, its codec history), not the re-encode.
    raw = pl.read_parquet(data / "videos" / key / "raw_video.parquet").row(0, named=True)
    original = first.filter(pl.col("clip_id") == f"{key}__original").row(0, named=True)
    assert original["features_from"] == "source"
    assert original["features_path"] == "inbox/fake/clip.mp4" and (data / original["features_path"]).samefile(raw["path"])
    assert original["codec_bitrate"] == pytest.approx(raw["bitrate"])
    reencoded = probe(data / clips.filter(pl.col("augmentation") == "original")["path"][0]).bitrate
    assert abs(reencoded - raw["bitrate"]) > 0.01 * raw["bitrate"]  # so the line above could fail
    augmented = first.filter(pl.col("clip_id") != f"{key}__original")
    assert set(augmented["features_from"]) == {"clip"}
    assert augmented["features_path"].to_list() == clips.filter(pl.col("augmentation") != "original")["path"].to_list()

    scaled = pl.read_parquet(data / "videos" / key / "scaled.parquet")
    assert scaled.height == CLIPS_PER_VIDEO
    assert set(zip(scaled["scaled_width"], scaled["scaled_height"])) == {(256, 144)}
    assert scaled["is_upscaled"].all() and not scaled["is_downscaled"].any()  # 192x108 grows to 256
    scaled_first = pl.read_parquet(data / "videos" / key / "scaled_features.parquet")
    assert scaled_first.height == CLIPS_PER_VIDEO

    # Re-materialising from scratch gives exactly the same features.
    shutil.rmtree(data / "videos" / key)
    again = dg.materialize(ASSETS, instance=instance, resources=resources, partition_key=key)
    assert again.success
    second = pl.read_parquet(data / "videos" / key / "handcrafted_features.parquet")
    assert first.equals(second)
    assert scaled_first.equals(pl.read_parquet(data / "videos" / key / "scaled_features.parquet"))


def test_a_missing_clip_fails_completeness_and_names_the_clip(tmp_path):
    data = tmp_path / "data"
    key, instance, resources = setup_video(data, frames=12, width=96, height=64)
    assert dg.materialize(ASSETS[:2], instance=instance, resources=resources, partition_key=key).success
    clips = pl.read_parquet(data / "videos" / key / "clips.parquet").to_dicts()
    (data / clips[3]["path"]).unlink()
    (data / clips[5]["path"]).write_bytes(b"not a video any more")

    check = completeness(key, clips, data)
    assert not check.passed
    problems = check.metadata["problems"].value
    assert set(problems) == {clips[3]["clip_id"], clips[5]["clip_id"]}
    assert "file not found" in problems[clips[3]["clip_id"]]

    result = dg.materialize([handcrafted_features], instance=instance, resources=resources,
                            partition_key=key, selection=[handcrafted_features], raise_on_error=False)
    feature_check = checks_of(result)[FEATURES_COMPLETE]
    assert not feature_check.passed
    assert set(feature_check.metadata["missing"].value) == {clips[3]["clip_id"], clips[5]["clip_id"]}


def test_an_unreadable_video_fails_its_partition_with_file_and_reason(tmp_path):
    data = tmp_path / "data"
    (data / "inbox").mkdir(parents=True)
    (data / "inbox" / "empty.mp4").touch()
    key, instance, resources = setup_video(data, name="fine.mp4", frames=8, width=64, height=48)
    keys = sorted(instance.get_dynamic_partitions(VIDEOS_PARTITIONS_NAME))
    assert keys == ["empty", "fine"]
    bad = dg.materialize(ASSETS, instance=instance, resources=resources, partition_key="empty",
                         raise_on_error=False)
    assert not bad.success
    failure = next(e for e in bad.all_events if e.is_step_failure)
    assert "empty.mp4: empty file (0 bytes)" in failure.step_failure_data.user_failure_data.description
    good = dg.materialize(ASSETS, instance=instance, resources=resources, partition_key="fine")
    assert good.success
