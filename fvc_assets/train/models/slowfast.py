"""SlowFast (pytorchvideo builder) with one logit; slow path sees every 4th frame of the fast path."""

from __future__ import annotations

from fvc_assets.train.models.video3d import Video3dModel

ALPHA = 4  # fast / slow frame-rate ratio
HUB = "https://dl.fbaipublicfiles.com/pytorchvideo/model_zoo/kinetics/SLOWFAST_8x8_R50.pyth"


class SlowFastModel(Video3dModel):
    name = "slowfast"

    @property
    def hub_url(self):
        return HUB if self.settings.model_depth == 50 else None

    def build_network(self):
        from pytorchvideo.models.slowfast import create_slowfast

        s = self.settings
        if s.frames % ALPHA:
            raise ValueError(f"slowfast needs frames divisible by {ALPHA} (got {s.frames})")
        spatial = max(1, s.image_size // 32)
        return create_slowfast(
            model_num_class=1,
            model_depth=s.model_depth,
            slowfast_fusion_conv_stride=(ALPHA, 1, 1),
            slowfast_fusion_conv_kernel_size=(ALPHA + 3 if ALPHA > 1 else 1, 1, 1),
            head_pool_kernel_sizes=((s.frames // ALPHA, spatial, spatial), (s.frames, spatial, spatial)),
        )

    def forward(self, x):
        fast = x.permute(0, 2, 1, 3, 4)  # (B, 3, T, S, S)
        slow = fast[:, :, ::ALPHA]
        return self.net([slow, fast]).reshape(x.shape[0])


def build(settings):
    return SlowFastModel(settings)
