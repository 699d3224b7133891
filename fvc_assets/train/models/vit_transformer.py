"""ViT per frame, then a Transformer encoder over time at the ViT's own width (768 for ViT-B/16): 8 heads,
2 layers, feed-forward 2048, dropout 0.5, a learned position per frame; mean-pooled, then Linear(768→1)."""

from __future__ import annotations

from fvc_assets.train.models.vit_backbone import VitFrameModel, frame_embeddings, vit_backbone

HEADS = 8
LAYERS = 2
FEED_FORWARD = 2048
DROPOUT = 0.5
MAX_FRAMES = 64


def network(settings, weights_path: str = ""):
    import torch
    from torch import nn

    class VitTransformer(nn.Module):
        def __init__(self):
            super().__init__()
            self.backbone = vit_backbone(settings, weights_path)
            width = self.backbone.num_features
            # Frames in order: without a position the encoder would see a clip as an unordered set.
            self.position = nn.Parameter(torch.zeros(1, MAX_FRAMES, width))
            layer = nn.TransformerEncoderLayer(width, nhead=HEADS, dim_feedforward=FEED_FORWARD, dropout=DROPOUT,
                                               batch_first=True)
            self.temporal = nn.TransformerEncoder(layer, num_layers=LAYERS, enable_nested_tensor=False)
            self.head = nn.Linear(width, 1)

        def forward(self, x):
            tokens = frame_embeddings(self.backbone, x)
            tokens = tokens + self.position[:, : tokens.shape[1]]
            return self.head(self.temporal(tokens).mean(dim=1)).squeeze(1)

    return VitTransformer()


class VitTransformerModel(VitFrameModel):
    name = "vit_transformer"

    def network(self):
        if self.settings.frames > MAX_FRAMES:
            raise ValueError(f"vit_transformer supports at most {MAX_FRAMES} frames per clip")
        return network(self.settings, self.weights_path)


def build(settings):
    return VitTransformerModel(settings)
