"""Training settings as a Dagster resource: a profile (demo or full) plus optional overrides."""

from __future__ import annotations

import dataclasses

import dagster as dg
from pydantic import Field

from fvc_core.train_settings import PROFILES, TrainSettings


class TrainingResource(dg.ConfigurableResource):
    """``profile``: 'demo' (small models for CPUs: the embedded default) or 'full' (the issue's sizes).

    Any override that is set replaces the profile's value.
    """

    profile: str = Field(default="demo", description="demo | full")
    seed: int | None = None
    device: str | None = Field(default=None, description="auto | cpu | cuda")
    threads: int | None = None
    backbone: str | None = Field(default=None, description="timm ViT name for vit_gru / vit_transformer")
    pretrained: bool | None = Field(default=None, description="load pretrained weights (hub or weights_path)")
    vit_patch_size: int | None = Field(default=None, description="ViT patch side (0: the backbone's own)")
    vit_depth: int | None = Field(default=None, description="ViT blocks (0: the backbone's own)")
    weights_paths: dict[str, str] | None = Field(
        default=None, description="model name -> local weights file, used when pretrained (e.g. vit_gru, x3d)")
    frames: int | None = None
    slowfast_frames: int | None = Field(default=None, description="SlowFast's fast-path frames per clip")
    slowfast_alpha: int | None = Field(default=None, description="fast / slow frame ratio of SlowFast")
    image_size: int | None = None
    frame_fit: str | None = Field(default=None, description="crop (the default: the shorter side to the square, "
                                                            "centred) | letterbox (black bars)")
    flip_augment: bool | None = Field(default=None, description="random flips and quarter turns of each "
                                                                "training clip")
    epochs: int | None = None
    batch_size: int | None = None
    grad_accum_steps: int | None = None
    optimizer: str | None = Field(default=None, description="adam (the default) | adamw")
    lr: float | None = None
    lr_by_model: dict[str, float] | None = Field(
        default=None, description="model name -> its own learning rate (the others use lr)")
    weight_decay: float | None = None
    lr_schedule: str | None = Field(default=None, description="constant | cosine")
    warmup_steps: int | None = Field(default=None, description="optimizer steps of linear warm-up")
    balanced_sampler: bool | None = Field(default=None, description="batches half real, half fake")
    log_every_steps: int | None = Field(default=None, description="optimizer steps between training records")
    model_depth: int | None = None
    slowfast_width_factor: float | None = Field(default=None, description="SlowFast's channels times this")
    x3d_width_factor: float | None = None
    x3d_depth_factor: float | None = None
    max_augmented_per_video: int | None = None
    inner_folds_frame_models: bool | None = Field(
        default=None, description="the frame models train on the inner splits too (off in the demo profile: "
                                  "then only the feature models are nested-pick candidates and ensemble members)")
    inner_folds: bool | None = Field(
        default=None, description="nested CV: each model also trains on the inner splits of its training folds "
                                  "(for unbiased model selection and the ensemble)")

    def settings(self) -> TrainSettings:
        profile = self.profile
        if profile not in PROFILES:
            raise ValueError(f"unknown training profile {profile!r}; known: {', '.join(PROFILES)}")
        overrides = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(TrainSettings)
            if getattr(self, f.name, None) is not None
        }
        return dataclasses.replace(PROFILES[profile], **overrides)
