"""The training loop every frame model shares.

Adam (lr 1e-4, weight decay 1e-4 as L2) by default, AdamW as an option; a
constant or cosine learning rate with optional linear warm-up; class-balanced
BCE loss (positive weight = negatives / positives), or batches drawn half real
and half fake instead; gradient accumulation; mixed precision on CUDA; and a
checkpoint after every epoch (network, optimizer, scaler, schedule and the
curves so far): a fold that is interrupted resumes from its last finished
epoch, provided the settings and the training clips are the same.

Training is watched, not trusted: every ``log_every_steps`` optimizer steps
and at each epoch's end the loop records the training loss, the gradient norm,
the learning rate and the logits' mean, std, min, max and number of distinct
values within a batch, plus the parameter counts at the start (``FitContext.record``: MLflow
metric history with real timestamps, and the step's log). A network whose
logits all agree, or whose gradients vanish, shows it there and in
``fold_results``' collapse check.

Inputs are uint8 frames fitted to a square (``frame_fit``: cropped or
letterboxed); each training clip is turned by a random one of the square's
eight flips and quarter turns (``flip_augment``); each network normalises its
input with the mean and std its weights were trained with (``normalisation``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import time
from pathlib import Path

import numpy as np
import polars as pl

from fvc_assets.train.frames import clip_frames, clip_padding, load_clip_frames
from fvc_assets.train.models.base import FitContext
from fvc_core.train_settings import TrainSettings
from fvc_resources.atomic import atomic_path

CHECKPOINT = "checkpoint.pt"
MODEL_FILE = "model.pt"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
KINETICS_MEAN = (0.45, 0.45, 0.45)  # pytorchvideo's Kinetics models
KINETICS_STD = (0.225, 0.225, 0.225)

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
    # A rank filter, not group_by().head(): head(0) gives each group one row of nulls.
    chosen = (augmented.sort("_order").filter(pl.int_range(pl.len()).over("video_id") < per_video)
              .drop("_order"))
    return pl.concat([originals, chosen.select(originals.columns)]).sort("clip_id")


# Bump when a network, its inputs or the training loop change, so old checkpoints are not resumed into new code.
CODE_VERSION = "3"  # 2: letterboxed inputs, specified heads, Adam, diagnostics; 3: frame_fit, flip_augment


def data_fingerprint(dataset: "FrameDataset") -> str:
    """The training clips, their labels and their frames: cache file names carry each clip's size and mtime."""
    text = "\n".join(sorted(f"{f.name}:{l}" for f, l in zip(dataset.files, dataset.labels)))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class FrameDataset:
    """torch Dataset over cached frame files: (T, 3, S, S) uint8, label."""

    def __init__(self, files: list[Path], labels: np.ndarray):
        self.files, self.labels = files, labels

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        import torch

        frames, _ = load_clip_frames(self.files[i])
        return torch.from_numpy(frames).permute(0, 3, 1, 2), torch.tensor(float(self.labels[i]))

    def padding_share(self, size: int) -> float:
        """Mean share of each ``size`` x ``size`` input square that is letterbox padding."""
        shares = []
        for file in self.files:
            top, bottom, left, right = clip_padding(file)
            shares.append(1 - (size - top - bottom) * (size - left - right) / (size * size))
        return float(np.mean(shares)) if shares else 0.0


def balanced_batches(labels: np.ndarray, batch_size: int, generator) -> list[list[int]]:
    """One epoch of batches, each half real and half fake (the smaller class is cycled), as many
    batches as plain shuffling would give; seeded by the torch ``generator``."""
    import torch

    by_class = [np.flatnonzero(labels == c) for c in (0, 1)]
    orders = [c[torch.randperm(len(c), generator=generator).numpy()] for c in by_class]
    half = max(1, batch_size // 2)
    batches, cursor = [], [0, 0]
    for _ in range(math.ceil(len(labels) / batch_size)):
        batch = []
        for c, take in ((0, batch_size - half), (1, half)):
            for _ in range(take):
                batch.append(int(orders[c][cursor[c] % len(orders[c])]))
                cursor[c] += 1
        batches.append(batch)
    return batches


def random_flips(x, generator):
    """(B, T, C, S, S) -> each clip flipped and turned by a random one of the square's 8 symmetries (the
    same for all its frames: a flip never changes between the frames of a clip)."""
    import torch

    if x.shape[-1] != x.shape[-2]:
        raise ValueError(f"flips need square frames, not {tuple(x.shape[-2:])}")
    ops = torch.randint(0, 8, (x.shape[0],), generator=generator).tolist()
    out = []
    for clip, op in zip(x, ops):
        if op & 1:
            clip = clip.flip(-1)
        if op & 2:
            clip = clip.flip(-2)
        if op & 4:
            clip = clip.transpose(-1, -2)
        out.append(clip)
    return torch.stack(out)


def lr_factor(step: int, total_steps: int, warmup_steps: int, schedule: str) -> float:
    """Multiplier of the base learning rate at optimizer step ``step`` (0-based)."""
    if warmup_steps and step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "cosine":
        span = max(1, total_steps - warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup_steps) / span)))
    return 1.0


