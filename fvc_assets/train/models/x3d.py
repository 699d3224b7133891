"""X3D (pytorchvideo builder) with one logit and no softmax head."""

from __future__ import annotations

from fvc_assets.train.models.video3d import Video3dModel

HUB = "https://dl.fbaipublicfiles.com/pytorchvideo/model_zoo/kinetics/X3D_XS.pyth"


class X3dModel(Video3dModel):
    name = "x3d"
    hub_url = HUB

    def build_network(self):
        from pytorchvideo.models.x3d import create_x3d

        s = self.settings
        return create_x3d(
            input_clip_length=s.frames, input_crop_size=s.image_size, model_num_class=1,
            width_factor=s.x3d_width_factor, depth_factor=s.x3d_depth_factor, head_activation=None,
        )


def build(settings):
    return X3dModel(settings)
