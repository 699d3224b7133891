"""Training settings shared by every model (pure dataclass; the Dagster resource fills it)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace

OPTIMIZERS = ("adam", "adamw")
FRAME_FITS = ("crop", "letterbox")  # fvc_assets.train.frames
LR_SCHEDULES = ("constant", "cosine")


def check_frame_fit(fit: str) -> str:
    """``fit`` if it is one of ``FRAME_FITS`` (the settings and the frame cache both ask)."""
    if fit not in FRAME_FITS:
        raise ValueError(f"frame_fit {fit!r}: use one of {', '.join(FRAME_FITS)}")
    return fit


@dataclass(frozen=True)
class TrainSettings:
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda
    threads: int = 0  # torch/xgboost threads; 0 = library default
    # Deep models
    backbone: str = "vit_base_patch16_224"  # timm name for vit_gru / vit_transformer
    pretrained: bool = False
    # The ViT backbone's patch side and number of blocks; 0 keeps the backbone's own (16 px and 12 blocks for
    # ViT-Tiny and ViT-B/16). Random weights only: pretrained weights belong to the backbone's own shape.
    vit_patch_size: int = 0
    vit_depth: int = 0
    # model name -> local weights file, used when pretrained (an offline node points each model at its own)
    weights_paths: dict[str, str] = field(default_factory=dict)
    frames: int = 8  # frames per clip (SlowFast: slowfast_frames)
    slowfast_frames: int = 32  # SlowFast's fast path; its slow path sees slowfast_frames / slowfast_alpha
    slowfast_alpha: int = 4
    image_size: int = 256  # square input: frames fitted to image_size x image_size
    # crop (shorter side to the square, the longer cut, centred) | letterbox (longer side, black bars): the
    # bars show each video's aspect ratio, which networks learnt on few videos (docs/pipeline.md)
    frame_fit: str = "crop"
    # Each training clip turned by a random one of the square's 8 flips and quarter turns (the same for all
    # its frames); the traces have no orientation, the scenes' layouts do.
    flip_augment: bool = True
    epochs: int = 10
    batch_size: int = 8
    grad_accum_steps: int = 2
    optimizer: str = "adam"  # adam (L2 weight decay) | adamw (decoupled)
    lr: float = 1e-4
    # model name -> its own learning rate (others: lr); transformers from random weights want a lower one
    lr_by_model: dict[str, float] = field(default_factory=dict)
    weight_decay: float = 1e-4
    lr_schedule: str = "constant"  # constant | cosine (to 0 over all optimizer steps, after the warm-up)
    warmup_steps: int = 0  # optimizer steps of linear warm-up (either schedule)
    balanced_sampler: bool = False  # batches half real, half fake (then the loss is not class-weighted)
    log_every_steps: int = 50  # optimizer steps between diagnostic records (besides each epoch's)
    model_depth: int = 50  # slowfast / i3d ResNet depth
    slowfast_width_factor: float = 1.0  # SlowFast's channels times this (stems 64 and 8 at 1.0, as published)
    x3d_width_factor: float = 2.0  # X3D-M: width 2.0, depth 2.2
    x3d_depth_factor: float = 2.2
    max_augmented_per_video: int = 10  # augmented clips per training video that deep models see (0..10)
    inner_folds: bool = True  # nested CV: train on each inner split of the outer training folds
    # ... the frame models too (four more fits each); without them they are no candidates of the nested pick
    # and no members of the ensemble, which learn only from inner out-of-fold scores.
    inner_folds_frame_models: bool = True

    def trains_inner_folds(self, inputs: str) -> bool:
        """Does a model reading ``inputs`` (features | frames) also train on the inner splits?"""
        return self.inner_folds and (inputs != "frames" or self.inner_folds_frame_models)

    def __post_init__(self):
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer {self.optimizer!r}: use one of {', '.join(OPTIMIZERS)}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule {self.lr_schedule!r}: use one of {', '.join(LR_SCHEDULES)}")
        check_frame_fit(self.frame_fit)

    @classmethod
    def from_saved(cls, saved: dict) -> "TrainSettings":
        """Settings written with a model by this or an earlier version (fields since dropped are ignored)."""
        from dataclasses import fields

        known = {f.name for f in fields(cls)}
        # Models saved before these settings existed saw letterboxed, unflipped frames.
        earlier = {"frame_fit": "letterbox", "flip_augment": False}
        return cls(**{**earlier, **{k: v for k, v in saved.items() if k in known}})

    def weights_path(self, model: str) -> str:
        return self.weights_paths.get(model, "")

    def learning_rate(self, model: str) -> float:
        return self.lr_by_model.get(model, self.lr)

    def fingerprint(self) -> str:
        """Identifies a checkpoint's settings: resume only into the same settings."""
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]

    def as_params(self) -> dict[str, str]:
        return {k: (json.dumps(v, sort_keys=True) if isinstance(v, dict) else str(v)) for k, v in asdict(self).items()}


