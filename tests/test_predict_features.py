"""A new video's features for `fvc predict`: one sampling pass over the file, against the pipeline's route."""

import pytest

from fvc_assets.features.extract import clip_features, source_and_scaled_features
from fvc_assets.features.scaled import SCALED_FRAME_FEATURES, aggregate_scaled
from fvc_assets.scale.letterbox import scale_clip
from fvc_core.sampling import frames_to_sample
from fvc_resources.video import probe, sample_frames
from tests.conftest import encode_video


def count(frames: int) -> int:
    return frames_to_sample(frames, 0.25, 5, 50)


def test_stage2_features_are_exactly_the_pipelines_and_stage4_ones_close(tmp_path):
    source = encode_video(tmp_path / "src.mp4", frames=48, width=320, height=180, fps=24, seed=3)
    handcrafted, scaled = source_and_scaled_features(source, count, 128)
    assert handcrafted == clip_features(source, count)  # the same frames, the same code
    # The pipeline's stage 4 reads frames back from the x264 clip stage 3 wrote.
    clip = tmp_path / "scaled.mp4"
    scale_clip(source, clip, 128)
    reference, _ = aggregate_scaled(s.image for s in sample_frames(clip, count(probe(clip).frame_count)))
    assert (scaled["is_downscaled"], scaled["is_upscaled"]) == (1.0, 0.0)
    for name in SCALED_FRAME_FEATURES:
        assert scaled[name] == pytest.approx(reference[name], rel=0.15, abs=0.01), name
