"""The training loop every frame model shares.

AdamW (lr and weight decay from the settings), class-balanced BCE loss
(positive weight = negatives / positives), gradient accumulation, mixed
precision on CUDA, and a checkpoint after every epoch: a fold that is
interrupted resumes from its last finished epoch, provided the settings and
the training clips are the same.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from pathlib import Path

import numpy as np
import polars as pl

from fvc_assets.train.frames import clip_frames
from fvc_assets.train.models.base import FitContext
from fvc_core.train_settings import TrainSettings
from fvc_resources.atomic import atomic_path

CHECKPOINT = "checkpoint.pt"
MODEL_FILE = "model.pt"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


MIN_PRETRAINED_SHARE = 0.9


class PretrainedWeightsError(RuntimeError):
    """pretrained=True, but the weights could not be loaded (no hub access and no local file)."""


def resolve_device(setting: str) -> str:
    import torch

    if setting == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if setting == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was asked for, but torch sees no CUDA device")
    return setting


def training_clips(train: pl.DataFrame, per_video: int, seed: int) -> pl.DataFrame:
    """Originals plus up to ``per_video`` augmented clips of each training video (seeded choice)."""
    originals = train.filter(pl.col("augmentation") == "original")
    augmented = train.filter(pl.col("augmentation") != "original").with_columns(
        pl.concat_str(pl.lit(str(seed)), pl.col("clip_id")).hash(seed=seed).alias("_order")
    )
    chosen = augmented.sort("_order").group_by("video_id", maintain_order=True).head(per_video).drop("_order")
    return pl.concat([originals, chosen.select(originals.columns)]).sort("clip_id")


# Bump when a network or the training loop changes, so old checkpoints are not resumed into new code.
CODE_VERSION = "1"


def data_fingerprint(dataset: "FrameDataset") -> str:
    """The training clips, their labels and their frames: cache file names carry each clip's size and mtime."""
    text = "\n".join(sorted(f"{f.name}:{l}" for f, l in zip(dataset.files, dataset.labels)))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class FrameDataset:
    """torch Dataset over cached frame files: (T, 3, S, S) float normalised, label."""

    def __init__(self, files: list[Path], labels: np.ndarray):
        self.files, self.labels = files, labels

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        import torch

        frames = torch.from_numpy(np.load(self.files[i])).permute(0, 3, 1, 2).float().div_(255.0)
        mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        return (frames - mean) / std, torch.tensor(float(self.labels[i]))


