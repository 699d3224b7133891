"""Stage 3 scaling costs on this machine, against ffmpeg measured in the same run.

    .venv/bin/python -m benchmarks.stages34      (also part of `make bench`)

1. Letterbox scaling of a 1080p clip to 256: frames/s against `ffmpeg -vf scale`
   with the same encoder settings. Target ratio >= 0.7.
2. Autoencoder scaling on CUDA when present, else CPU: frames/s at 256 px with the
   tiny test VAE, and with the full sd-vae-ft-mse architecture (random weights;
   timing only). The predecessor reported about 3.5 s per 100 frames on a GPU.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks._measure import cli, in_subprocess, peak_mb, print_table, timed_command
from benchmarks.sampling import make_video

SD_VAE_ARCHITECTURE = {
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
    "block_out_channels": [128, 256, 512, 512],
    "layers_per_block": 2,
    "latent_channels": 4,
    "norm_num_groups": 32,
    "sample_size": 256,
}
TINY_ARCHITECTURE = {
    "down_block_types": ["DownEncoderBlock2D"] * 2,
    "up_block_types": ["UpDecoderBlock2D"] * 2,
    "block_out_channels": [8, 16],
    "layers_per_block": 1,
    "latent_channels": 4,
    "norm_num_groups": 4,
    "sample_size": 64,
}


def _letterbox_one(path: str) -> dict:
    from fvc_assets.scale.letterbox import scale_clip

    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        facts = scale_clip(path, Path(out) / "scaled.mp4")
        seconds = time.perf_counter() - start
    return {"seconds": seconds, "frames": facts["frames"], "peak_mb": peak_mb()}


def _autoencoder_one(architecture: str, frames: int) -> dict:
    import numpy as np
    from diffusers import AutoencoderKL

    from fvc_resources.autoencoder import AutoencoderResource

    config = SD_VAE_ARCHITECTURE if architecture == "sd" else TINY_ARCHITECTURE
    with tempfile.TemporaryDirectory() as folder:
        AutoencoderKL(**config).save_config(folder)
        scaler = AutoencoderResource(model=folder, device="auto", pretrained=False, batch_size=4).scaler()
        batch = np.random.default_rng(0).integers(0, 256, (frames, 144, 256, 3), dtype=np.uint8)
        scaler(batch[:1])  # warm-up
        start = time.perf_counter()
        scaler(batch)
        seconds = time.perf_counter() - start
    return {"seconds": seconds, "frames": frames, "peak_mb": peak_mb(), "device": scaler.device}


def one(what: str, path: str, n: int) -> dict:
    if what == "letterbox":
        return _letterbox_one(path)
    return _autoencoder_one(path, n)


def main() -> None:
    source = make_video("1080p_10s", "1920x1080", 10, "6M")
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip_1080p.mp4"
        subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-i", str(source), "-t", "4",
                        "-c", "copy", str(clip)], check=True)
        ours = in_subprocess("benchmarks.stages34", "letterbox", str(clip), "0")
        ref = timed_command(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-i", str(clip),
                             "-vf", "scale=256:-2:flags=area", "-c:v", "libx264", "-preset", "veryfast",
                             "-crf", "18", "-x264-params", "mbtree=0", "-pix_fmt", "yuv420p",
                             str(Path(tmp) / "ref.mp4")])
    fps, ref_fps = ours["frames"] / ours["seconds"], ours["frames"] / ref["seconds"]
    print("Stage 3 letterbox, 1080p clip to 256 px, same x264 settings\n")
    print_table(["route", "frames", "seconds", "frames/s", "peak MB", "x ffmpeg"], [
        ["ffmpeg -vf scale=256:-2:flags=area", ours["frames"], f"{ref['seconds']:.2f}", f"{ref_fps:.0f}",
         f"{ref['peak_mb']:.0f}", "1.00"],
        ["scale_clip (PyAV resize)", ours["frames"], f"{ours['seconds']:.2f}", f"{fps:.0f}",
         f"{ours['peak_mb']:.0f}", f"{fps / ref_fps:.2f}"],
    ])
    rows = []
    for architecture, frames in (("tiny", 32), ("sd", 4)):
        r = in_subprocess("benchmarks.stages34", "autoencoder", architecture, str(frames))
        rows.append([architecture, r["device"], frames, f"{r['seconds']:.2f}", f"{r['frames'] / r['seconds']:.2f}",
                     f"{r['seconds'] / r['frames'] * 100:.1f}", f"{r['peak_mb']:.0f}"])
    print("\nStage 3 autoencoder (CUDA when present, else CPU), 256x144 frames (encode + decode), batch 4\n")
    print_table(["VAE", "device", "frames", "seconds", "frames/s", "s per 100 frames", "peak MB"], rows)


if __name__ == "__main__":
    cli(main, one)
