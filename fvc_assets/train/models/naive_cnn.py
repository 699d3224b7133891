"""A naive frame CNN: 3 conv blocks, global pooling, one logit per frame, averaged over frames."""

from __future__ import annotations

from fvc_assets.train.models.deep import DeepModel


def network():
    import torch
    from torch import nn

    def block(cin, cout):
        return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                             nn.MaxPool2d(2))

    class NaiveCnn(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(block(3, 32), block(32, 64), block(64, 128))
            self.head = nn.Linear(128, 1)

        def forward(self, x):  # (B, T, 3, H, W)
            b, t = x.shape[:2]
            pooled = torch.flatten(nn.functional.adaptive_avg_pool2d(self.features(x.flatten(0, 1)), 1), 1)
            return self.head(pooled).view(b, t).mean(dim=1)

    return NaiveCnn()


class NaiveCnnModel(DeepModel):
    name = "naive_cnn"

    def network(self):
        return network()


def build(settings):
    return NaiveCnnModel(settings)
