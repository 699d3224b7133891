"""SlowFast (pytorchvideo builder) with one logit.

The fast path takes ``slowfast_frames`` frames per clip (32 in the full profile, as SlowFast-R50 8x8 was
trained), the slow path every ``slowfast_alpha``-th of them (8); the demo profile takes 16 and 4.
"""

from __future__ import annotations

from fvc_assets.train.models.video3d import Video3dModel

HUB = "https://dl.fbaipublicfiles.com/pytorchvideo/model_zoo/kinetics/SLOWFAST_8x8_R50.pyth"
MIN_SLOW_FRAMES = 4


class SlowFastModel(Video3dModel):
    name = "slowfast"

    @property
    def hub_url(self):
        return HUB if self.settings.model_depth == 50 and self.settings.slowfast_width_factor == 1.0 else None

    @property
    def frame_count(self) -> int:
        return self.settings.slowfast_frames

    @property
    def slow_frames(self) -> int:
        return self.settings.slowfast_frames // self.settings.slowfast_alpha

    def build_network(self):
        from pytorchvideo.models.slowfast import create_slowfast

        s, alpha = self.settings, self.settings.slowfast_alpha
        if s.slowfast_frames % alpha or self.slow_frames < MIN_SLOW_FRAMES:
            raise ValueError(f"slowfast: slowfast_frames ({s.slowfast_frames}) must be a multiple of slowfast_alpha "
                             f"({alpha}) giving the slow path at least {MIN_SLOW_FRAMES} frames")
        spatial = max(1, s.image_size // 32)
        stems = (max(8, round(64 * s.slowfast_width_factor)), max(1, round(8 * s.slowfast_width_factor)))
        return create_slowfast(
            stem_dim_outs=stems,
            model_num_class=1,
            model_depth=s.model_depth,
            slowfast_channel_reduction_ratio=(8,),
            slowfast_conv_channel_fusion_ratio=2,
            slowfast_fusion_conv_stride=(alpha, 1, 1),
            slowfast_fusion_conv_kernel_size=(7, 1, 1),
            head_pool_kernel_sizes=((self.slow_frames, spatial, spatial), (s.slowfast_frames, spatial, spatial)),
        )

    def forward(self, x):
        fast = x.permute(0, 2, 1, 3, 4)  # (B, 3, T, S, S)
        slow = fast[:, :, :: self.settings.slowfast_alpha]
        return self.net([slow, fast]).reshape(x.shape[0])


def build(settings):
    return SlowFastModel(settings)
