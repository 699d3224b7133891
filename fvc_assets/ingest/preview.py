"""Small preview images for the Dagster UI."""

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


def markdown_image(data: bytes, alt: str) -> str:
    """Markdown that shows a PNG inline in the Dagster UI's metadata panel."""
    return f"![{alt}](data:image/png;base64,{base64.b64encode(data).decode()})"


def contact_sheet(images: list[np.ndarray], labels: list[str], tile: int = 160, columns: int = 4) -> np.ndarray:
    """One RGB image tiling ``images`` (any sizes) letterboxed into ``tile`` squares, each captioned."""
    rows = (len(images) + columns - 1) // columns
    sheet = np.full((rows * (tile + 16), columns * tile, 3), 24, np.uint8)
    for i, (image, label) in enumerate(zip(images, labels)):
        h, w = image.shape[:2]
        scale = tile / max(h, w)
        small = cv2.resize(image, (max(1, int(w * scale)), max(1, int(h * scale))), interpolation=cv2.INTER_AREA)
        y0, x0 = (i // columns) * (tile + 16), (i % columns) * tile
        oy, ox = (tile - small.shape[0]) // 2, (tile - small.shape[1]) // 2
        sheet[y0 + oy : y0 + oy + small.shape[0], x0 + ox : x0 + ox + small.shape[1]] = small
        cv2.putText(sheet, label[:22], (x0 + 3, y0 + tile + 12), cv2.FONT_HERSHEY_SIMPLEX, 0.35,
                    (230, 230, 230), 1, cv2.LINE_AA)
    return sheet
