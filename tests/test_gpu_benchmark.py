"""benchmarks.gpu on CPU: the same code path as on CUDA, with the tiny VAE and the demo-size models."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

from benchmarks import gpu
from fvc_core.train_settings import DEMO_SETTINGS

REPO_ROOT = Path(__file__).resolve().parent.parent


def _positive(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def test_tiny_run_on_cpu_measures_every_part(tmp_path, capsys):
    out = tmp_path / "nested" / "gpu.json"
    # One thread: on a loaded 2-core machine two threads spin against each other (5x slower).
    assert gpu.main(["--tiny", "--device", "cpu", "--threads", "1", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    report = json.loads(out.read_text())
    assert report["device"] == "cpu" and report["tiny"] is True

    vae = report["autoencoder"]
    assert [r["batch"] for r in vae["rows"]] == [2, 4] and report["cpu_threads"] == 1
    for row in vae["rows"]:
        assert row["status"] == "ok"
        for key in ("seconds", "s_per_100_frames", "frames_per_s", "vs_reference"):
            assert _positive(row[key]), (key, row)
        assert row["peak_mb"] is None  # no GPU memory figure on CPU
        assert math.isclose(row["vs_reference"], gpu.REFERENCE_S_PER_100 / row["s_per_100_frames"])
    assert vae["largest_batch"] == 4 and vae["best_batch"] in (2, 4) and _positive(vae["best_s_per_100_frames"])

    training = report["training"]
    assert [r["model"] for r in training["rows"]] == list(gpu.MODELS)
    for row in training["rows"]:
        assert row["status"] == "ok", row
        assert row["steps"] == 2 and row["batch"] == 8 and row["image_size"] == DEMO_SETTINGS.image_size
        for key in ("params", "frames", "steps_per_s", "seconds_per_step", "clips_per_s"):
            assert _positive(row[key]), (key, row)
        assert math.isfinite(row["loss"])
        assert row["peak_mb"] is None

    # One markdown table per part, every measured row in it with its figures.
    tables = [[[c.strip() for c in line.strip().strip("|").split("|")] for line in block.splitlines()]
              for block in printed.split("\n\n") if block.startswith("|")]
    assert len(tables) == 2
    (vae_head, _, *vae_rows), (train_head, _, *train_rows) = tables
    assert "s per 100 frames" in vae_head and "steps/s" in train_head and "peak MiB" in train_head
    assert [r[0] for r in vae_rows] == ["2", "4"]
    assert [r[0] for r in train_rows] == list(gpu.MODELS)
    steps = train_head.index("steps/s")
    assert all(float(r[steps]) > 0 for r in train_rows)
    assert str(out) in printed


def test_cuda_asked_without_cuda_exits_2(tmp_path):
    out = tmp_path / "gpu.json"
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}  # no CUDA device, even on a GPU node
    done = subprocess.run([sys.executable, "-m", "benchmarks.gpu", "--device", "cuda", "--out", str(out)],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2, done.stderr
    assert "sees no CUDA device" in done.stderr and "--device cpu" in done.stderr
    assert "Traceback" not in done.stderr
    assert not out.exists()


def test_autoencoder_stops_growing_at_the_first_batch_that_runs_out_of_memory(tmp_path, monkeypatch):
    import torch

    from fvc_resources.autoencoder import VaeScaler

    real = VaeScaler._forward

    def forward(self, batch):  # a device that holds at most 2 frames at once
        if batch.shape[0] > 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(self, batch)

    monkeypatch.setattr(VaeScaler, "_forward", forward)
    out = tmp_path / "gpu.json"
    assert gpu.main(["--tiny", "--device", "cpu", "--threads", "1", "--parts", "autoencoder", "--vae-batches", "1,2,4,8",
                     "--vae-frames", "4", "--out", str(out)]) == 0
    vae = json.loads(out.read_text())["autoencoder"]
    assert [(r["batch"], r["status"]) for r in vae["rows"]] == [(1, "ok"), (2, "ok"), (4, "oom")]
    assert vae["largest_batch"] == 2 and vae["stopped_by_oom"] is True
