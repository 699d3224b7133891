"""Video I/O with PyAV: probe, sample N frames, stream chunks, write clips.

Pure code (no Dagster). Nothing here holds a whole video in memory: frames
are decoded one at a time and only the ones asked for are converted to arrays.
Codec facts come from the container (PyAV), never from a subprocess.
"""

from __future__ import annotations

import bisect
import math
import os
import queue
import threading
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import av
import av.logging
import cv2
import numpy as np

from fvc_core.step_cost import phase
from fvc_resources.atomic import atomic_path

VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".flv", ".3gp", ".wmv"}
)


class VideoError(Exception):
    """A video that cannot be used; the message names the file and the reason."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


@dataclass(frozen=True)
class VideoProbe:
    path: str
    container: str
    codec: str
    pix_fmt: str
    width: int
    height: int
    fps: float
    frame_count: int
    duration: float
    bitrate: int
    rotation: int
    has_audio: bool
    size_bytes: int

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class SampledFrame:
    target_time: float  # seconds asked for
    time: float  # presentation time of the frame returned
    image: np.ndarray  # uint8: H x W x 3 RGB, or H x W grey


def _open(path: str | os.PathLike) -> av.container.InputContainer:
    path = Path(path)
    if not path.is_file():
        raise VideoError(path, "file not found")
    if path.stat().st_size == 0:
        raise VideoError(path, "empty file (0 bytes)")
    try:
        return av.open(str(path), mode="r")
    except av.error.FFmpegError:
        pass
    raise VideoError(path, f"not a readable video container ({_open_error_with_log(path)})")


def _open_error_with_log(path: Path) -> str:
    """Open again with FFmpeg's log on, to get its own words ("moov atom not found").

    PyAV's logging stays off otherwise: with frame-threaded decoders it can deadlock.
    """
    previous = av.logging.get_level()
    av.logging.set_level(av.logging.ERROR)
    try:
        with av.logging.Capture():
            av.open(str(path), mode="r").close()
    except av.error.FFmpegError as exc:
        return _ffmpeg_reason(exc)
    finally:
        av.logging.set_level(previous)
    return "opened only on a second try"


def _ffmpeg_reason(exc: Exception) -> str:
    text = (getattr(exc, "strerror", None) or str(exc)).strip() or type(exc).__name__
    log = getattr(exc, "log", None)
    if log and len(log) >= 3 and log[2]:
        text += f": {str(log[2]).strip()}"
    return text


def _video_stream(container, path) -> av.video.stream.VideoStream:
    if not container.streams.video:
        kinds = sorted({s.type for s in container.streams}) or ["none"]
        raise VideoError(path, f"no video stream (streams found: {', '.join(kinds)})")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    return stream


def _stream_fps(stream) -> float:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate and float(rate) > 0:
            return float(rate)
    return 0.0


def _stream_duration(container, stream) -> float:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / av.time_base
    return 0.0


def _frame_count(stream, fps: float, duration: float) -> int:
    """Frames in the stream: the header's count, else duration x fps.

    Matroska/WebM headers carry no count, and counting packets under-counts
    VP9 (hidden alt-ref frames share packets), so the estimate is the better one.
    """
    if stream.frames:
        return int(stream.frames)
    return int(round(duration * fps)) if fps else 0


def _index_entries(stream) -> list:
    try:
        return list(stream.index_entries)
    except (AttributeError, av.error.FFmpegError):
        return []


def probe(path: str | os.PathLike) -> VideoProbe:
    """Read container and codec facts and decode the first frame to prove it decodes."""
    with phase("probing"):  # a step's cost: time spent probing, wherever it is called from
        return _probe(Path(path))


def _probe(path: Path) -> VideoProbe:
    container = _open(path)
    try:
        stream = _video_stream(container, path)
        try:
            first = next(container.decode(stream), None)
        except av.error.FFmpegError as exc:
            raise VideoError(path, f"video stream does not decode ({_ffmpeg_reason(exc)})") from exc
        if first is None:
            raise VideoError(path, "video stream has no decodable frame (truncated or empty)")
        fps = _stream_fps(stream)
        ctx = stream.codec_context
        duration = _stream_duration(container, stream)
        frames = _frame_count(stream, fps, duration)
        duration = duration or (frames / fps if fps else 0.0)
        size = path.stat().st_size
        bitrate = int(stream.bit_rate or container.bit_rate or (size * 8 / duration if duration else 0))
        return VideoProbe(
            path=str(path),
            container=container.format.name,
            codec=ctx.name,
            pix_fmt=ctx.pix_fmt or first.format.name,
            width=int(first.width),
            height=int(first.height),
            fps=round(fps, 4),
            frame_count=frames,
            duration=round(duration, 4),
            bitrate=bitrate,
            rotation=int(first.rotation or 0) % 360,
            has_audio=bool(container.streams.audio),
            size_bytes=size,
        )
    finally:
        container.close()


def upright(width: int, height: int, rotation: int) -> tuple[int, int]:
    """(width, height) as shown, from the stored size and the display rotation."""
    return (height, width) if rotation in (90, 270) else (width, height)


def upright_size(path: str | os.PathLike) -> tuple[int, int]:
    """(width, height) of the video's frames as shown, display rotation applied."""
    facts = probe(path)
    return upright(facts.width, facts.height, facts.rotation)


