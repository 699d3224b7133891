"""GPU figures: the stage 3 autoencoder and one training step of each deep model, on CUDA.

    .venv/bin/python -m benchmarks.gpu [--out benchmarks/results/gpu.json]
    .venv/bin/python -m benchmarks.gpu --tiny --device cpu      (same code, small configs: the test)

1. Autoencoder: the full sd-vae-ft-mse architecture (random weights, config from
   benchmarks.stages34; no hub), float16 on CUDA, driven through the platform's own
   batched path (fvc_resources.autoencoder.VaeScaler, fed uint8 RGB frames as stage 3
   does: upload, encode, decode, back to uint8 on the host). Seconds per 100 frames at
   256x256 for each batch size in --vae-batches, growing until CUDA runs out of memory;
   the ratio is the predecessor's 3.5 s per 100 frames divided by ours (> 1: faster).
2. Training: for each model, the platform's AMP step (autocast float16, GradScaler,
   BCEWithLogitsLoss, the settings' optimizer (Adam by default), one optimizer step per batch,
   without fit()'s per-step diagnostics) on random uint8 clips (model.prepare normalises them)
   of the model's own frame count (model.frame_count) at settings.image_size, batch 8:
   steps per second after warm-up steps (CUDA synchronised), peak GPU memory
   (torch.cuda.max_memory_allocated, reset per model, so weights + optimizer state +
   activations), parameter count. FULL_SETTINGS with pretrained=False (random weights).
   Ratios are against the first model measured (vit_gru by default), same run.

--tiny: the tiny VAE at 64 px and DEMO_SETTINGS models, few steps; on CPU it runs in
seconds (float32, GradScaler and autocast disabled as in fit(), memory "n/a").
Every figure is also written as JSON to --out after each measurement, so a run cut
short keeps what it measured. Exit codes: 0 all measured, 1 a model (or the autoencoder
part) failed or ran out of memory at batch 8, 2 CUDA asked for but absent.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import tempfile
import time
import traceback
from pathlib import Path

from benchmarks._measure import REPO_ROOT, peak_mb
from benchmarks.stages34 import SD_VAE_ARCHITECTURE, TINY_ARCHITECTURE

REFERENCE_S_PER_100 = 3.5  # the predecessor's autoencoder, seconds per 100 frames on a GPU
MODELS = ("vit_gru", "vit_transformer", "slowfast", "x3d")
PARTS = ("autoencoder", "training")
DEFAULT_OUT = REPO_ROOT / "benchmarks" / "results" / "gpu.json"
# Full run / --tiny defaults.
FULL = {"vae_batches": "8,16,32,64,128,256", "vae_frames": 512, "vae_size": 256, "warmup": 5, "steps": 20}
TINY = {"vae_batches": "2,4", "vae_frames": 8, "vae_size": 64, "warmup": 1, "steps": 2}


def log(text: str) -> None:
    print(f"[benchmarks.gpu] {text}", file=sys.stderr, flush=True)


def _names(text: str) -> list[str]:
    return [n for n in text.replace(",", " ").split() if n]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.gpu", description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda", help="cuda (default), cuda:N or cpu")
    p.add_argument("--tiny", action="store_true", help="tiny VAE and demo-size models (runs on CPU in seconds)")
    p.add_argument("--models", default=",".join(MODELS), help=f"comma list (default {','.join(MODELS)})")
    p.add_argument("--parts", default=",".join(PARTS), help="autoencoder,training (default both)")
    p.add_argument("--steps", type=int, help="timed training steps per model (default 20; --tiny 2)")
    p.add_argument("--warmup", type=int, help="untimed training steps first (default 5; --tiny 1)")
    p.add_argument("--batch", type=int, default=8, help="clips per training step (default 8)")
    p.add_argument("--max-seconds", type=float, default=90.0,
                   help="stop a model's timed steps after this long (default 90)")
    p.add_argument("--vae-batches", help="autoencoder batch sizes, tried ascending until one runs out of memory "
                   "(default 8,16,32,64,128,256; --tiny 2,4)")
    p.add_argument("--vae-frames", type=int, help="frames timed per batch size (default 512; --tiny 8)")
    p.add_argument("--vae-size", type=int, help="frame side in pixels (default 256; --tiny 64)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (default 0: torch's own choice)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON of the figures (default {DEFAULT_OUT})")
    args = p.parse_args(argv)
    for key, value in (TINY if args.tiny else FULL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.vae_batches = sorted({int(b) for b in _names(args.vae_batches)})
    args.models = _names(args.models)
    args.parts = _names(args.parts)
    unknown = [part for part in args.parts if part not in PARTS]
    if unknown:
        p.error(f"unknown part(s) {unknown}; known: {', '.join(PARTS)}")
    if args.steps < 1 or args.warmup < 0 or args.batch < 1 or args.vae_frames < 1 or not args.vae_batches \
            or min(args.vae_batches) < 1:
        p.error("--steps, --batch, --vae-frames and --vae-batches must be >= 1, --warmup >= 0")
    from fvc_assets.train.models.registry import spec

    for name in args.models:
        try:
            spec(name)
        except ValueError as exc:
            p.error(str(exc))
    return args


def cuda_missing(device: str) -> str | None:
    """A clear message when CUDA is asked for but torch sees none, else None."""
    import torch

    if not device.startswith("cuda"):
        return None
    if not torch.cuda.is_available():
        return (f"benchmarks.gpu: --device {device} asked for, but torch {torch.__version__} sees no CUDA device "
                f"(built for CUDA {torch.version.cuda}). Run it on a GPU node, or pass --device cpu "
                "(with --tiny for the small configs).")
    index = torch.device(device).index or 0
    if index >= torch.cuda.device_count():
        return f"benchmarks.gpu: --device {device} asked for, but torch sees {torch.cuda.device_count()} CUDA device(s)"
    return None


class _Timer:
    """Wall time of a block, with the CUDA queue drained at both ends."""

    def __init__(self, device: str):
        import torch

        self.sync = (lambda: torch.cuda.synchronize(device)) if device.startswith("cuda") else (lambda: None)

    def __enter__(self):
        self.sync()
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.sync()
        self.seconds = time.perf_counter() - self.start


def _reset_peak(device: str) -> None:
    import gc

    import torch

    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def _peak_gpu_mb(device: str) -> float | None:
    import torch

    return torch.cuda.max_memory_allocated(device) / 2**20 if device.startswith("cuda") else None


def _is_oom(exc: BaseException) -> bool:
    import torch

    from fvc_resources.autoencoder import AutoencoderOutOfMemory

    return isinstance(exc, (torch.cuda.OutOfMemoryError, AutoencoderOutOfMemory)) or "out of memory" in str(exc)


# -- 1. autoencoder ---------------------------------------------------------------------------------
def measure_autoencoder(args, device: str, save) -> dict:
    import numpy as np
    from diffusers import AutoencoderKL

    from fvc_resources.autoencoder import VaeScaler, load_vae

    architecture = "tiny" if args.tiny else "sd-vae-ft-mse"
    size = args.vae_size
    result = {"architecture": architecture, "size": size, "reference_s_per_100_frames": REFERENCE_S_PER_100,
              "rows": [], "largest_batch": None, "best_batch": None, "best_s_per_100_frames": None,
              "stopped_by_oom": False}
    with tempfile.TemporaryDirectory() as folder:
        AutoencoderKL(**(TINY_ARCHITECTURE if args.tiny else SD_VAE_ARCHITECTURE)).save_config(folder)
        vae = load_vae(folder, None, False, device)  # float16 on CUDA, float32 on CPU, random weights
    result["dtype"] = str(next(vae.parameters()).dtype).removeprefix("torch.")
    result["params"] = sum(p.numel() for p in vae.parameters())
    most = max(math.ceil(args.vae_frames / b) * b for b in args.vae_batches)
    frames = np.random.default_rng(0).integers(0, 256, (most, size, size, 3), dtype=np.uint8)
    for b in args.vae_batches:
        n = math.ceil(args.vae_frames / b) * b  # whole batches only
        row = {"batch": b, "frames": n}
        _reset_peak(device)
        scaler = VaeScaler(vae, device, b)
        try:
            scaler(frames[:b])  # warm-up: kernels chosen, allocator grown
            if scaler.batch_size == b:
                with _Timer(device) as t:
                    out = scaler(frames[:n])
                assert out.shape == (n, size, size, 3) and out.dtype == np.uint8
        except Exception as exc:  # OOM is a result here; anything else is re-raised
            if not _is_oom(exc):
                raise
            scaler.batch_size = 0
        if scaler.batch_size != b:  # VaeScaler halves its batch on CUDA OOM: this size does not fit
            row.update(status="oom", peak_mb=_peak_gpu_mb(device))
            result["rows"].append(row)
            result["stopped_by_oom"] = True
            log(f"autoencoder: batch {b} ran out of CUDA memory; stopping here")
            break
        s100 = t.seconds / n * 100
        row.update(status="ok", seconds=t.seconds, s_per_100_frames=s100, frames_per_s=n / t.seconds,
                   peak_mb=_peak_gpu_mb(device), vs_reference=REFERENCE_S_PER_100 / s100)
        result["rows"].append(row)
        result["largest_batch"] = b
        if result["best_s_per_100_frames"] is None or s100 < result["best_s_per_100_frames"]:
            result["best_batch"], result["best_s_per_100_frames"] = b, s100
        log(f"autoencoder: batch {b}: {s100:.3f} s per 100 frames")
        save()
    del vae, frames
    _reset_peak(device)
    return result


def print_autoencoder(result: dict, device: str) -> None:
    dtype = result.get("dtype", "?")
    print(f"Stage 3 autoencoder ({result['architecture']}, random weights, {dtype}) on {device}: VaeScaler, "
          f"uint8 {result['size']}x{result['size']} frames in and out (encode + decode); "
          f"ratio = {REFERENCE_S_PER_100} s / ours\n")
    rows = []
    for r in result["rows"]:
        if r["status"] != "ok":
            rows.append([r["batch"], r["frames"], "OOM", "-", "-", _mb(r.get("peak_mb")), "-"])
            continue
        rows.append([r["batch"], r["frames"], f"{r['seconds']:.2f}", f"{r['s_per_100_frames']:.3f}",
                     f"{r['frames_per_s']:.1f}", _mb(r["peak_mb"]), f"{r['vs_reference']:.2f}x"])
    print_table(["batch", "frames", "seconds", "s per 100 frames", "frames/s", "peak MiB",
                 f"vs {REFERENCE_S_PER_100} s"], rows)
    if result["largest_batch"] is not None:
        largest = f"{result['largest_batch']}" + ("" if result["stopped_by_oom"] else " (largest tried)")
        print(f"\nlargest batch that fits: {largest}; best: batch {result['best_batch']} at "
              f"{result['best_s_per_100_frames']:.3f} s per 100 frames "
              f"({REFERENCE_S_PER_100 / result['best_s_per_100_frames']:.2f}x the predecessor)")


# -- 2. training steps ------------------------------------------------------------------------------
def model_settings(args, device: str):
    from fvc_core.train_settings import DEMO_SETTINGS, FULL_SETTINGS

    base = DEMO_SETTINGS if args.tiny else FULL_SETTINGS
    return dataclasses.replace(base, pretrained=False, device=device, batch_size=args.batch)


def measure_model(name: str, args, device: str) -> dict:
    import torch

    from fvc_assets.train.models.deep import make_optimizer
    from fvc_assets.train.models.registry import build_model

    settings = model_settings(args, device)
    torch.manual_seed(settings.seed)
    _reset_peak(device)
    size = settings.image_size
    row = {"model": name, "frames": settings.frames, "image_size": size, "batch": args.batch}
    model = None
    try:
        model = build_model(name, settings)
        row["frames"] = frames = model.frame_count
        model.net = model.network().to(device)
        model.net.train()
        row["params"] = sum(p.numel() for p in model.net.parameters())
        use_amp = device.startswith("cuda")
        row["optimizer"], optimizer = settings.optimizer, make_optimizer(model.net, settings, name)
        scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
        loss_fn = torch.nn.BCEWithLogitsLoss()
        shape = (args.batch, frames, 3, size, size)
        x = torch.randint(0, 256, shape, dtype=torch.uint8, device=device)  # normalised by the model, as in fit()
        prepare = model.prepare
        y = torch.randint(0, 2, (args.batch,), device=device).float()

        def step():
            with torch.autocast(device_type="cuda", dtype=torch.float16, enabled=use_amp):
                logits = model.forward(prepare(x))
            loss = loss_fn(logits.float(), y)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            return loss

        for _ in range(args.warmup):
            step()
        done = 0
        with _Timer(device) as t:
            while done < args.steps:
                loss = step()
                done += 1
                if time.perf_counter() - t.start > args.max_seconds:  # GradScaler.step syncs each step
                    break
        row.update(status="ok", steps=done, seconds=t.seconds, steps_per_s=done / t.seconds,
                   seconds_per_step=t.seconds / done, peak_mb=_peak_gpu_mb(device), loss=float(loss.detach()),
                   clips_per_s=done * args.batch / t.seconds)
        if done < args.steps:
            log(f"{name}: stopped after {done} of {args.steps} timed steps (--max-seconds {args.max_seconds:g})")
    except Exception as exc:  # noqa: BLE001 - one model failing must not lose the others' figures
        row.update(status="oom" if _is_oom(exc) else "error", error=f"{type(exc).__name__}: {exc}",
                   peak_mb=_peak_gpu_mb(device))
        traceback.print_exc(file=sys.stderr)
    finally:
        if model is not None:
            model.net = None
        model = x = None  # the closure holds them otherwise
        _reset_peak(device)
    return row


def print_training(result: dict, device: str) -> None:
    amp = "AMP float16" if result["amp"] else "float32, no AMP"
    rows, ref = [], next((r for r in result["rows"] if r["status"] == "ok"), None)
    for r in result["rows"]:
        if r["status"] != "ok":
            rows.append([r["model"], r["frames"], r["image_size"], r["batch"], _millions(r.get("params")),
                         r["status"].upper(), "-", _mb(r.get("peak_mb")), "-", "-"])
            continue
        mem_ratio = f"{r['peak_mb'] / ref['peak_mb']:.2f}x" if r["peak_mb"] and ref["peak_mb"] else "n/a"
        rows.append([r["model"], r["frames"], r["image_size"], r["batch"], _millions(r["params"]),
                     f"{r['steps_per_s']:.2f}", f"{r['seconds_per_step']:.3f}", _mb(r["peak_mb"]),
                     f"{r['steps_per_s'] / ref['steps_per_s']:.2f}x", mem_ratio])
    ref_name = ref["model"] if ref else "-"
    optimizers = "/".join(sorted({r["optimizer"] for r in result["rows"] if r.get("optimizer")})) or "-"
    print(f"Stage 5 training step on {device} ({amp}, {optimizers}, BCE; random clips, random weights), "
          f"{result['warmup']} warm-up + {result['steps']} timed steps; ratios vs {ref_name}, same run\n")
    print_table(["model", "frames", "px", "batch", "params (M)", "steps/s", "s/step", "peak MiB",
                 f"steps/s vs {ref_name}", "memory vs"], rows)


def print_table(headers: list[str], rows: list[list]) -> None:
    """A markdown table (pipes, aligned), ready to paste into an issue; numbers right-aligned."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(3, *(len(r[i]) for r in cells)) for i in range(len(headers))]
    for n, row in enumerate(cells):
        print("| " + " | ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
              + " |")
        if n == 0:
            print("| " + " | ".join(("-" * w if i == 0 else "-" * (w - 1) + ":") for i, w in enumerate(widths))
                  + " |")


