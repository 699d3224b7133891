"""A naive CNN per frame: Conv(3→32), Conv(32→64), Conv(64→128), each with BatchNorm and ReLU (and a 2x2
max-pool between blocks), global average pooling, then Linear(128→64) → ReLU → Dropout(0.5) → Linear(64→1);
the frames' logits are averaged over the clip."""

from __future__ import annotations

from fvc_assets.train.models.deep import DeepModel

CHANNELS = (3, 32, 64, 128)
HIDDEN = 64
DROPOUT = 0.5


def network():
    import torch
    from torch import nn

    def block(cin, cout):
        return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                             nn.MaxPool2d(2))

    class NaiveCnn(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(*(block(a, b) for a, b in zip(CHANNELS, CHANNELS[1:])))
            self.head = nn.Sequential(nn.Linear(CHANNELS[-1], HIDDEN), nn.ReLU(inplace=True), nn.Dropout(DROPOUT),
                                      nn.Linear(HIDDEN, 1))

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
