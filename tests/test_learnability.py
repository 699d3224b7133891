"""Every frame model family learns a trace no model can miss, through the platform's own data path.

Real encoded clips, 20 videos in 2 folds: fakes show a bright disc in the middle of
a random scene, reals do not. Each model trains through ``train_fold`` with the real
labels and with control labels orthogonal to them (half of each class flipped). A
network fed frames and labels that do not belong together (a shuffled, shifted or
reordered data path) scores like its control and fails here.
"""

import dataclasses

import cv2
import numpy as np
import polars as pl
import pytest

from fvc_assets.train import learnability
from fvc_assets.train.folds import assign_folds
from fvc_assets.train.models.deep import FrameDataset
from fvc_assets.train.models.registry import MODELS
from fvc_core.train_settings import DEMO_SETTINGS
from fvc_resources.video import write_clip
from tests.conftest import WORKER_THREADS

N_FOLDS = 2
# Small inputs, enough steps for an obvious trace; every family keeps its own architecture and the demo's
# optimizer and learning rate per family (3 warm-up steps of about 30; Adam at lr 1e-3 for all let a ViT
# diverge here). SlowFast at its published width: at the demo's half width it scored 0.72 here in one suite run
# (0.8 needed). Letterboxed frames, with the random flips: on these 20 clips SlowFast learnt the disc
# letterboxed (0.82-1.0) but not cropped (0.56-0.76 over optimizers, lr, epochs and batch size; cropped, the
# disc covers a third of the frame, letterboxed a fifth; not understood yet), while on the learnability
# corpus it learns from cropped frames (docs/pipeline.md). What this probe checks, that labels and frames stay
# paired, does not depend on the fit; tests/test_frame_inputs.py checks the crop.
PROBE = dataclasses.replace(DEMO_SETTINGS, frames=4, slowfast_frames=8, slowfast_alpha=2, image_size=32, epochs=6,
                            batch_size=4, warmup_steps=3, frame_fit="letterbox", inner_folds=False, device="cpu",
                            threads=WORKER_THREADS, slowfast_width_factor=1.0)
# The default frame models: a per-frame CNN, ViT + GRU, ViT + Transformer, and two 3D CNNs (the extras,
# r2plus1d and i3d, are 3D CNNs too, and cost more here than these five together).
FAMILIES = ["naive_cnn", "vit_gru", "vit_transformer", "slowfast", "x3d"]
MARGIN = 0.3


