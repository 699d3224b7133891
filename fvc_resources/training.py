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
    weights_path: str | None = None
    frames: int | None = None
    image_size: int | None = None
    epochs: int | None = None
    batch_size: int | None = None
    grad_accum_steps: int | None = None
    lr: float | None = None
    weight_decay: float | None = None
    model_depth: int | None = None
    max_augmented_per_video: int | None = None

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
