"""ViT per frame, then a 2-layer Transformer encoder (8 heads) over time, mean-pooled to a logit."""

from __future__ import annotations

from fvc_assets.train.models.deep import DeepModel
from fvc_assets.train.models.vit_backbone import frame_embeddings, vit_backbone

TEMPORAL_DIM = 256
MAX_FRAMES = 64


def network(settings):
    import torch
    from torch import nn

    class VitTransformer(nn.Module):
        def __init__(self):
            super().__init__()
            self.backbone = vit_backbone(settings)
            self.project = nn.Linear(self.backbone.num_features, TEMPORAL_DIM)
            self.position = nn.Parameter(torch.zeros(1, MAX_FRAMES, TEMPORAL_DIM))
            layer = nn.TransformerEncoderLayer(TEMPORAL_DIM, nhead=8, dim_feedforward=2 * TEMPORAL_DIM,
                                               batch_first=True)
            self.temporal = nn.TransformerEncoder(layer, num_layers=2)
            self.head = nn.Linear(TEMPORAL_DIM, 1)

        def forward(self, x):
            tokens = self.project(frame_embeddings(self.backbone, x))
            tokens = tokens + self.position[:, : tokens.shape[1]]
            return self.head(self.temporal(tokens).mean(dim=1)).squeeze(1)

    return VitTransformer()


class VitTransformerModel(DeepModel):
    name = "vit_transformer"

    def network(self):
        if self.settings.frames > MAX_FRAMES:
            raise ValueError(f"vit_transformer supports at most {MAX_FRAMES} frames per clip")
        return network(self.settings)


def build(settings):
    return VitTransformerModel(settings)
