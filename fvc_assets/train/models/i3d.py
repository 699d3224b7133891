"""An inflated 3D ResNet (pytorchvideo ``create_resnet`` with I3D's temporal kernels); an extra model."""

from __future__ import annotations

from fvc_assets.train.models.video3d import Video3dModel

HUB = "https://dl.fbaipublicfiles.com/pytorchvideo/model_zoo/kinetics/I3D_8x8_R50.pyth"


class I3dModel(Video3dModel):
    name = "i3d"

    @property
    def hub_url(self):
        return HUB if self.settings.model_depth == 50 else None

    def build_network(self):
        from torch import nn
        from pytorchvideo.models.resnet import create_resnet

        s = self.settings
        depth = s.model_depth if s.model_depth in (50, 101, 152) else 50
        spatial = max(1, s.image_size // 32)
        return create_resnet(
            model_depth=depth,
            model_num_class=1,
            stem_conv_kernel_size=(5, 7, 7),
            stage1_pool=nn.MaxPool3d,
            stage_conv_a_kernel_size=((3, 1, 1), [(3, 1, 1), (1, 1, 1)], [(3, 1, 1), (1, 1, 1)],
                                      [(1, 1, 1), (3, 1, 1)]),
            head_pool_kernel_size=(max(1, s.frames // 2), spatial, spatial),
        )


def build(settings):
    return I3dModel(settings)