def _mb(value) -> str:
    return "n/a" if value is None else f"{value:.0f}"


def _millions(value) -> str:
    return "-" if value is None else f"{value / 1e6:.1f}"


# -- the command -------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    problem = cuda_missing(args.device)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    import torch

    threads = torch.get_num_threads()
    try:
        if args.threads:
            torch.set_num_threads(args.threads)
        return run(args, torch)
    finally:
        torch.set_num_threads(threads)  # main() may run inside another program (the test)


def run(args, torch) -> int:
    device = args.device
    report = {
        "device": device, "device_name": torch.cuda.get_device_name(device) if device.startswith("cuda") else "cpu",
        "torch": torch.__version__, "cuda": torch.version.cuda, "tiny": args.tiny, "command": sys.argv,
        "cpu_threads": torch.get_num_threads(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)

    def save() -> None:
        report["host_peak_rss_mb"] = peak_mb()
        args.out.write_text(json.dumps(report, indent=2) + "\n")

    started = time.perf_counter()
    failed = False
    if "autoencoder" in args.parts:
        log(f"autoencoder on {device}: batches {args.vae_batches}, {args.vae_frames} frames each")
        try:
            report["autoencoder"] = measure_autoencoder(args, device, save)
        except Exception as exc:  # noqa: BLE001 - the training figures are still worth having
            traceback.print_exc(file=sys.stderr)
            report["autoencoder"] = {"error": f"{type(exc).__name__}: {exc}"}
            failed = True
            print(f"Stage 3 autoencoder on {device}: FAILED ({report['autoencoder']['error']})")
        else:
            print_autoencoder(report["autoencoder"], device)
        save()
    if "training" in args.parts:
        if "autoencoder" in args.parts:
            print()
        training = {"batch": args.batch, "warmup": args.warmup, "steps": args.steps, "amp": device.startswith("cuda"),
                    "rows": []}
        report["training"] = training
        for name in args.models:
            log(f"{name}: building and training on {device}")
            row = measure_model(name, args, device)
            training["rows"].append(row)
            failed |= row["status"] != "ok"
            figure = f"{row['steps_per_s']:.2f} steps/s" if row["status"] == "ok" else row["status"]
            log(f"{name}: {figure}")
            save()
        print_training(training, device)
    report["seconds"] = time.perf_counter() - started
    save()
    print(f"\nfigures written to {args.out} ({report['seconds']:.0f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
