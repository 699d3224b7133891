"""Thumbnails for the event log fit their byte budget whatever the picture, and keep its shape."""

import cv2
import numpy as np
import pytest

from fvc_assets.ingest.preview import SHEET_THUMBNAIL_BYTES, markdown_image, thumbnail_jpeg


def decoded(data: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    return image


@pytest.mark.parametrize("height, width", [(720, 1280), (1280, 720)])
def test_a_noise_image_is_shrunk_until_it_fits_and_keeps_its_aspect(height, width):
    noise = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    data = thumbnail_jpeg(noise, 640, SHEET_THUMBNAIL_BYTES)
    assert len(data) <= SHEET_THUMBNAIL_BYTES
    h, w = decoded(data).shape[:2]
    assert max(h, w) < 640  # noise does not fit at full size: made smaller
    assert abs(w / h - width / height) < 0.05
    assert thumbnail_jpeg(noise, 640, SHEET_THUMBNAIL_BYTES) == data  # same image, same bytes


def test_a_plain_image_keeps_its_full_thumbnail_size():
    gradient = np.tile(np.linspace(0, 255, 960, dtype=np.uint8)[None, :, None], (540, 1, 3))
    data = thumbnail_jpeg(gradient, 640, SHEET_THUMBNAIL_BYTES)
    assert decoded(data).shape[:2] == (360, 640)
    assert markdown_image(data, "x").startswith("![x](data:image/jpeg;base64,")
