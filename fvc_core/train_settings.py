"""Training settings shared by every model (pure dataclass; the Dagster resource fills it)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class TrainSettings:
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda
    threads: int = 0  # torch/xgboost threads; 0 = library default
    # Deep models
    backbone: str = "vit_base_patch16_224"  # timm name for vit_gru / vit_transformer
    pretrained: bool = False
    weights_path: str = ""  # local weights file; used when pretrained
    frames: int = 8  # frames per clip
    image_size: int = 224
    epochs: int = 10
    batch_size: int = 8
    grad_accum_steps: int = 2
    lr: float = 1e-4
    weight_decay: float = 1e-4
    model_depth: int = 50  # slowfast / i3d ResNet depth
    x3d_width_factor: float = 2.0
    x3d_depth_factor: float = 2.2
    max_augmented_per_video: int = 10  # augmented clips per training video that deep models see (0..10)

    def fingerprint(self) -> str:
        """Identifies a checkpoint's settings: resume only into the same settings."""
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]

    def as_params(self) -> dict[str, str]:
        return {k: str(v) for k, v in asdict(self).items()}


# Small enough for 2 CPU cores: the demo and the tests.
DEMO_SETTINGS = TrainSettings(
    backbone="vit_tiny_patch16_224", frames=4, image_size=64, epochs=1, batch_size=8, grad_accum_steps=1,
    model_depth=18, x3d_width_factor=1.0, x3d_depth_factor=1.0, max_augmented_per_video=2, threads=0,
)
# The defaults, for a GPU node.
FULL_SETTINGS = TrainSettings(pretrained=True)
PROFILES = {"demo": DEMO_SETTINGS, "full": FULL_SETTINGS}