# `make demo` on 2 CPU cores: the specified heads on small backbones (ViT-Tiny with 8-px patches and 4 blocks,
# SlowFast-R18 at half width with 8 frames, X3D at width/depth 1), 32 px cropped, 4 frames, 1 augmented clip
# per training video, 6 epochs from random weights. Sized for the time to result (benchmarks.time_to_result): at
# 64 px, 10 epochs and 2 augmented clips the frame models alone took longer than the whole 10-minute goal.
# AdamW (weight decay 0.05), 10 warm-up steps, cosine decay; a learning rate per family, each the best of those
# tried on benchmarks.learnability's corpus (docs/pipeline.md, "The demo profile"): the CNNs 3e-3 (x3d 1e-2),
# the ViTs 1e-4. At lr 1e-3 for all the 3D CNNs underfitted in 6 epochs and the ViTs hardly left their
# starting loss; lr 1e-4 is a fine-tuning rate for pretrained weights.
# Inner folds for the feature models only: a frame model's four inner fits would cost four times its own.
# ViT-Tiny's own 16-px patches cut a 32-px frame into 4 tokens; 8-px patches give 16, and 4 of its 12 blocks
# cost a quarter less per batch than the 12 on 4 tokens.
DEMO_SETTINGS = TrainSettings(
    backbone="vit_tiny_patch16_224", vit_patch_size=8, vit_depth=4, frames=4, slowfast_frames=8, slowfast_alpha=2,
    image_size=32, epochs=6, optimizer="adamw", weight_decay=0.05, lr_schedule="cosine", warmup_steps=10,
    lr=3e-3, lr_by_model={"x3d": 1e-2, "vit_gru": 1e-4, "vit_transformer": 1e-4},
    batch_size=8, grad_accum_steps=1, model_depth=18, slowfast_width_factor=0.5, x3d_width_factor=1.0,
    x3d_depth_factor=1.0, max_augmented_per_video=1, threads=0, log_every_steps=10, inner_folds_frame_models=False,
)
# The demo's networks for one epoch at lr 1e-4 with Adam: shows that every step runs, learns nothing. For
# pipeline tests.
SMOKE_SETTINGS = replace(DEMO_SETTINGS, epochs=1, optimizer="adam", weight_decay=1e-4, lr_schedule="constant",
                         warmup_steps=0, lr=1e-4, lr_by_model={}, inner_folds_frame_models=True)
# The specified sizes, for a GPU node: ViT-B/16, SlowFast-R50 (32 frames, slow path 8), X3D-M, 256 px cropped, 10 epochs,
# Adam at lr 1e-4 (fine-tuning pretrained weights).
FULL_SETTINGS = TrainSettings(pretrained=True)
PROFILES = {"demo": DEMO_SETTINGS, "smoke": SMOKE_SETTINGS, "full": FULL_SETTINGS}
# What each profile is, in a line for the UI beside every trained model.
PROFILE_NOTES = {
    "demo": "demo: the specified heads on small backbones (ViT-Tiny with 8-px patches and 4 blocks, SlowFast-R18 "
            "at half width, X3D at width 1), 32 px cropped, 6 epochs with AdamW and a learning rate per family from "
            "random weights, sized for make demo's time; what each learns: benchmarks.learnability",
    "smoke": "smoke: the demo's networks for 1 epoch at lr 1e-4: shows the pipeline runs, not what it can learn",
    "full": "full: the specified models (ViT-B/16, SlowFast-R50, X3D-M), 256 px cropped, 10 epochs",
}