def sample_times(start: float, duration: float, n: int) -> list[float]:
    """N presentation times spread evenly over the video, each at the centre of its slot."""
    if n <= 0 or duration <= 0:
        return [start] if n > 0 else []
    return [start + (i + 0.5) * duration / n for i in range(n)]


def _keyframe_times(container, stream) -> list[float]:
    """Keyframe times from the demuxer's index; a packet-only pass when there is none."""
    tb = float(stream.time_base)
    entries = _index_entries(stream)
    if entries and any(e.is_keyframe for e in entries):
        # MP4 indexes hold decode times, which run ahead of presentation times by the
        # B-frame delay; shift them so they compare with frame times. (Zero for Matroska.)
        start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
        delay = max(0.0, start - min(e.timestamp for e in entries) * tb)
        return sorted(e.timestamp * tb + delay for e in entries if e.is_keyframe)
    # No index (e.g. MPEG-TS): demux packets without decoding them.
    times = [
        packet.pts * tb
        for packet in container.demux(stream)
        if packet.is_keyframe and packet.pts is not None
    ]
    container.seek(0)
    return sorted(times)


def frame_array(
    frame: av.VideoFrame,
    width: int | None,
    height: int | None,
    fmt: str = "rgb24",
    upright: bool = False,
    interpolation: str = "AREA",
) -> np.ndarray:
    """RGB (H, W, 3) or grey (H, W) uint8, resized inside PyAV (no RGB round trip).

    ``upright`` applies the display rotation, as players (and ffmpeg) do.
    """
    if width and height:
        array = frame.to_ndarray(format=fmt, width=width, height=height, interpolation=interpolation)
    else:
        array = frame.to_ndarray(format=fmt)
    if upright and frame.rotation:
        array = np.ascontiguousarray(np.rot90(array, k=(int(frame.rotation) // 90) % 4))
    return array


def sample_frames(
    path: str | os.PathLike,
    n: int,
    *,
    width: int | None = None,
    height: int | None = None,
    fmt: str = "rgb24",
    upright: bool = False,
) -> Iterator[SampledFrame]:
    """Yield up to ``n`` frames spread evenly over the video, in time order, as arrays.

    See :func:`sample_video_frames` for how they are found; memory holds one frame.
    """
    for target, time, frame in sample_video_frames(path, n):
        yield SampledFrame(target, time, frame_array(frame, width, height, fmt, upright))


def sample_video_frames(path: str | os.PathLike, n: int) -> Iterator[tuple[float, float, av.VideoFrame]]:
    """Yield up to ``n`` (target time, frame time, decoded frame) spread evenly over the video.

    Route choice per target: decode forward from where the decoder stands,
    unless a keyframe lies between there and the target; then seek to the
    keyframe before the target. The cost is never more than one forward pass,
    and far less on long videos with few targets. A caller that needs a frame
    in more than one form (grey at full size, RGB at 256 px) converts it once each.
    """
    path = Path(path)
    container = _open(path)
    try:
        stream = _video_stream(container, path)
        fps = _stream_fps(stream) or 25.0
        tb = float(stream.time_base)
        start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
        duration = _stream_duration(container, stream)
        frames_hint = _frame_count(stream, fps, duration)
        n = min(n, frames_hint) if frames_hint else n
        keyframes = _keyframe_times(container, stream)
        frame_time = 1.0 / fps

        decoder: Iterator[av.VideoFrame] | None = None
        position = -math.inf  # time of the last frame decoded
        last: av.VideoFrame | None = None
        seekable = True  # False once a seek landed past the data: then decode forward from the start
        for target in sample_times(start, duration, n):
            for _ in range(2):  # a second pass only after a seek that found nothing
                k = bisect.bisect_right(keyframes, target) - 1
                keyframe = keyframes[k] if k >= 0 else start
                if decoder is None or (seekable and keyframe > position):
                    # Seek to the target itself: FFmpeg lands on the keyframe before it. (Index
                    # timestamps are DTS in MP4; seeking to one can land a whole GOP early.)
                    container.seek(int(target / tb) if seekable else 0, stream=stream, backward=True,
                                   any_frame=False)
                    decoder = container.decode(stream)
                    position = -math.inf
                    last = None
                if last is not None and last.time is not None and last.time + frame_time > target:
                    yield target, float(last.time), last
                    break
                found = None
                try:
                    for frame in decoder:
                        position = float(frame.time) if frame.time is not None else position + 1 / fps
                        last = frame
                        if position + frame_time > target:  # the frame on screen at the target time
                            found = frame
                            break
                except av.error.FFmpegError as exc:
                    raise VideoError(path, f"decoding failed near {target:.2f}s ({_ffmpeg_reason(exc)})") from exc
                if found is None and seekable and last is None:
                    # Nothing at all after the seek: containers without an index (MPEG program
                    # streams) seek by byte estimates and can land past the data. Start over,
                    # decoding forward from the beginning for this and every later target.
                    seekable, decoder = False, None
                    continue
                if found is None:
                    return  # stream ended early (truncated, or the header over-states duration)
                yield target, position, found
                break
    finally:
        container.close()


def iter_chunks(
    path: str | os.PathLike,
    chunk_frames: int = 32,
    *,
    max_frames: int | None = None,
    width: int | None = None,
    height: int | None = None,
    fmt: str = "rgb24",
    upright: bool = False,
    interpolation: str = "AREA",
) -> Iterator[np.ndarray]:
    """Decode the video front to back, yielding arrays of shape (k, H, W, 3), k <= chunk_frames."""
    path = Path(path)
    container = _open(path)
    try:
        stream = _video_stream(container, path)
        yield from batched_arrays(_decoded(path, container.decode(stream)), chunk_frames, max_frames=max_frames,
                                  width=width, height=height, fmt=fmt, upright=upright, interpolation=interpolation)
    finally:
        container.close()


def _decoded(path: Path, decoder: Iterator[av.VideoFrame], already: int = 0) -> Iterator[av.VideoFrame]:
    """The decoder's frames; a decoding error becomes a VideoError naming the file and the frame count."""
    count = already
    try:
        for frame in decoder:
            yield frame
            count += 1
    except av.error.FFmpegError as exc:
        raise VideoError(path, f"decoding failed after {count} frames ({_ffmpeg_reason(exc)})") from exc


def batched_arrays(
    frames: Iterable[av.VideoFrame],
    chunk_frames: int,
    *,
    max_frames: int | None = None,
    width: int | None = None,
    height: int | None = None,
    fmt: str = "rgb24",
    upright: bool = False,
    interpolation: str = "AREA",
) -> Iterator[np.ndarray]:
    """Frames as arrays (resized inside FFmpeg), stacked ``chunk_frames`` at a time."""
    chunk: list[np.ndarray] = []
    for count, frame in enumerate(frames, start=1):
        chunk.append(frame_array(frame, width, height, fmt, upright, interpolation))
        if len(chunk) == chunk_frames:
            yield np.stack(chunk)
            chunk = []
        if max_frames is not None and count >= max_frames:
            break
    if chunk:
        yield np.stack(chunk)


class OpenedVideo:
    """A video opened for one front-to-back pass, its first frame already decoded.

    Facts come from the stream and that first frame, so a caller that needs the size and
    rotation before it starts pays for one open and one decode, not a probe and then a
    second open. ``frames()`` yields every frame, the first included, as FFmpeg frames.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._container = _open(self.path)
        try:
            self._stream = _video_stream(self._container, self.path)
            self.fps = _stream_fps(self._stream)
            self._decoder = self._container.decode(self._stream)
            self._first = next(self._decoder, None)
        except av.error.FFmpegError as exc:
            self.close()
            raise VideoError(self.path, f"video stream does not decode ({_ffmpeg_reason(exc)})") from exc
        except BaseException:
            self.close()
            raise
        if self._first is None:
            self.close()
            raise VideoError(self.path, "video stream has no decodable frame (truncated or empty)")
        self.width, self.height = int(self._first.width), int(self._first.height)  # as stored
        self.rotation = int(self._first.rotation or 0) % 360

    def frames(self) -> Iterator[av.VideoFrame]:
        yield self._first
        yield from _decoded(self.path, self._decoder, already=1)

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> "OpenedVideo":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def prefetched(items: Iterator, depth: int = 4) -> Iterator:
    """Run ``items`` on a background thread, ``depth`` ahead of the consumer.

    Decoding and resizing (FFmpeg, GIL released) then overlap with whatever the consumer
    does with each item (encoding). An exception in ``items`` is raised to the consumer;
    a consumer that stops early stops the thread.
    """
    done, stop = object(), threading.Event()
    buffer: queue.Queue = queue.Queue(maxsize=depth)

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        buffer.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            buffer.put(done)
        except BaseException as exc:  # noqa: BLE001 - raised in the consumer
            buffer.put(exc)
        finally:
            close = getattr(items, "close", None)
            if close:
                close()

    thread = threading.Thread(target=produce, name="prefetch", daemon=True)
    thread.start()
    try:
        while (item := buffer.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


@dataclass(frozen=True)
class WrittenClip:
    path: str
    frames: int
    width: int
    height: int
    fps: float
    codec: str


CONTAINER_FORMATS = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm", ".avi": "avi"}


def default_encoder_options(codec: str) -> dict[str, str]:
    """x264 at crf 18 with macroblock-tree rate control off, on one thread.

    With mbtree on, x264 gave different bytes and different decoded pixels from
    run to run here, even single-threaded; with it off, every run was identical.
    One thread, because x264's output depends on its thread count, and "auto"
    means the machine's cores: clips made on a 16-core node would differ from a
    laptop's. Stage 1 gets its parallelism from encoding clips side by side.
    Determinism is a platform rule (features must reproduce).
    """
    if codec == "libx264":
        return {"crf": "18", "preset": "veryfast", "x264-params": "mbtree=0", "threads": "1"}
    return {}


def x264_encoder_mb(width: int, height: int) -> float:
    """Resident memory one open x264 encoder (the settings above) holds at this frame size.

    Measured here with PyAV: 121 MB at 1920x1080, 60 MB at 1280x720, 32 MB at 854x480 (its
    look-ahead and reference frames, each with half-pixel planes). Used to plan how many
    encoders a step may keep open at once.
    """
    return 6.0 + 56e-6 * width * height


class ClipWriter:
    """Encode RGB frames into ``path`` atomically: a temp file beside it, renamed on ``close()``.

    ``abort()`` (or an exception inside ``with``) removes the temp file, so a
    failed or killed writer never leaves a half clip under the real name. Odd
    widths or heights are padded by one edge-replicated row/column, since 4:2:0
    encoders need even sizes.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        fps: float,
        *,
        codec: str = "libx264",
        options: dict[str, str] | None = None,
        bit_rate: int | None = None,
        pix_fmt: str = "yuv420p",
    ):
        self.path = Path(path)
        self.format = CONTAINER_FORMATS.get(self.path.suffix.lower())
        if self.format is None:
            raise ValueError(f"{self.path}: unsupported clip container {self.path.suffix!r}")
        self.codec = codec
        self.options = options if options is not None else default_encoder_options(codec)
        self.bit_rate = bit_rate
        self.pix_fmt = pix_fmt
        self.rate = Fraction(fps).limit_denominator(1001)
        self.frames = 0
        self.width = self.height = 0
        self._atomic = atomic_path(self.path)
        self._tmp = self._atomic.__enter__()
        self._out = av.open(str(self._tmp), mode="w", format=self.format)
        self._stream = None

    def write(self, chunk: np.ndarray) -> None:
        """Append a chunk (k, H, W, 3) or one frame (H, W, 3) of RGB uint8."""
        for image in chunk[None] if chunk.ndim == 3 else chunk:
            image = _even(image)
            self._start(image.shape[1], image.shape[0])
            self._out.mux(self._stream.encode(self._frame(image)))
            self.frames += 1

    def write_frame(self, frame: av.VideoFrame) -> None:
        """Append a decoded frame as it is (already in the encoder's pixel format and an even
        size): no array, no conversion, as `ffmpeg -vf scale` hands frames to its encoder."""
        if frame.format.name != self.pix_fmt or frame.width % 2 or frame.height % 2:
            raise ValueError(f"{self.path}: write_frame needs even-sized {self.pix_fmt} frames, "
                             f"got {frame.width}x{frame.height} {frame.format.name}")
        self._start(frame.width, frame.height)
        frame.pts, frame.time_base = self.frames, 1 / self.rate  # numbered at the clip's rate
        self._out.mux(self._stream.encode(frame))
        self.frames += 1

    def _start(self, width: int, height: int) -> None:
        if self._stream is None:
            self.width, self.height = width, height
            stream = self._out.add_stream(self.codec, rate=self.rate, options=self.options)
            stream.width, stream.height, stream.pix_fmt = width, height, self.pix_fmt
            if self.bit_rate:
                stream.bit_rate = self.bit_rate
            self._stream = stream

    def _frame(self, image: np.ndarray) -> av.VideoFrame:
        """RGB to the encoder's format. For 4:2:0, OpenCV's converter (BT.601, limited range, as
        FFmpeg's default) is about 4x faster than handing RGB to the encoder's swscale."""
        if self.pix_fmt == "yuv420p":
            return av.VideoFrame.from_ndarray(cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2YUV_I420), format="yuv420p")
        return av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")

    def close(self) -> "WrittenClip":
        try:
            if self._stream is None:
                raise ValueError(f"{self.path}: no frames to write")
            self._out.mux(self._stream.encode(None))
            self._out.close()
        except BaseException as exc:
            self.abort(exc)
            raise
        self._atomic.__exit__(None, None, None)
        return WrittenClip(str(self.path), self.frames, self.width, self.height, float(self.rate), self.codec)

    def abort(self, exc: BaseException | None = None) -> None:
        try:
            self._out.close()
        except av.error.FFmpegError:
            pass
        error = exc or RuntimeError("aborted")
        try:
            self._atomic.__exit__(type(error), error, None)
        except BaseException:
            pass

    def __enter__(self) -> "ClipWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc is not None:
            self.abort(exc)


def write_clip(
    path: str | os.PathLike,
    chunks: Iterable[np.ndarray],
    fps: float,
    *,
    codec: str = "libx264",
    options: dict[str, str] | None = None,
    bit_rate: int | None = None,
    pix_fmt: str = "yuv420p",
) -> WrittenClip:
    """Encode RGB frames (chunks of (k, H, W, 3) or single (H, W, 3) arrays) into ``path`` atomically.

    Raises ValueError when there is no frame.
    """
    with ClipWriter(path, fps, codec=codec, options=options, bit_rate=bit_rate, pix_fmt=pix_fmt) as writer:
        for chunk in chunks:
            writer.write(chunk)
        return writer.close()


def _even(image: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return image
    return np.pad(image, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
