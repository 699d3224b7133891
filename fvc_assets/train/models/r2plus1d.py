"""torchvision r2plus1d_18 with a one-logit head (an extra model: add it with FVC_EXTRA_MODELS)."""

from __future__ import annotations

from fvc_assets.train.models.video3d import Video3dModel

HUB = "https://download.pytorch.org/models/r2plus1d_18-91a641e6.pth"
# torchvision's Kinetics-400 video weights were trained with these.
MEAN = (0.43216, 0.394666, 0.37645)
STD = (0.22803, 0.22145, 0.216989)


class R2Plus1dModel(Video3dModel):
    name = "r2plus1d"
    hub_url = HUB

    def build_network(self):
        from torchvision.models.video import r2plus1d_18

        return r2plus1d_18(weights=None, num_classes=1)

    def normalisation(self):
        return MEAN, STD


def build(settings):
    return R2Plus1dModel(settings)
