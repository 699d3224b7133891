"""ViT per frame, then a GRU (hidden 256, 2 layers) over time; the last state gives the logit."""

from __future__ import annotations

from fvc_assets.train.models.vit_backbone import VitFrameModel, frame_embeddings, vit_backbone

HIDDEN = 256
LAYERS = 2


def network(settings, weights_path: str = ""):
    from torch import nn

    class VitGru(nn.Module):
        def __init__(self):
            super().__init__()
            self.backbone = vit_backbone(settings, weights_path)
            self.gru = nn.GRU(self.backbone.num_features, HIDDEN, num_layers=LAYERS, batch_first=True)
            self.head = nn.Linear(HIDDEN, 1)

        def forward(self, x):
            out, _ = self.gru(frame_embeddings(self.backbone, x))
            return self.head(out[:, -1]).squeeze(1)

    return VitGru()


class VitGruModel(VitFrameModel):
    name = "vit_gru"

    def network(self):
        return network(self.settings, self.weights_path)


def build(settings):
    return VitGruModel(settings)