def make_optimizer(net, settings: TrainSettings, model: str):
    import torch

    params = [p for p in net.parameters() if p.requires_grad]
    kind = torch.optim.AdamW if settings.optimizer == "adamw" else torch.optim.Adam
    return kind(params, lr=settings.learning_rate(model), weight_decay=settings.weight_decay)


class Diagnostics:
    """Running training statistics over a window of batches: loss, gradient norm, logits."""

    def __init__(self):
        self.losses: list[float] = []
        self.grad_norms: list[float] = []
        self.logits: list[np.ndarray] = []

    def add_batch(self, loss: float, logits) -> None:
        self.losses.append(loss)
        self.logits.append(logits.detach().float().cpu().numpy().ravel())

    def summary(self, lr: float) -> dict[str, float]:
        logits = np.concatenate(self.logits) if self.logits else np.zeros(0)
        finite = logits[np.isfinite(logits)]
        return {
            "train_loss": float(np.mean(self.losses)) if self.losses else math.nan,
            "grad_norm": float(np.mean(self.grad_norms)) if self.grad_norms else math.nan,
            "lr": lr,
            "logit_mean": float(finite.mean()) if finite.size else math.nan,
            "logit_std": float(finite.std()) if finite.size else math.nan,
            "logit_min": float(finite.min()) if finite.size else math.nan,
            "logit_max": float(finite.max()) if finite.size else math.nan,
            # Within a batch, where a collapsed network gives every clip the same logit (across batches
            # even a constant output moves as its bias learns): the most distinct values any batch had.
            "distinct_logits": float(max((len(np.unique(b)) for b in self.logits if b.size > 1), default=math.nan)),
        }


def describe(stats: dict[str, float]) -> str:
    return (f"loss {stats['train_loss']:.4f}, grad norm {stats['grad_norm']:.4g}, lr {stats['lr']:.3g}, "
            f"logits {stats['logit_mean']:.3f} ± {stats['logit_std']:.3f} "
            f"[{stats['logit_min']:.3f}, {stats['logit_max']:.3f}], {int(stats['distinct_logits'])} distinct")


