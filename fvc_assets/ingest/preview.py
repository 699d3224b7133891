"""Preview images: full-size PNG files beside the outputs, and small JPEG thumbnails for the Dagster UI.

A thumbnail goes into the materialisation's metadata, which the event log keeps for every
run of every partition; at the corpus's size (5,199 videos, each run again now and then)
a 640-px PNG per event would make the instance gigabytes. So each thumbnail has a byte
budget it is fitted into (quality first, then size), whatever the picture; the PNG file,
linked in the same metadata, keeps the detail.
"""

from __future__ import annotations

import base64
from pathlib import Path

import cv2
import numpy as np

from fvc_resources.atomic import write_bytes_atomic


def png_bytes(image_rgb: np.ndarray, max_side: int = 240) -> bytes:
    h, w = image_rgb.shape[:2]
    scale = max_side / max(h, w)
    if scale < 1:
        image_rgb = cv2.resize(image_rgb, (max(1, int(w * scale)), max(1, int(h * scale))), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".png", cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError("PNG encoding failed")
    return buf.tobytes()


def write_preview(path: str | Path, image_rgb: np.ndarray, max_side: int = 240) -> bytes:
    data = png_bytes(image_rgb, max_side)
    write_bytes_atomic(path, data)
    return data


# Per image in event-log metadata (JPEG bytes; base64 makes them a third larger).
# Dagster keeps output metadata twice (the step's output and the materialisation), so each counts double.
PREVIEW_THUMBNAIL_BYTES = 2_000
SHEET_THUMBNAIL_BYTES = 8_000
_JPEG_QUALITIES = (80, 65, 50, 35)


def thumbnail_jpeg(image_rgb: np.ndarray, max_side: int, max_bytes: int) -> bytes:
    """A JPEG of the image, longer side at most ``max_side``, at most ``max_bytes``: the best quality that
    fits, else the image made smaller until it fits (deterministic for a given image)."""
    bgr = cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR)
    side = max_side
    while True:
        h, w = bgr.shape[:2]
        scale = min(1.0, side / max(h, w))
        small = bgr if scale == 1.0 else cv2.resize(
            bgr, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        for quality in _JPEG_QUALITIES:
            ok, buf = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, quality])
            if not ok:
                raise ValueError("JPEG encoding failed")
            if len(buf) <= max_bytes or side <= 16:
                return buf.tobytes()
        side = max(16, int(min(side, max(h, w)) * 0.75))


def markdown_image(data: bytes, alt: str) -> str:
    """Markdown that shows a PNG or JPEG inline in the Dagster UI's metadata panel."""
    mime = "image/jpeg" if data[:3] == b"\xff\xd8\xff" else "image/png"
    return f"![{alt}](data:{mime};base64,{base64.b64encode(data).decode()})"


SHEET_TILE = 160


def fit_tile(image: np.ndarray, tile: int = SHEET_TILE) -> np.ndarray:
    """The image scaled so its longer side is ``tile`` (a contact sheet's cell); as it is if it already is."""
    h, w = image.shape[:2]
    if max(h, w) == tile:
        return image
    scale = tile / max(h, w)
    return cv2.resize(image, (max(1, int(w * scale)), max(1, int(h * scale))), interpolation=cv2.INTER_AREA)


def contact_sheet(images: list[np.ndarray], labels: list[str], tile: int = SHEET_TILE, columns: int = 4) -> np.ndarray:
    """One RGB image tiling ``images`` (any sizes; :func:`fit_tile` ones cost nothing more) letterboxed
    into ``tile`` squares, each captioned."""
    rows = (len(images) + columns - 1) // columns
    sheet = np.full((rows * (tile + 16), columns * tile, 3), 24, np.uint8)
    for i, (image, label) in enumerate(zip(images, labels)):
        small = fit_tile(image, tile)
        y0, x0 = (i // columns) * (tile + 16), (i % columns) * tile
        oy, ox = (tile - small.shape[0]) // 2, (tile - small.shape[1]) // 2
        sheet[y0 + oy : y0 + oy + small.shape[0], x0 + ox : x0 + ox + small.shape[1]] = small
        cv2.putText(sheet, label[:22], (x0 + 3, y0 + tile + 12), cv2.FONT_HERSHEY_SIMPLEX, 0.35,
                    (230, 230, 230), 1, cv2.LINE_AA)
    return sheet
