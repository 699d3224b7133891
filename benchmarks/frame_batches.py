"""Seconds per training batch of each frame model at the demo profile, per input size.

    .venv/bin/python -m benchmarks.frame_batches [--sizes 32,64] [--threads 2]

One optimizer step (forward, backward, Adam) on a batch of 8 random clips, at the
demo profile's networks and frames with only ``image_size`` changed; the best of
three steps after a warm-up. This is the cost that multiplies with clips, epochs
and folds in ``make demo``'s training phase. The reference, measured in the same
run, is the same step at the largest size asked for (ratio = time / reference).
No data and no instance: it says what a size costs, not what a network learns at
it (``benchmarks.learnability`` does).
"""

from __future__ import annotations

import argparse
import dataclasses
import time

from benchmarks._measure import print_table

FRAME_MODELS = ["naive_cnn", "vit_gru", "vit_transformer", "slowfast", "x3d"]
BATCH = 8


def seconds_per_batch(model: str, size: int) -> float:
    import torch

    from fvc_assets.train.models.registry import build_model
    from fvc_core.train_settings import DEMO_SETTINGS

    built = build_model(model, dataclasses.replace(DEMO_SETTINGS, image_size=size, device="cpu"))
    built.net = built.network()
    optimizer = torch.optim.Adam(built.net.parameters(), 1e-3)
    generator = torch.Generator().manual_seed(0)
    clips = torch.randint(0, 256, (BATCH, built.frame_count, 3, size, size), dtype=torch.uint8, generator=generator)
    labels = torch.randint(0, 2, (BATCH,), generator=generator).float()
    times = []
    for _ in range(4):
        started = time.perf_counter()
        logits = built.forward(built.prepare(clips))
        torch.nn.functional.binary_cross_entropy_with_logits(logits, labels).backward()
        optimizer.step()
        optimizer.zero_grad()
        times.append(time.perf_counter() - started)
    return min(times[1:])


def main(argv: list[str] | None = None) -> None:
    import torch

    parser = argparse.ArgumentParser(prog="benchmarks.frame_batches")
    parser.add_argument("--sizes", default="32,64", help="input sizes in px, comma separated")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(","))
    torch.set_num_threads(args.threads)
    rows = []
    for model in FRAME_MODELS:
        measured = {size: seconds_per_batch(model, size) for size in sizes}
        reference = measured[sizes[-1]]
        rows.append([model, *(f"{measured[size]:.3f} ({measured[size] / reference:.2f})" for size in sizes)])
        print(rows[-1], flush=True)
    print(f"\nSeconds per training batch of {BATCH} clips at the demo profile, {args.threads} threads "
          f"(ratio to {sizes[-1]} px, measured in the same run):")
    print_table(["model", *(f"{size} px" for size in sizes)], rows)


if __name__ == "__main__":
    main()
