"""The GPU autoencoder of stage 3: diffusers' AutoencoderKL, loaded from a hub id or a local path.

Frames already scaled to the target size go through the VAE (encode to
latents, decode back) in batches. On CUDA out-of-memory the batch is halved
and retried, down to one frame; past that :class:`AutoencoderOutOfMemory` is
raised so the caller can fall back to letterbox for that clip and say so.
torch and diffusers are imported only when a model is loaded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import numpy as np
from pydantic import Field

from fvc_core.progress import Throttled

DEFAULT_MODEL = "stabilityai/sd-vae-ft-mse"


class AutoencoderLoadError(RuntimeError):
    pass


class AutoencoderOutOfMemory(RuntimeError):
    pass


def resolve_subfolder(model: str, subfolder: str | None) -> str | None:
    """A local full pipeline keeps its VAE in ``vae/``; a standalone VAE has config.json at the top."""
    if subfolder is not None:
        return subfolder or None
    path = Path(model)
    if path.is_dir() and not (path / "config.json").exists() and (path / "vae" / "config.json").exists():
        return "vae"
    return None


def pick_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def load_vae(model: str, subfolder: str | None, pretrained: bool, device: str, channels_last: bool = True):
    """AutoencoderKL on ``device``: float16 on CUDA, float32 on CPU. Fails clearly, never silently.

    ``channels_last``: convolution weights (and, in VaeScaler, inputs) in NHWC order; on this
    machine's CPU the full sd-vae-ft-mse ran 1.12x faster so (benchmarks.stages34).
    """
    import torch
    from diffusers import AutoencoderKL

    dtype = torch.float16 if device.startswith("cuda") else torch.float32
    sub = resolve_subfolder(model, subfolder)
    try:
        if pretrained:
            vae = AutoencoderKL.from_pretrained(model, subfolder=sub, torch_dtype=dtype)
        else:  # random weights from the model's config: for timing, never for results
            vae = AutoencoderKL.from_config(AutoencoderKL.load_config(model, subfolder=sub)).to(dtype)
    except (OSError, ValueError, EnvironmentError) as exc:
        where = f"{model}" + (f" (subfolder {sub})" if sub else "")
        raise AutoencoderLoadError(
            f"could not load the autoencoder {where}: {exc}. Point `model` at a local folder that "
            "holds the weights (save_pretrained layout), or set pretrained=false for random weights."
        ) from exc
    vae = vae.to(device).eval()
    return vae.to(memory_format=torch.channels_last) if channels_last else vae


@dataclass
class VaeScaler:
    """Calls the VAE on chunks of RGB uint8 frames (k, H, W, 3), returning frames of the same size."""

    vae: object
    device: str
    batch_size: int = 8
    channels_last: bool = True
    batch_history: list[int] = field(default_factory=list)
    # Progress per batch on CPU (under 1 frame/s there); on a GPU a line every 10 s.
    log: Callable[[str], None] | None = None
    _frames_done: int = field(default=0, repr=False)
    _progress: Throttled | None = field(default=None, repr=False)

    @property
    def multiple(self) -> int:
        # Each down block but the last halves the size; inputs must divide evenly.
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    def _forward(self, batch):
        latents = self.vae.encode(batch).latent_dist.mode()  # mode: deterministic
        return self.vae.decode(latents).sample

    def __call__(self, chunk: np.ndarray) -> np.ndarray:
        import torch

        k, h, w, _ = chunk.shape
        m = self.multiple
        ph, pw = (-h) % m, (-w) % m
        padded = np.pad(chunk, ((0, 0), (0, ph), (0, pw), (0, 0)), mode="edge") if ph or pw else chunk
        dtype = next(self.vae.parameters()).dtype
        out = np.empty_like(chunk)
        start = 0
        with torch.inference_mode():
            while start < k:
                size = min(self.batch_size, k - start)
                x = torch.from_numpy(np.ascontiguousarray(padded[start : start + size])).to(self.device)
                x = x.permute(0, 3, 1, 2).to(dtype) / 127.5 - 1.0
                if self.channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                try:
                    y = self._forward(x)
                except torch.cuda.OutOfMemoryError as exc:
                    if torch.cuda.is_available():
                        torch.cuda.empty_cache()
                    if self.batch_size == 1:
                        raise AutoencoderOutOfMemory(f"CUDA out of memory at batch size 1 ({exc})") from exc
                    self.batch_size = max(1, self.batch_size // 2)
                    continue
                self.batch_history.append(size)
                self._report(size)
                y = ((y.float().clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8)
                out[start : start + size] = y.permute(0, 2, 3, 1)[:, :h, :w].cpu().numpy()
                start += size
        return out


    def _report(self, size: int) -> None:
        if self._progress is None:
            self._progress = Throttled(self.log, 0.0 if self.device == "cpu" else 10.0)
        self._frames_done += size
        done, elapsed = self._frames_done, max(self._progress.elapsed(), 1e-9)
        self._progress(lambda: f"autoencoder on {self.device}: batch of {size}, {done} frames in this step, "
                               f"{done / elapsed:.2f} frames/s")


class AutoencoderResource(dg.ConfigurableResource):
    """diffusers AutoencoderKL for stage 3's `autoencoder` method."""

    model: str = Field(default=DEFAULT_MODEL, description="Hub id or local folder (save_pretrained layout).")
    subfolder: str | None = Field(default=None, description="'vae' for a full pipeline; auto-detected locally.")
    device: str = Field(default="auto", description="auto (CUDA when present), cpu or cuda[:N].")
    batch_size: int = Field(default=8, ge=1, description="Frames per batch; halved on CUDA out-of-memory.")
    pretrained: bool = Field(default=True, description="False: random weights from the config (timing only).")
    channels_last: bool = Field(
        default=True, description="NHWC memory order for the VAE's convolutions: 1.12x faster on CPU here "
                                  "(benchmarks.stages34); on CUDA compare with benchmarks.gpu.")

    def scaler(self, log: Callable[[str], None] | None = None) -> VaeScaler:
        device = pick_device(self.device)
        cache_key = (self.model, self.subfolder, self.pretrained, device, self.channels_last)
        if cache_key not in _LOADED:
            _LOADED[cache_key] = load_vae(self.model, self.subfolder, self.pretrained, device, self.channels_last)
        return VaeScaler(_LOADED[cache_key], device, self.batch_size, channels_last=self.channels_last, log=log)


_LOADED: dict[tuple, object] = {}  # one model per process, shared by the clips of a step
