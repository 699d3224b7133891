"""Which models exist, what they train on, and how to build one (modules imported lazily)."""

from __future__ import annotations

import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class ModelSpec:
    name: str
    module: str  # fvc_assets.train.models.<module>, exposing build(settings) -> a TrainableModel
    inputs: str  # "features" (the 23 catalog features), "frames" (scaled clips), "scores" (other models)
    description: str


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in [
        ModelSpec("logistic_regression", "logistic_regression", "features",
                  "L2 logistic regression, class-balanced, on the 23 features"),
        ModelSpec("linear_svm", "linear_svm", "features",
                  "linear SVM with a Platt (sigmoid) mapping fitted on grouped out-of-fold margins"),
        ModelSpec("xgboost", "xgboost_model", "features", "gradient-boosted trees (XGBoost hist)"),
        ModelSpec("naive_cnn", "naive_cnn", "frames", "3 conv blocks, global pooling, per-frame logits averaged"),
        ModelSpec("vit_gru", "vit_gru", "frames", "timm ViT per frame, then a 2-layer GRU (hidden 256) over time"),
        ModelSpec("vit_transformer", "vit_transformer", "frames",
                  "timm ViT per frame, then a 2-layer Transformer encoder (8 heads) over time"),
        ModelSpec("slowfast", "slowfast", "frames", "pytorchvideo SlowFast with a binary head"),
        ModelSpec("x3d", "x3d", "frames", "pytorchvideo X3D with a binary head"),
        ModelSpec("ensemble", "ensemble", "scores",
                  "logistic regression over the other models' held-out scores, fitted on other folds only"),
        ModelSpec("r2plus1d", "r2plus1d", "frames", "torchvision r2plus1d_18 with a binary head (extra)"),
        ModelSpec("i3d", "i3d", "frames", "inflated 3D ResNet (pytorchvideo create_resnet) (extra)"),
    ]
}
DEFAULT_MODELS = ("logistic_regression", "linear_svm", "xgboost", "naive_cnn", "vit_gru", "vit_transformer",
                  "slowfast", "x3d", "ensemble")
EXTRA_MODELS = ("r2plus1d", "i3d")


def spec(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(MODELS)}") from None


def build_model(name: str, settings):
    """A fresh, untrained model of that name."""
    module = importlib.import_module(f"fvc_assets.train.models.{spec(name).module}")
    return module.build(settings)


def model_names_from(text: str | None) -> tuple[str, ...]:
    """Parse FVC_MODELS / FVC_EXTRA_MODELS style lists: 'a,b c' -> ('a', 'b', 'c'); unknown names raise."""
    names = tuple(n for n in (text or "").replace(",", " ").split() if n)
    for name in names:
        spec(name)
    return names


def base_models(models: tuple[str, ...]) -> tuple[str, ...]:
    """The models an ensemble combines: every model in the set that does not itself read scores."""
    return tuple(m for m in models if spec(m).inputs != "scores")
