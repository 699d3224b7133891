"""The video I/O resource: the pure PyAV functions of ``fvc_resources.video``, configured once."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator

import dagster as dg
import numpy as np
from pydantic import Field

from fvc_resources import video


class VideoResource(dg.ConfigurableResource):
    """Probe, sample, stream and write videos. Memory never grows with video length."""

    chunk_frames: int = Field(default=32, description="Frames per chunk when streaming a whole video.")
    clip_codec: str = Field(default="libx264", description="Encoder for clips the platform writes.")
    clip_crf: int = Field(default=18, description="x264 constant rate factor for written clips.")

    def probe(self, path: str | os.PathLike) -> video.VideoProbe:
        return video.probe(path)

    def sample_frames(self, path, n: int, *, width=None, height=None) -> Iterator[video.SampledFrame]:
        return video.sample_frames(path, n, width=width, height=height)

    def iter_chunks(self, path, *, max_frames=None, width=None, height=None) -> Iterator[np.ndarray]:
        return video.iter_chunks(path, self.chunk_frames, max_frames=max_frames, width=width, height=height)

    def write_clip(self, path, chunks: Iterable[np.ndarray], fps: float) -> video.WrittenClip:
        options = video.default_encoder_options(self.clip_codec)
        if self.clip_codec == "libx264":
            options["crf"] = str(self.clip_crf)
        return video.write_clip(path, chunks, fps, codec=self.clip_codec, options=options)
