"""Stage 3 scaling costs on this machine, against ffmpeg measured in the same run.

    .venv/bin/python -m benchmarks.stages34      (also part of `make bench`)

1. Letterbox scaling of a 1080p and a 480p clip to 256: frames/s against
   `ffmpeg -vf scale` with the same encoder settings. Goal ratio >= 0.95.
2. The autoencoder path on this CPU, per 100 frames: decoding and resizing, the
   VAE's encoder and decoder under inference_mode / no_grad, channels-last, one
   thread or all, and x264 writing the result.
3. Autoencoder scaling on CUDA when present, else CPU: frames/s at 256 px with the
   tiny test VAE, and with the full sd-vae-ft-mse architecture (random weights;
   timing only). The predecessor reported about 3.5 s per 100 frames on a GPU.
"""

from __future__ import annotations

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


def _autoencoder_profile_one(path: str, frames: int) -> dict:
    """Where the autoencoder path's time goes, per 100 frames at 256 px, on this machine's CPU:
    decoding and resizing the clip, the VAE's encoder (to latents), its decoder (back to pixels),
    and x264 writing the result; then the VAE under each setting worth trying."""
    import numpy as np
    import torch
    from diffusers import AutoencoderKL

    from fvc_resources.autoencoder import VaeScaler
    from fvc_resources.video import ClipWriter, OpenedVideo, batched_arrays

    start = time.perf_counter()
    with OpenedVideo(path) as video:
        chunks = list(batched_arrays(video.frames(), 32, max_frames=frames, width=256, height=144))
    decode_s = time.perf_counter() - start
    batch = np.concatenate(chunks)[:frames]
    n = len(batch)
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        with ClipWriter(Path(folder) / "out.mp4", 30.0) as writer:
            writer.write(batch)
            writer.close()
        write_s = time.perf_counter() - start
    vae = AutoencoderKL(**SD_VAE_ARCHITECTURE).eval()
    x = torch.from_numpy(batch).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    per_100 = lambda seconds: round(seconds / n * 100, 2)  # noqa: E731
    result = {"frames": n, "decode_resize": per_100(decode_s), "x264_write": per_100(write_s),
              "threads_default": torch.get_num_threads()}
    settings = {
        "inference_mode, contiguous, default threads": dict(mode=torch.inference_mode, channels_last=False),
        "no_grad, contiguous, default threads": dict(mode=torch.no_grad, channels_last=False),
        "inference_mode, channels_last, default threads": dict(mode=torch.inference_mode, channels_last=True),
        "inference_mode, contiguous, 1 thread": dict(mode=torch.inference_mode, channels_last=False, threads=1),
    }
    default_threads = torch.get_num_threads()
    for name, setting in settings.items():
        torch.set_num_threads(setting.get("threads", default_threads))
        model = vae.to(memory_format=torch.channels_last) if setting["channels_last"] else \
            vae.to(memory_format=torch.contiguous_format)
        inputs = x.contiguous(memory_format=torch.channels_last) if setting["channels_last"] else x.contiguous()
        with setting["mode"]():
            model.decode(model.encode(inputs[:1]).latent_dist.mode())  # warm-up
            encode_s = decode_s_vae = 0.0
            for i in range(0, n, 4):
                t0 = time.perf_counter()
                latents = model.encode(inputs[i:i + 4]).latent_dist.mode()
                t1 = time.perf_counter()
                model.decode(latents)
                encode_s += t1 - t0
                decode_s_vae += time.perf_counter() - t1
        result[name] = {"vae_encode": per_100(encode_s), "vae_decode": per_100(decode_s_vae)}
    torch.set_num_threads(default_threads)
    # The platform's own path (VaeScaler: uint8 in and out, batches of 4) for the record.
    scaler = VaeScaler(vae.to(memory_format=torch.channels_last), "cpu", batch_size=4)  # as the resource loads it
    start = time.perf_counter()
    scaler(batch)
    result["vae_scaler"] = per_100(time.perf_counter() - start)
    return result


