"""ViT per frame, then a GRU (hidden 256, 2 layers) over time; the last state gives the logit."""

from __future__ import annotations

from fvc_assets.train.models.deep import DeepModel
from fvc_assets.train.models.vit_backbone import frame_embeddings, vit_backbone


def network(settings):
    from torch import nn

    class VitGru(nn.Module):
        def __init__(self):
            super().__init__()
            self.backbone = vit_backbone(settings)
            self.gru = nn.GRU(self.backbone.num_features, 256, num_layers=2, batch_first=True)
            self.head = nn.Linear(256, 1)

        def forward(self, x):
            out, _ = self.gru(frame_embeddings(self.backbone, x))
            return self.head(out[:, -1]).squeeze(1)

    return VitGru()


class VitGruModel(DeepModel):
    name = "vit_gru"

    def network(self):
        return network(self.settings)


def build(settings):
    return VitGruModel(settings)