class DeepModel:
    """Subclasses give ``name`` and ``network()``: a module mapping (B, T, 3, S, S) to logits (B,)."""

    name = "deep_model"

    def __init__(self, settings: TrainSettings):
        self.settings = settings
        self.net = None

    def network(self):
        raise NotImplementedError

    @property
    def frame_count(self) -> int:
        """Frames this model takes from each clip."""
        return self.settings.frames

    @property
    def weights_path(self) -> str:
        return self.settings.weights_path(self.name)

    def normalisation(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """(mean, std) per RGB channel its weights were trained with; ImageNet's unless overridden."""
        return IMAGENET_MEAN, IMAGENET_STD

    def prepare(self, x):
        """uint8 (B, T, 3, S, S) on the device -> normalised float."""
        import torch

        mean, std = self.normalisation()
        mean = torch.tensor(mean, device=x.device).view(1, 1, 3, 1, 1)
        std = torch.tensor(std, device=x.device).view(1, 1, 3, 1, 1)
        return (x.float().div_(255.0) - mean) / std

    # -- data ---------------------------------------------------------------------------------
    def _dataset(self, clips: pl.DataFrame, context: FitContext) -> FrameDataset:
        s = self.settings
        files = [
            clip_frames(context.frames_cache, clip_id, context.root / path, self.frame_count, s.image_size,
                        fit=s.frame_fit)
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
        parameters = sum(p.numel() for p in self.net.parameters())
        trainable = sum(p.numel() for p in self.net.parameters() if p.requires_grad)
        context.log(f"{self.name}: {parameters:,} parameters, {trainable:,} trainable; {len(dataset)} training "
                    f"clips of {self.frame_count} frames at {s.image_size} px ({s.frame_fit}"
                    f"{', random flips' if s.flip_augment else ''})")
        optimizer = make_optimizer(self.net, s, self.name)
        use_amp = device == "cuda"
        scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
        generator = torch.Generator().manual_seed(s.seed)
        flips = torch.Generator()
        if s.balanced_sampler:
            loader = None
            batches_per_epoch = math.ceil(len(dataset) / s.batch_size)
            pos_weight = torch.tensor(1.0, device=device)  # the batches balance the classes
        else:
            loader = torch.utils.data.DataLoader(dataset, batch_size=s.batch_size, shuffle=True, generator=generator)
            batches_per_epoch = len(loader)
            pos_weight = torch.tensor(float(np.sum(labels == 0)) / max(1, int(np.sum(labels == 1))), device=device)
        loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight)
        steps_per_epoch = math.ceil(batches_per_epoch / s.grad_accum_steps)
        total_steps = steps_per_epoch * s.epochs
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: lr_factor(step, total_steps, s.warmup_steps, s.lr_schedule))

        fingerprint = {"settings": s.fingerprint(), "data": data_fingerprint(dataset), "model": self.name,
                       "device": device, "code": CODE_VERSION}
        start_epoch = self._resume(context.workdir / CHECKPOINT, fingerprint, optimizer, scaler, scheduler, device,
                                   context)
        if start_epoch == 0:
            context.record(0, parameters=parameters, trainable_parameters=trainable)
        global_step = start_epoch * steps_per_epoch
        started = time.perf_counter()
        zero_grad_steps, epoch_stats = 0, {}
        for epoch in range(start_epoch, s.epochs):
            # The same batches and dropout masks whether or not this epoch was resumed.
            generator.manual_seed(s.seed + epoch)
            flips.manual_seed(s.seed + 7919 * (epoch + 1))
            torch.manual_seed(s.seed + epoch)
            if loader is None:
                batches = ((torch.stack([dataset[i][0] for i in b]), torch.tensor(labels[b], dtype=torch.float32))
                           for b in balanced_batches(labels, s.batch_size, generator))
            else:
                batches = iter(loader)
            self.net.train()
            optimizer.zero_grad(set_to_none=True)
            epoch_window, step_window = Diagnostics(), Diagnostics()
            for batch_index, (x, y) in enumerate(batches):
                if s.flip_augment:
                    x = random_flips(x, flips)
                x, y = x.to(device, non_blocking=True), y.to(device)
                with torch.autocast(device_type="cuda", dtype=torch.float16, enabled=use_amp):
                    logits = self.forward(self.prepare(x))
                loss = loss_fn(logits.float(), y) / s.grad_accum_steps
                scaler.scale(loss).backward()
                for window in (epoch_window, step_window):
                    window.add_batch(float(loss.detach()) * s.grad_accum_steps, logits)
                if (batch_index + 1) % s.grad_accum_steps == 0 or batch_index + 1 == batches_per_epoch:
                    scaler.unscale_(optimizer)
                    grad_norm = float(torch.nn.utils.clip_grad_norm_(self.net.parameters(), float("inf")))
                    zero_grad_steps += grad_norm == 0.0
                    lr = optimizer.param_groups[0]["lr"]
                    scaler.step(optimizer)
                    scaler.update()
                    scheduler.step()
                    optimizer.zero_grad(set_to_none=True)
                    global_step += 1
                    epoch_window.grad_norms.append(grad_norm)
                    step_window.grad_norms.append(grad_norm)
                    if s.log_every_steps and global_step % s.log_every_steps == 0:
                        stats = step_window.summary(lr)
                        context.record(global_step, **stats)
                        context.log(f"{self.name}: step {global_step}/{total_steps} {describe(stats)}")
                        step_window = Diagnostics()
            epoch_stats = epoch_window.summary(optimizer.param_groups[0]["lr"])
            context.record(epoch + 1, **{f"epoch_{k}": v for k, v in epoch_stats.items()})
            context.log(f"{self.name}: epoch {epoch + 1}/{s.epochs} {describe(epoch_stats)}")
            context.info[f"loss_epoch_{epoch + 1}"] = epoch_stats["train_loss"]
            self._checkpoint(context.workdir / CHECKPOINT, {
                "fingerprint": fingerprint, "epoch": epoch, "model": self.net.state_dict(),
                "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(),
                "scheduler": scheduler.state_dict(), "history": list(context.history)})
        context.info.update(
            training_clips=len(dataset), device=device, epochs=s.epochs, resumed_from_epoch=start_epoch,
            train_seconds=time.perf_counter() - started, parameters=parameters, trainable_parameters=trainable,
            optimizer_steps=total_steps, zero_gradient_steps=zero_grad_steps,
            letterbox_padding_share=round(dataset.padding_share(s.image_size), 4),
            **{f"final_{k}": v for k, v in epoch_stats.items()},
        )

    def forward(self, x):
        return self.net(x)

    def _checkpoint(self, path: Path, state: dict) -> None:
        import torch

        with atomic_path(path) as tmp:
            torch.save(state, tmp)

    def _resume(self, path: Path, fingerprint: dict, optimizer, scaler, scheduler, device,
                context: FitContext) -> int:
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
        scheduler.load_state_dict(state["scheduler"])
        context.history[:] = [tuple(item) for item in state["history"]]
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
                    logits = self.forward(self.prepare(x.to(device)))
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
            raise PretrainedWeightsError(f"{name}: pretrained=True needs weights_paths.{name} "
                                         "(no published checkpoint of this size is known)")
    except PretrainedWeightsError:
        raise
    except Exception as exc:
        where = weights_path or hub_url
        raise PretrainedWeightsError(
            f"{name}: pretrained weights could not be loaded from {where}: {exc}. "
            f"Set weights_paths.{name} to a local file, or pretrained=false to train from scratch."
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
