"""The training loop: curves per step and epoch, a collapsed model named, the optimizer options, inner folds."""

import dataclasses

import numpy as np
import pytest

from fvc_assets.train.collapse import collapse_reasons
from fvc_assets.train.fold_training import train_fold
from fvc_assets.train.models.naive_cnn import NaiveCnnModel
from fvc_core.train_settings import DEMO_SETTINGS
from tests.train_data import clip_catalog

TINY = dataclasses.replace(DEMO_SETTINGS, image_size=32, epochs=2, batch_size=4, device="cpu", log_every_steps=1,
                           inner_folds=False, inner_folds_frame_models=True)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("clips")
    return root, *clip_catalog(root)


def test_training_records_curves_with_steps_times_and_parameter_counts(clips, tmp_path):
    root, catalog, folds = clips
    lines = []
    outcome = train_fold("naive_cnn", 0, catalog, folds, TINY, root=root, workdir=tmp_path / "w",
                         frames_cache=root / "cache", train_dir=tmp_path, log=lines.append)
    names = {name for name, *_ in outcome.history}
    assert {"parameters", "trainable_parameters", "train_loss", "grad_norm", "lr", "logit_mean", "logit_std",
            "logit_min", "logit_max", "distinct_logits", "epoch_train_loss", "epoch_grad_norm"} <= names
    epochs = [(step, value) for name, value, _, step in outcome.history if name == "epoch_train_loss"]
    assert [step for step, _ in epochs] == [1, 2]
    steps = [step for name, _, _, step in outcome.history if name == "grad_norm"]
    assert steps == sorted(steps) and len(steps) == outcome.info["optimizer_steps"]
    times = [t for *_, t, _ in outcome.history]
    assert all(t > 1_600_000_000_000 for t in times) and times == sorted(times)  # real ms timestamps
    parameters = dict((n, v) for n, v, _, _ in outcome.history if n.endswith("parameters"))
    assert parameters["parameters"] == parameters["trainable_parameters"] == outcome.info["parameters"] > 90_000
    assert any("epoch 2/2 loss" in line and "distinct" in line for line in lines)
    assert collapse_reasons(outcome.info, outcome.predictions["score"].to_numpy(), outcome.metrics["roc_auc"]) == []


def test_a_model_whose_logits_are_all_equal_is_named_collapsed(clips, tmp_path, monkeypatch):
    import torch

    class Constant(torch.nn.Module):  # one learnable logit, whatever the frames: the collapse to catch
        def __init__(self):
            super().__init__()
            self.bias = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x):
            return self.bias.expand(x.shape[0])

    monkeypatch.setattr(NaiveCnnModel, "network", lambda self: Constant())
    root, catalog, folds = clips
    outcome = train_fold("naive_cnn", 1, catalog, folds, TINY, root=root, workdir=tmp_path / "w",
                         frames_cache=root / "cache", train_dir=tmp_path, log=lambda _: None)
    reasons = collapse_reasons(outcome.info, outcome.predictions["score"].to_numpy(), outcome.metrics["roc_auc"])
    assert any("same score" in r for r in reasons) and any("logits of the last epoch were equal" in r for r in reasons)


def test_collapse_rules():
    varied = np.array([0.2, 0.7, 0.4])
    assert collapse_reasons({}, varied, 0.8) == []
    assert collapse_reasons({"optimizer_steps": 5, "zero_gradient_steps": 5}, varied, 0.8) == [
        "the gradient was zero at all 5 optimizer steps"]
    assert collapse_reasons({"final_train_loss": 1e-6}, varied, 0.52) == [
        "training loss 1.00e-06 while the held-out ROC-AUC is 0.520"]
    assert collapse_reasons({"final_train_loss": 1e-6}, varied, 0.9) == []  # fits well and generalises


def test_cosine_warm_up_and_balanced_batches_train_and_keep_their_schedule_in_the_checkpoint(clips, tmp_path):
    import torch

    from fvc_assets.train.models.deep import CHECKPOINT

    root, catalog, folds = clips
    settings = dataclasses.replace(TINY, lr_schedule="cosine", warmup_steps=2, balanced_sampler=True,
                                   optimizer="adamw")
    outcome = train_fold("naive_cnn", 2, catalog, folds, settings, root=root, workdir=tmp_path / "w",
                         frames_cache=root / "cache", train_dir=tmp_path, log=lambda _: None)
    rates = [value for name, value, _, _ in outcome.history if name == "lr"]
    assert rates[0] == pytest.approx(settings.lr / 2)  # first warm-up step
    assert max(rates) == pytest.approx(settings.lr) and rates[-1] < settings.lr  # then the cosine comes down
    state = torch.load(tmp_path / "w" / CHECKPOINT, weights_only=True)
    assert state["scheduler"]["last_epoch"] == outcome.info["optimizer_steps"]
    assert [name for name, *_ in state["history"]] == [name for name, *_ in outcome.history]


def test_inner_folds_score_every_training_video_once_and_leave_no_inner_checkpoints(clips, tmp_path):
    root, catalog, folds = clips
    settings = dataclasses.replace(TINY, epochs=1, inner_folds=True)
    outcome = train_fold("naive_cnn", 0, catalog, folds, settings, root=root, workdir=tmp_path / "w",
                         frames_cache=root / "cache", train_dir=tmp_path, log=lambda _: None)
    inner = outcome.inner_predictions
    training_videos = set(folds.filter(folds["fold"] != 0)["video_id"].to_list())
    assert set(inner["video_id"].to_list()) == training_videos and inner["video_id"].is_unique().all()
    for fold in set(inner["fold"].to_list()):  # each inner fold scored by a model that did not train on it
        assert set(inner.filter(inner["fold"] == fold)["video_id"].to_list()) == set(
            folds.filter(folds["fold"] == fold)["video_id"].to_list())
    assert (tmp_path / "w" / "inner_predictions.parquet").exists()
    assert not list((tmp_path / "w").glob("inner_*/"))
