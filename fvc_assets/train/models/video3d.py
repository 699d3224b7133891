"""What the 3D video networks share: (B, T, 3, S, S) in, channels-first clips for the network."""

from __future__ import annotations

import warnings

from fvc_assets.train.models.deep import KINETICS_MEAN, KINETICS_STD, DeepModel, load_local_or_hub_state

# pytorchvideo 0.1.5 decorates its Swish with torch.jit.script, which torch 2.14 flags on every import.
warnings.filterwarnings("ignore", message=r"`torch.jit.script` is deprecated", category=FutureWarning)


class Video3dModel(DeepModel):
    """Subclasses give ``build_network()`` and optionally ``hub_url`` for pretrained weights; inputs are
    normalised with Kinetics' mean and std, as pytorchvideo's checkpoints were trained."""

    hub_url: str | None = None

    def build_network(self):
        raise NotImplementedError

    def network(self):
        net = self.build_network()
        if self.settings.pretrained:
            load_local_or_hub_state(net, self.name, self.weights_path, self.hub_url)
        return net

    def normalisation(self):
        return KINETICS_MEAN, KINETICS_STD

    def forward(self, x):
        return self.net(x.permute(0, 2, 1, 3, 4)).reshape(x.shape[0])  # (B, 3, T, S, S)
