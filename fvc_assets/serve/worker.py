"""A scoring process: loads the model in service once, then scores one video per message.

Scoring runs in child processes, not in the server's threads, so that a request's time limit
can be enforced (the process is killed) and a decoder that crashes on a hostile file takes
down one worker, never the service. Messages are plain dicts over a ``multiprocessing`` pipe.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

PR_SET_PDEATHSIG = 1  # linux/prctl.h: a signal for this process when its parent ends


def die_with_parent(parent_pid: int) -> None:
    """Killed with the server, even by SIGKILL: a worker left behind would hold the model and a CPU."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:  # the parent ended before prctl took effect
        os._exit(1)


def limit_threads(threads: int) -> None:
    from threadpoolctl import threadpool_limits

    threadpool_limits(threads)
    import cv2

    cv2.setNumThreads(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


class Scorer:
    """The model in service, each fold model loaded once."""

    def __init__(self, model: dict, root: Path, work_root: Path):
        from fvc_assets.predict import FoldModels, fold_folders
        from fvc_assets.train.models.base import FitContext

        self.name, self.version, self.thresholds = model["name"], model["version"], model["thresholds"]
        self.root, self.work_root = root, work_root
        train_dir = Path(model["train_dir"])
        self.folders = fold_folders(train_dir, self.name, root)
        self.models = FoldModels(train_dir, root, FitContext(root=root, workdir=work_root, frames_cache=work_root))
        self.needs_frames = self.models.reads_frames(self.name, [f.name for f in self.folders])
        other = set(model["details"].get("scaled_by", [])) - {"letterbox"}
        if self.needs_frames and other:
            raise ValueError(f"the model was trained on clips scaled by {sorted(other)}; the service scales by "
                             "letterbox only, so its scores would not be comparable")
        for folder in self.folders:  # load every fold model now: readiness means the first request is not slow
            self.models.model(self.name, folder.name)

    def score(self, job: dict) -> dict:
        from fvc_assets.predict import decide, score_video
        from fvc_resources.video import VideoError, probe

        started = time.perf_counter()
        path, shown = Path(job["path"]), job["name"]
        job_dir = self.work_root / job["id"]
        try:
            try:
                facts = probe(path)
            except VideoError as exc:
                return {"ok": False, "status": 422, "reason": exc.reason}
            if facts.duration > job["max_duration_s"]:
                return {"ok": False, "status": 422,
                        "reason": f"over the duration limit ({facts.duration:.1f} s > {job['max_duration_s']:g} s)"}
            probed = time.perf_counter()
            self.models.context = replace(self.models.context, workdir=job_dir, frames_cache=job_dir / "frames")
            try:
                prediction = score_video(self.models, self.name, self.folders, path, job_dir, self.needs_frames,
                                         shown_as=shown)
            except (VideoError, ValueError) as exc:
                return {"ok": False, "status": 422, "reason": getattr(exc, "reason", None) or str(exc)}
            decide([prediction], self.thresholds, job["operating_point"])
            done = time.perf_counter()
            return {"ok": True, "prediction": asdict(prediction),
                    "video": {"duration_s": facts.duration, "width": facts.width, "height": facts.height,
                              "codec": facts.codec, "container": facts.container},
                    "timings": {"probe_s": round(probed - started, 4), "score_s": round(done - probed, 4)}}
        finally:
            shutil.rmtree(job_dir, ignore_errors=True)


def worker_main(conn, model: dict, root: str, work_root: str, parent_pid: int, threads: int) -> None:
    die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the server, which ends its workers
    try:
        scorer = Scorer(model, Path(root), Path(work_root))
        limit_threads(threads)
    except BaseException as exc:  # noqa: BLE001 - any load failure is reported, not raised into the void
        conn.send({"ready": False, "error": f"{type(exc).__name__}: {exc}"})
        return
    conn.send({"ready": True, "version": scorer.version})
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        try:
            result = scorer.score(job)
        except Exception as exc:  # noqa: BLE001 - a bug or a library error on one video fails that video only
            result = {"ok": False, "status": 500, "reason": f"scoring failed: {type(exc).__name__}: {exc}"}
        conn.send(result)