def obvious_frames(rng: np.random.Generator, fake: bool, n: int = 8, size: tuple[int, int] = (64, 48)):
    w, h = size
    background = cv2.resize(rng.uniform(20, 200, (3, 4, 3)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    for i in range(n):
        frame = np.clip(background + rng.normal(0, 6, background.shape), 0, 255).astype(np.uint8)
        if fake:
            cv2.circle(frame, (w // 2 + i % 3 - 1, h // 2), h // 3, (255, 255, 255), -1)
        yield frame


def obvious_corpus(root, n_videos: int = 20):
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n_videos):
        label = "fake" if i % 2 else "real"
        for c, augmentation in enumerate(("original", "aug")):
            rel = f"clips/v{i}_{c}.mp4"
            (root / "clips").mkdir(parents=True, exist_ok=True)
            write_clip(root / rel, obvious_frames(rng, label == "fake"), 8)
            rows.append({"clip_id": f"v{i:02d}__{c}", "video_id": f"v{i:02d}", "dup_group": f"g{i:02d}",
                         "label": label, "platform": "unknown", "augmentation": augmentation, "scaled_path": rel})
    catalog = pl.DataFrame(rows)
    videos = catalog.unique("video_id", keep="first").select("video_id", "dup_group", "label", "platform")
    return catalog, assign_folds(videos, n_folds=N_FOLDS)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("obvious")
    catalog, folds = obvious_corpus(root)
    return root, catalog, folds


def probe(name, corpus, workdir):
    root, catalog, folds = corpus
    return learnability.measure(name, catalog, folds, PROBE, root=root, workdir=workdir,
                                frames_cache=root / "cache", n_folds=N_FOLDS)


def test_control_labels_are_orthogonal_to_the_real_ones(corpus):
    _, catalog, folds = corpus
    control = learnability.control_labels(folds)
    real = dict(folds.select("dup_group", "label").iter_rows())
    for label in ("fake", "real"):
        mine = [g for g, lab in real.items() if lab == label]
        kept = sum(control[g] == label for g in mine)
        assert abs(kept - len(mine) / 2) <= 0.5
    relabelled, relabelled_folds = learnability.relabel(catalog, folds, control)
    assert relabelled["label"].to_list() != catalog["label"].to_list()
    assert dict(relabelled_folds.select("dup_group", "label").iter_rows()) == control


def test_control_labels_keep_both_labels_in_every_fold_of_small_odd_layouts():
    """Few groups per fold, odd counts (the 14-video demo has folds of one fake and one real): flipping half
    of each class over the whole corpus left folds with one control label, a leaking split."""
    rng = np.random.default_rng(0)
    for layout in range(50):
        rows = []
        for fold in range(5):
            for label in ("fake", "real"):
                rows += [{"dup_group": f"g{fold}{label}{i}", "label": label, "fold": fold}
                         for i in range(int(rng.integers(1, 4)))]
        folds = pl.DataFrame(rows).with_columns(video_id=pl.col("dup_group"))
        control = learnability.control_labels(folds)
        relabelled = learnability.relabel(folds, folds, control)[1]
        for fold, frame in relabelled.group_by("fold"):
            assert set(frame["label"]) == {"fake", "real"}, (layout, fold, frame)
        for label in ("fake", "real"):
            mine = folds.filter(pl.col("label") == label)["dup_group"].to_list()
            kept = sum(control[g] == label for g in mine)
            assert abs(kept - len(mine) / 2) <= 1, (layout, label, kept, len(mine))
        assert 0.3 <= learnability.control_agreement(folds, control) <= 0.7


@pytest.mark.parametrize("name", FAMILIES)
def test_every_frame_model_family_beats_its_control(name, corpus, tmp_path):
    assert MODELS[name].inputs == "frames"
    result = probe(name, corpus, tmp_path)
    assert result.roc_auc >= 0.8, result
    assert result.margin >= MARGIN, result


def swap_half(labels: np.ndarray) -> np.ndarray:
    """The labels shuffled so that they say nothing of the real ones: every other fake swaps its label with
    every other real clip (counts kept, half of each class wrong)."""
    out = np.array(labels, copy=True)
    fakes, reals = np.flatnonzero(out == 1)[::2], np.flatnonzero(out == 0)[::2]
    k = min(len(fakes), len(reals))
    out[fakes[:k]], out[reals[:k]] = 0, 1
    return out


def test_labels_shuffled_inside_the_data_path_are_caught(corpus, tmp_path, monkeypatch):
    """The check above can fail: the same probe with the data set's labels permuted (a misalignment of
    frames and labels that the catalog, the folds and the predictions would not show)."""
    original_init = FrameDataset.__init__

    def misaligned(self, files, labels):
        original_init(self, files, swap_half(labels))

    monkeypatch.setattr(FrameDataset, "__init__", misaligned)
    result = probe("naive_cnn", corpus, tmp_path)
    assert result.margin < MARGIN or result.roc_auc < 0.8, result


def test_the_benchmark_overrides_named_settings_only():
    import argparse

    from benchmarks.learnability import setting_override

    from fvc_resources.training import TrainingResource

    overrides = dict(map(setting_override, ("epochs=30", "weight_decay=0.05", "optimizer=adamw",
                                            'lr_by_model={"x3d": 0.002}')))
    settings = TrainingResource(profile="demo", **overrides).settings()
    assert (settings.epochs, settings.weight_decay, settings.optimizer) == (30, 0.05, "adamw")
    assert settings.learning_rate("x3d") == 0.002
    for wrong in ("epoch=30", "epochs"):
        with pytest.raises(argparse.ArgumentTypeError, match="KEY=VALUE"):
            setting_override(wrong)
    with pytest.raises(argparse.ArgumentTypeError, match="not JSON"):
        setting_override("lr_by_model={x3d: 1}")