def autoencoder_profile_rows(clip: Path, frames: int = 12) -> tuple[list[list], dict]:
    r = in_subprocess("benchmarks.stages34", "ae_profile", str(clip), str(frames))
    baseline = r["inference_mode, contiguous, default threads"]
    base_total = baseline["vae_encode"] + baseline["vae_decode"]
    rows = []
    for name, value in r.items():
        if isinstance(value, dict):
            total = value["vae_encode"] + value["vae_decode"]
            rows.append([name, value["vae_encode"], value["vae_decode"], round(total, 1),
                         f"{base_total / total:.2f}"])
    return rows, r


def one(what: str, path: str, n: int) -> dict:
    if what == "letterbox":
        return _letterbox_one(path)
    if what == "ae_profile":
        return _autoencoder_profile_one(path, n)
    return _autoencoder_one(path, n)


def letterbox_rows(videos: list[tuple[str, Path]]) -> list[list]:
    """scale_clip against `ffmpeg -vf scale=256:-2:flags=area` with the same encoder settings, each
    in its own process, the same clip, one after the other."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, clip in videos:
            ours = in_subprocess("benchmarks.stages34", "letterbox", str(clip), "0")
            ref = timed_command(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-i", str(clip),
                                 "-vf", "scale=256:-2:flags=area", "-c:v", "libx264", "-preset", "veryfast",
                                 "-crf", "18", "-x264-params", "mbtree=0", "-pix_fmt", "yuv420p",
                                 str(Path(tmp) / "ref.mp4")])
            fps, ref_fps = ours["frames"] / ours["seconds"], ours["frames"] / ref["seconds"]
            rows.append([name, "ffmpeg -vf scale=256:-2:flags=area", ours["frames"], f"{ref['seconds']:.2f}",
                         f"{ref_fps:.0f}", f"{ref['peak_mb']:.0f}", "1.00"])
            rows.append([name, "scale_clip", ours["frames"], f"{ours['seconds']:.2f}", f"{fps:.0f}",
                         f"{ours['peak_mb']:.0f}", f"{fps / ref_fps:.2f}"])
    return rows


def main() -> None:
    videos = [("1080p 10 s", make_video("1080p_10s", "1920x1080", 10, "6M")),
              ("480p 10 s", make_video("480p_10s", "854x480", 10, "2M"))]
    print("Stage 3 letterbox to 256 px, same x264 settings (goal: >= 0.95x ffmpeg at 1080p and 480p)\n")
    print_table(["source", "route", "frames", "seconds", "frames/s", "peak MB", "x ffmpeg"], letterbox_rows(videos))

    rows, r = autoencoder_profile_rows(videos[0][1])
    print(f"\nStage 3 autoencoder on this CPU, full sd-vae-ft-mse architecture (random weights), 256x144, "
          f"{r['frames']} frames, batches of 4: seconds per 100 frames\n")
    print(f"around the VAE: decode + resize the clip {r['decode_resize']}, x264 write {r['x264_write']}; "
          f"the platform's VaeScaler (uint8 in and out): {r['vae_scaler']}\n")
    print_table(["setting", "VAE encode", "VAE decode", "VAE total", "x first row"], rows)
    rows = []
    for architecture, frames in (("tiny", 32), ("sd", 4)):
        r = in_subprocess("benchmarks.stages34", "autoencoder", architecture, str(frames))
        rows.append([architecture, r["device"], frames, f"{r['seconds']:.2f}", f"{r['frames'] / r['seconds']:.2f}",
                     f"{r['seconds'] / r['frames'] * 100:.1f}", f"{r['peak_mb']:.0f}"])
    print("\nStage 3 autoencoder (CUDA when present, else CPU), 256x144 frames (encode + decode), batch 4\n")
    print_table(["VAE", "device", "frames", "seconds", "frames/s", "s per 100 frames", "peak MB"], rows)


if __name__ == "__main__":
    cli(main, one)
