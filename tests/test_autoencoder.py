"""The autoencoder resource: real loading code on a tiny AutoencoderKL built from a local config."""

import dagster as dg
import numpy as np
import polars as pl
import pytest
import torch
from diffusers import AutoencoderKL

from fvc_assets.scale.assets import AUTOENCODER_FALLBACKS, ScaleConfig, scale_one, scaled_checks
from fvc_resources.autoencoder import AutoencoderLoadError, AutoencoderResource, VaeScaler
from tests.conftest import encode_video
from tests.test_stages import ASSETS, checks_of, setup_video


@pytest.fixture(scope="module")
def tiny_vae_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("vae")
    torch.manual_seed(0)
    # Four blocks, as in Stable Diffusion's VAE: latents at 1/8 of the frame side. With two blocks (1/2) the
    # mid block's attention over every latent position took 30 s of the pipeline case's 38.
    vae = AutoencoderKL(
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 8, 16, 16), layers_per_block=1, latent_channels=4, norm_num_groups=4, sample_size=64,
    )
    vae.save_pretrained(root / "standalone")
    vae.save_pretrained(root / "pipeline" / "vae")  # the layout of a full diffusers pipeline
    return root


@pytest.mark.parametrize("layout", ["standalone", "pipeline"])
def test_loads_both_layouts_and_round_trips_frames_on_cpu(tiny_vae_dirs, layout):
    scaler = AutoencoderResource(model=str(tiny_vae_dirs / layout), device="cpu", batch_size=4).scaler()
    assert scaler.device == "cpu" and next(scaler.vae.parameters()).dtype == torch.float32
    frames = np.random.default_rng(0).integers(0, 256, (6, 36, 50, 3), dtype=np.uint8)  # odd multiple: padded
    out = scaler(frames)
    assert out.shape == frames.shape and out.dtype == np.uint8
    assert scaler.batch_history == [4, 2]
    np.testing.assert_array_equal(out, AutoencoderResource(model=str(tiny_vae_dirs / layout), device="cpu",
                                                           batch_size=4).scaler()(frames))


def test_on_cpu_every_batch_is_logged(tiny_vae_dirs):
    lines = []
    scaler = AutoencoderResource(model=str(tiny_vae_dirs / "standalone"), device="cpu", batch_size=4).scaler(
        log=lines.append)
    scaler(np.zeros((6, 16, 16, 3), np.uint8))
    scaler(np.zeros((3, 16, 16, 3), np.uint8))
    assert [line.split(",")[:2] for line in lines] == [
        ["autoencoder on cpu: batch of 4", " 4 frames in this step"],
        ["autoencoder on cpu: batch of 2", " 6 frames in this step"],
        ["autoencoder on cpu: batch of 3", " 9 frames in this step"],
    ]
    assert all(line.endswith("frames/s") for line in lines)


def test_missing_weights_fail_clearly(tmp_path, monkeypatch):
    import huggingface_hub.constants

    # This sandbox has no route to the hub; offline mode makes that fail at once instead of retrying.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(AutoencoderLoadError, match="could not load the autoencoder stabilityai/sd-vae-ft-mse"):
        AutoencoderResource(model="stabilityai/sd-vae-ft-mse", device="cpu").scaler()
    with pytest.raises(AutoencoderLoadError, match="pretrained=false"):
        AutoencoderResource(model=str(tmp_path / "nothing-here"), device="cpu").scaler()


def test_random_weights_are_an_explicit_choice(tiny_vae_dirs, tmp_path):
    config_only = tmp_path / "config-only"
    config_only.mkdir()
    (config_only / "config.json").write_text((tiny_vae_dirs / "standalone" / "config.json").read_text())
    with pytest.raises(AutoencoderLoadError):
        AutoencoderResource(model=str(config_only), device="cpu").scaler()
    scaler = AutoencoderResource(model=str(config_only), device="cpu", pretrained=False).scaler()
    assert scaler(np.zeros((1, 8, 8, 3), np.uint8)).shape == (1, 8, 8, 3)


def _oom(*args, **kwargs):
    raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")


def test_out_of_memory_halves_the_batch(tiny_vae_dirs, monkeypatch):
    scaler = AutoencoderResource(model=str(tiny_vae_dirs / "standalone"), device="cpu", batch_size=8).scaler()
    real = VaeScaler._forward

    def small_batches_only(self, batch):
        return _oom() if batch.shape[0] > 2 else real(self, batch)

    monkeypatch.setattr(VaeScaler, "_forward", small_batches_only)
    out = scaler(np.zeros((7, 16, 16, 3), np.uint8))
    assert out.shape == (7, 16, 16, 3)
    assert scaler.batch_size == 2 and scaler.batch_history == [2, 2, 2, 1]


def test_out_of_memory_at_batch_one_falls_back_to_letterbox_and_says_so(tiny_vae_dirs, tmp_path, monkeypatch):
    monkeypatch.setattr(VaeScaler, "_forward", _oom)
    clip_path = encode_video(tmp_path / "clips" / "original.mp4", frames=6, width=96, height=64)
    clip = {"clip_id": "v__original", "video_id": "v", "path": "clips/original.mp4"}
    resource = AutoencoderResource(model=str(tiny_vae_dirs / "standalone"), device="cpu", batch_size=4)
    scaler = resource.scaler()
    row = scale_one(clip, tmp_path, tmp_path / "scaled" / "original.mp4", ScaleConfig(method="autoencoder"), scaler)
    assert row["fallback"] and "CUDA out of memory at batch size 1" in row["fallback_reason"]
    assert (row["scaled_width"], row["scaled_height"]) == (256, 170)
    assert clip_path.exists()
    complete, fallbacks = scaled_checks([clip], [row], {}, 256)
    assert complete.passed
    assert not fallbacks.passed and fallbacks.severity == dg.AssetCheckSeverity.WARN
    assert fallbacks.metadata["clips"].value == {"v__original": row["fallback_reason"]}


@pytest.mark.parametrize("layout", ["standalone", "pipeline"])
def test_scaled_videos_with_the_autoencoder_method(tiny_vae_dirs, tmp_path, layout):
    data = tmp_path / "data"
    key, instance, resources = setup_video(data, frames=8, width=128, height=72, fps=8)
    resources["autoencoder"] = AutoencoderResource(model=str(tiny_vae_dirs / layout), device="cpu")
    result = dg.materialize(
        ASSETS, instance=instance, resources=resources, partition_key=key,
        run_config={"ops": {"scaled_videos": {"config": {"method": "autoencoder"}}}},
    )
    assert result.success
    assert checks_of(result)[AUTOENCODER_FALLBACKS].passed
    table = pl.read_parquet(data / "videos" / key / "scaled.parquet")
    assert set(table["method"]) == {"autoencoder"} and not table["fallback"].any()
    assert set(zip(table["scaled_width"], table["scaled_height"])) == {(256, 144)}
