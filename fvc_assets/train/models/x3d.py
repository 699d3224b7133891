"""X3D-M (pytorchvideo builder: width factor 2.0, depth factor 2.2, bottleneck 2.25) with one logit and no
softmax head; the demo profile builds it at width and depth factor 1."""

from __future__ import annotations

from fvc_assets.train.models.video3d import Video3dModel

HUB = "https://dl.fbaipublicfiles.com/pytorchvideo/model_zoo/kinetics/X3D_M.pyth"
X3D_M = (2.0, 2.2)  # (width factor, depth factor)


class X3dModel(Video3dModel):
    name = "x3d"

    @property
    def hub_url(self):
        s = self.settings
        return HUB if (s.x3d_width_factor, s.x3d_depth_factor) == X3D_M else None

    def build_network(self):
        from pytorchvideo.models.x3d import create_x3d

        s = self.settings
        return create_x3d(
            input_clip_length=s.frames, input_crop_size=s.image_size, model_num_class=1,
            width_factor=s.x3d_width_factor, depth_factor=s.x3d_depth_factor, head_activation=None,
        )


def build(settings):
    return X3dModel(settings)