class DeepModel:
    """Subclasses give ``name`` and ``network()``: a module mapping (B, T, 3, S, S) to logits (B,)."""

    name = "deep_model"

    def __init__(self, settings: TrainSettings):
        self.settings = settings
        self.net = None

    def network(self):
        raise NotImplementedError

    # -- data ---------------------------------------------------------------------------------
    def _dataset(self, clips: pl.DataFrame, context: FitContext) -> FrameDataset:
        s = self.settings
        files = [
            clip_frames(context.frames_cache, clip_id, context.root / path, s.frames, s.image_size)
            for clip_id, path in clips.select("clip_id", "scaled_path").iter_rows()
        ]
        return FrameDataset(files, (clips["label"] == "fake").cast(pl.Int64).to_numpy())

    # -- training -----------------------------------------------------------------------------
    def fit(self, train: pl.DataFrame, context: FitContext) -> None:
        import torch

        s = self.settings
        torch.manual_seed(s.seed)
        if s.threads:
            torch.set_num_threads(s.threads)
        device = resolve_device(s.device)
        clips = training_clips(train, s.max_augmented_per_video, s.seed)
        dataset = self._dataset(clips, context)
        labels = dataset.labels
        if len(np.unique(labels)) < 2:
            raise ValueError(f"{self.name}: the training fold holds only one label")

        self.net = self.network().to(device)
        optimizer = torch.optim.AdamW(self.net.parameters(), lr=s.lr, weight_decay=s.weight_decay)
        use_amp = device == "cuda"
        scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
        pos_weight = torch.tensor(float(np.sum(labels == 0)) / max(1, int(np.sum(labels == 1))), device=device)
        loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight)

        fingerprint = {"settings": s.fingerprint(), "data": data_fingerprint(dataset), "model": self.name,
                       "device": device, "code": CODE_VERSION}
        start_epoch = self._resume(context.workdir / CHECKPOINT, fingerprint, optimizer, scaler, device, context)
        generator = torch.Generator().manual_seed(s.seed)
        loader = torch.utils.data.DataLoader(dataset, batch_size=s.batch_size, shuffle=True, generator=generator)
        started = time.perf_counter()
        for epoch in range(start_epoch, s.epochs):
            generator.manual_seed(s.seed + epoch)  # the same batches whether or not this epoch was resumed
            self.net.train()
            optimizer.zero_grad(set_to_none=True)
            total, batches = 0.0, 0
            for step, (x, y) in enumerate(loader):
                x, y = x.to(device, non_blocking=True), y.to(device)
                with torch.autocast(device_type="cuda", dtype=torch.float16, enabled=use_amp):
                    loss = loss_fn(self.forward(x), y) / s.grad_accum_steps
                scaler.scale(loss).backward()
                if (step + 1) % s.grad_accum_steps == 0 or step + 1 == len(loader):
                    scaler.step(optimizer)
                    scaler.update()
                    optimizer.zero_grad(set_to_none=True)
                total += float(loss.detach()) * s.grad_accum_steps
                batches += 1
            context.log(f"{self.name}: epoch {epoch + 1}/{s.epochs} loss {total / max(1, batches):.4f}")
            context.info[f"loss_epoch_{epoch + 1}"] = total / max(1, batches)
            self._checkpoint(context.workdir / CHECKPOINT, fingerprint, epoch, optimizer, scaler)
        context.info.update(
            training_clips=len(dataset), device=device, epochs=s.epochs, resumed_from_epoch=start_epoch,
            train_seconds=time.perf_counter() - started,
        )

    def forward(self, x):
        return self.net(x)

    def _checkpoint(self, path: Path, fingerprint: dict, epoch: int, optimizer, scaler) -> None:
        import torch

        state = {"fingerprint": fingerprint, "epoch": epoch, "model": self.net.state_dict(),
                 "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict()}
        with atomic_path(path) as tmp:
            torch.save(state, tmp)

    def _resume(self, path: Path, fingerprint: dict, optimizer, scaler, device, context: FitContext) -> int:
        import torch

        if not path.exists():
            return 0
        state = torch.load(path, map_location=device, weights_only=True)
        if state.get("fingerprint") != fingerprint:
            context.log(f"{self.name}: checkpoint {path} is for other settings or data; starting afresh")
            return 0
        self.net.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if state["scaler"]:  # a disabled scaler (CPU) saves an empty state
            scaler.load_state_dict(state["scaler"])
        context.log(f"{self.name}: resumed from {path} after epoch {state['epoch'] + 1}")
        return state["epoch"] + 1

    # -- inference and persistence ---------------------------------------------------------------
    def predict(self, clips: pl.DataFrame, context: FitContext) -> np.ndarray:
        import torch

        if self.net is None:
            raise RuntimeError(f"{self.name} has not been fitted or loaded")
        device = next(self.net.parameters()).device
        dataset = self._dataset(clips, context)
        loader = torch.utils.data.DataLoader(dataset, batch_size=self.settings.batch_size, shuffle=False)
        self.net.eval()
        scores = []
        with torch.no_grad():
            for x, _ in loader:
                with torch.autocast(device_type="cuda", dtype=torch.float16, enabled=device.type == "cuda"):
                    logits = self.forward(x.to(device))
                scores.append(torch.sigmoid(logits.float()).cpu().numpy())
        return np.concatenate(scores) if scores else np.zeros(0)

    def save(self, folder: Path) -> None:
        import torch

        with atomic_path(Path(folder) / MODEL_FILE) as tmp:
            torch.save(self.net.state_dict(), tmp)

    def load(self, folder: Path) -> None:
        import torch

        # A model trained on CUDA still loads where there is none.
        device = resolve_device("auto" if self.settings.device == "cuda" else self.settings.device)
        # The saved weights replace any pretrained ones: build the network without loading those.
        net = type(self)(dataclasses.replace(self.settings, pretrained=False)).network()
        net.load_state_dict(torch.load(Path(folder) / MODEL_FILE, map_location=device, weights_only=True))
        self.net = net.to(device)


def load_local_or_hub_state(net, name: str, weights_path: str, hub_url: str | None) -> None:
    """Load pretrained weights into ``net``: a local file, else the hub URL; heads that differ are skipped."""
    import torch

    try:
        if weights_path:
            state = torch.load(weights_path, map_location="cpu", weights_only=True)
        elif hub_url:
            state = torch.hub.load_state_dict_from_url(hub_url, map_location="cpu", progress=False)
        else:
            raise PretrainedWeightsError(f"{name}: pretrained=True needs weights_path (no hub checkpoint known)")
    except PretrainedWeightsError:
        raise
    except Exception as exc:
        where = weights_path or hub_url
        raise PretrainedWeightsError(
            f"{name}: pretrained weights could not be loaded from {where}: {exc}. "
            "Set weights_path to a local file, or pretrained=false to train from scratch."
        ) from exc
    state = state.get("model_state", state.get("state_dict", state)) if isinstance(state, dict) else state
    own = net.state_dict()
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    # The head differs (one logit); anything far below "all but the head" is another architecture.
    if len(usable) < MIN_PRETRAINED_SHARE * len(own):
        raise PretrainedWeightsError(
            f"{name}: only {len(usable)} of the model's {len(own)} tensors match {weights_path or hub_url}; "
            "these weights are for another architecture or size")
    net.load_state_dict(usable, strict=False)
