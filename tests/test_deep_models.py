"""Frame models on real tiny clips: every model trains and scores, checkpoints resume, weights load clearly."""

import dataclasses

import numpy as np
import polars as pl
import pytest

from fvc_assets.train.fold_training import train_fold
from fvc_assets.train.models.base import FitContext
from fvc_assets.train.models.deep import CHECKPOINT, DeepModel, PretrainedWeightsError
from fvc_assets.train.models.registry import MODELS, build_model
from fvc_core.train_settings import DEMO_SETTINGS
from tests.train_data import clip_catalog

TINY = dataclasses.replace(DEMO_SETTINGS, frames=4, image_size=32, epochs=1, batch_size=4,
                           backbone="vit_tiny_patch16_224", device="cpu")
# Pretrained ViT weights fit the backbone's own patch side and depth only.
TINY_OWN_VIT = dataclasses.replace(TINY, vit_patch_size=0, vit_depth=0)
FRAME_MODELS = [name for name, spec in MODELS.items() if spec.inputs == "frames" and name != "i3d"]


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("clips")
    catalog, folds = clip_catalog(root)
    return root, catalog, folds


@pytest.mark.parametrize("name", FRAME_MODELS)
def test_frame_model_trains_scores_and_reloads(name, clips, tmp_path):
    root, catalog, folds = clips
    settings = TINY
    outcome = train_fold(name, 0, catalog, folds, settings, root=root, workdir=tmp_path / name,
                         frames_cache=root / "cache", train_dir=tmp_path, log=lambda _: None)
    scores = outcome.predictions["score"].to_numpy()
    assert np.all((scores >= 0) & (scores <= 1)) and np.all(np.isfinite(scores))
    held_out = set(folds.filter(pl.col("fold") == 0)["video_id"].to_list())
    assert set(outcome.predictions["video_id"].to_list()) == held_out
    assert outcome.info["resumed_from_epoch"] == 0 and outcome.info["device"] == "cpu"
    loaded = build_model(name, settings)
    loaded.load(tmp_path / name)
    context = FitContext(root=root, workdir=tmp_path, frames_cache=root / "cache")
    clips_in_order = outcome.predictions.select("clip_id").join(catalog, on="clip_id", maintain_order="left")
    assert np.allclose(loaded.predict(clips_in_order, context), scores, atol=1e-5)


class Interrupt(Exception):
    pass


def test_an_interrupted_fold_resumes_from_its_checkpoint(clips, tmp_path, monkeypatch):
    root, catalog, folds = clips
    settings = dataclasses.replace(TINY, epochs=3)

    def run(workdir):
        return train_fold("naive_cnn", 1, catalog, folds, settings, root=root, workdir=workdir,
                          frames_cache=root / "cache", train_dir=tmp_path, log=lambda _: None)

    uninterrupted = run(tmp_path / "whole")
    original_checkpoint = DeepModel._checkpoint
    saved = []

    def checkpoint_then_die(self, path, state):
        original_checkpoint(self, path, state)
        saved.append(state["epoch"])
        if state["epoch"] == 1:
            raise Interrupt  # as if the step were killed after its second epoch was saved

    monkeypatch.setattr(DeepModel, "_checkpoint", checkpoint_then_die)
    with pytest.raises(Interrupt):
        run(tmp_path / "cut")
    assert saved == [0, 1] and (tmp_path / "cut" / CHECKPOINT).exists()
    monkeypatch.setattr(DeepModel, "_checkpoint", original_checkpoint)
    resumed = run(tmp_path / "cut")
    assert resumed.info["resumed_from_epoch"] == 2
    assert "loss_epoch_1" not in resumed.info and "loss_epoch_3" in resumed.info
    assert np.allclose(resumed.predictions["score"].to_numpy(), uninterrupted.predictions["score"].to_numpy(),
                       atol=1e-5)
    # Other settings do not resume from that checkpoint.
    other = train_fold("naive_cnn", 1, catalog, folds, dataclasses.replace(settings, lr=settings.lr / 2), root=root,
                       workdir=tmp_path / "cut", frames_cache=root / "cache", train_dir=tmp_path, log=lambda _: None)
    assert other.info["resumed_from_epoch"] == 0


def test_vit_loads_pretrained_weights_from_a_local_file(tmp_path):
    import timm
    import torch

    source = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=2, img_size=32)
    torch.save(source.state_dict(), tmp_path / "vit.pth")
    settings = dataclasses.replace(TINY_OWN_VIT, pretrained=True,
                                   weights_paths={"vit_gru": str(tmp_path / "vit.pth")})
    model = build_model("vit_gru", settings)
    net = model.network()
    assert torch.equal(net.backbone.patch_embed.proj.weight, source.patch_embed.proj.weight)


def test_pretrained_without_reachable_weights_fails_clearly(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(PretrainedWeightsError, match="vit_tiny_patch16_224: pretrained weights could not be loaded"):
        build_model("vit_gru", dataclasses.replace(TINY_OWN_VIT, pretrained=True)).network()
    with pytest.raises(PretrainedWeightsError, match="x3d: pretrained weights could not be loaded from .*missing.pth"):
        build_model("x3d", dataclasses.replace(TINY, pretrained=True,
                                                weights_paths={"x3d": str(tmp_path / "missing.pth")})).network()


def test_video_network_loads_a_local_checkpoint(tmp_path):
    import torch

    first = build_model("x3d", TINY).network()
    torch.save(first.state_dict(), tmp_path / "x3d.pth")
    second = build_model("x3d", dataclasses.replace(TINY, pretrained=True, weights_paths={"x3d": str(tmp_path / "x3d.pth")}))
    net = second.network()
    for key, value in first.state_dict().items():
        assert torch.equal(net.state_dict()[key], value), key


def test_i3d_builds_and_scores_a_clip():
    import torch

    model = build_model("i3d", dataclasses.replace(TINY, image_size=32, frames=4))
    model.net = model.network()
    model.net.eval()
    with torch.no_grad():
        logits = model.forward(torch.randn(2, 4, 3, 32, 32))
    assert logits.shape == (2,) and torch.all(torch.isfinite(logits))


def test_weights_for_another_size_are_refused_not_half_loaded(tmp_path):
    import torch

    wider = build_model("x3d", dataclasses.replace(TINY, x3d_width_factor=2.0)).network()
    torch.save(wider.state_dict(), tmp_path / "x3d_wide.pth")
    with pytest.raises(PretrainedWeightsError, match="another architecture or size"):
        build_model("x3d", dataclasses.replace(TINY, pretrained=True,
                                                weights_paths={"x3d": str(tmp_path / "x3d_wide.pth")})).network()
