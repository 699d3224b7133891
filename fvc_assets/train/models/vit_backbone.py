"""A timm ViT as a per-frame feature extractor, with pretrained loading that fails clearly."""

from __future__ import annotations

from fvc_assets.train.models.deep import DeepModel, PretrainedWeightsError


def vit_backbone(settings, weights_path: str):
    """timm model without its classifier (num_classes=0): (N, 3, S, S) -> (N, embed_dim)."""
    import timm

    if settings.pretrained and (settings.vit_patch_size or settings.vit_depth):
        raise ValueError(f"vit_patch_size {settings.vit_patch_size} / vit_depth {settings.vit_depth} change "
                         f"{settings.backbone}'s shape, and its pretrained weights fit only its own: set both to 0, "
                         "or pretrained=false")
    kwargs = {"num_classes": 0, "img_size": settings.image_size}
    if settings.vit_patch_size:
        kwargs["patch_size"] = settings.vit_patch_size
    if settings.vit_depth:
        kwargs["depth"] = settings.vit_depth
    if settings.pretrained and weights_path:
        kwargs["pretrained_cfg_overlay"] = {"file": weights_path}
    try:
        return timm.create_model(settings.backbone, pretrained=settings.pretrained, **kwargs)
    except Exception as exc:
        if not settings.pretrained:
            raise
        where = weights_path or "the Hugging Face hub"
        raise PretrainedWeightsError(
            f"{settings.backbone}: pretrained weights could not be loaded from {where}: {exc}. "
            "Set weights_paths to a local file for this model, or pretrained=false to train from scratch."
        ) from exc


def frame_embeddings(backbone, x):
    """(B, T, 3, S, S) -> (B, T, D)."""
    b, t = x.shape[:2]
    return backbone(x.flatten(0, 1)).view(b, t, -1)


class VitFrameModel(DeepModel):
    """A ViT per frame: its inputs are normalised as the timm weights were trained (their pretrained config)."""

    def normalisation(self):
        import timm

        config = timm.get_pretrained_cfg(self.settings.backbone)
        return tuple(config.mean), tuple(config.std)
