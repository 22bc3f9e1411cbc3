"""Box and crop geometry of the OSTrack-style inference protocol.

Every formula here reproduces the official AINet / DMTrack (OSTrack) code, quirks included,
because the networks were trained on crops produced exactly this way.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

BoxLike = Sequence[float] | np.ndarray


def _as_box(box: BoxLike) -> npt.NDArray[np.float64]:
    array = np.asarray(box, dtype=np.float64)
    if array.shape != (4,):
        raise ValueError(f"a box needs exactly 4 values (x, y, w, h), got shape {array.shape}")
    return array


def validate_box(box: BoxLike, height: int, width: int) -> npt.NDArray[np.float64]:
    """Check an (x, y, w, h) box against an image of height x width; return it as float64.

    Catches the boxes that would otherwise crash or silently corrupt the first template.
    """
    array = _as_box(box)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"box {array.tolist()} contains NaN or infinity")
    x, y, w, h = array
    if w <= 0 or h <= 0:
        raise ValueError(f"box {array.tolist()} needs a positive width and height")
    if x + w <= 0 or y + h <= 0 or x >= width or y >= height:
        raise ValueError(
            f"box {array.tolist()} does not overlap the {width}x{height} (w x h) image"
        )
    return array


@dataclass(frozen=True)
class CropWindow:
    """Where `crop_square` crops: the square [x1, x1 + size) x [y1, y1 + size) in image pixels
    and the part of it taken from the image, rows [row0, row1) x cols [col0, col1) (the rest
    is zero padding)."""

    x1: int
    y1: int
    size: int
    row0: int
    row1: int
    col0: int
    col1: int

    @property
    def empty(self) -> bool:
        """The window lies wholly in the padding."""
        return self.row1 <= self.row0 or self.col1 <= self.col0

    @property
    def pads(self) -> tuple[int, int, int, int]:
        """Zero padding (top, bottom, left, right) around the image part."""
        return (self.row0 - self.y1, self.y1 + self.size - self.row1,
                self.col0 - self.x1, self.x1 + self.size - self.col1)


def crop_window(box_xywh: BoxLike, factor: float, height: int, width: int) -> CropWindow:
    """The official `sample_target`'s square for a box in a height x width image: Python's
    (banker's) round for the corner, and the official `+ 1` in the right/bottom padding,
    which drops the last image column/row whenever the crop reaches past it."""
    x, y, w, h = _as_box(box_xywh).tolist()
    crop_size = math.ceil(math.sqrt(w * h) * factor)
    if crop_size < 1:
        raise ValueError(f"box {[x, y, w, h]} is too small to crop (crop size {crop_size})")
    x1 = round(x + 0.5 * w - crop_size * 0.5)
    x2 = x1 + crop_size
    y1 = round(y + 0.5 * h - crop_size * 0.5)
    y2 = y1 + crop_size
    x1_pad = max(0, -x1)
    x2_pad = max(x2 - width + 1, 0)
    y1_pad = max(0, -y1)
    y2_pad = max(y2 - height + 1, 0)
    return CropWindow(x1, y1, crop_size, y1 + y1_pad, y2 - y2_pad, x1 + x1_pad, x2 - x2_pad)


def crop_square(
    image: np.ndarray, box_xywh: BoxLike, factor: float, output_size: int
) -> tuple[np.ndarray, float]:
    """Square crop of side ceil(sqrt(w*h) * factor) centred on the box, resized to output_size.

    This is the official `sample_target`: Python's (banker's) round for the corner, zero padding
    outside the image, and the official `+ 1` in the right/bottom padding, which drops the last
    image column/row whenever the crop reaches past it. Returns the patch and
    resize_factor = output_size / crop_size.
    """
    height, width = image.shape[:2]
    window = crop_window(box_xywh, factor, height, width)
    crop_size = window.size
    if window.empty:
        # The window lies wholly in the padding; copyMakeBorder cannot pad an empty array.
        padded = np.zeros((crop_size, crop_size) + image.shape[2:], dtype=image.dtype)
    elif not any(window.pads):
        # Nothing to pad: resize reads the rows and columns it samples from the image itself,
        # instead of a copy of the whole window (a large box no longer costs more).
        padded = image[window.row0:window.row1, window.col0:window.col1]
    else:
        padded = cv2.copyMakeBorder(
            image[window.row0:window.row1, window.col0:window.col1], *window.pads,
            cv2.BORDER_CONSTANT, value=0
        )
    patch = cv2.resize(padded, (output_size, output_size))
    # OpenCV drops a trailing channel axis of length 1; keep the caller's layout.
    return patch.reshape((output_size, output_size) + image.shape[2:]), output_size / crop_size


def hann_window(size: int) -> npt.NDArray[np.float64]:
    """size x size Hann window (the official `hann2d`), which penalises large jumps."""
    k = np.arange(1, size + 1, dtype=np.float64)
    window = 0.5 * (1.0 - np.cos(2.0 * math.pi * k / (size + 1)))
    return np.outer(window, window)


def map_box_back(
    pred_cxcywh_pixels: BoxLike, prev_box: BoxLike, search_size: int, resize_factor: float
) -> npt.NDArray[np.float64]:
    """Move a (cx, cy, w, h) box in crop pixels (already divided by resize_factor) into the image.

    Like the official code, the crop is assumed centred on the previous box's centre (the
    rounding of the crop corner is ignored). Returns (x, y, w, h).
    """
    cx, cy, w, h = _as_box(pred_cxcywh_pixels)
    px, py, pw, ph = _as_box(prev_box)
    half_side = 0.5 * search_size / resize_factor
    cx_image = cx + (px + 0.5 * pw) - half_side
    cy_image = cy + (py + 0.5 * ph) - half_side
    return np.array([cx_image - 0.5 * w, cy_image - 0.5 * h, w, h], dtype=np.float64)


def clip_box(box: BoxLike, height: int, width: int, margin: float = 10) -> npt.NDArray[np.float64]:
    """Keep an (x, y, w, h) box inside the image and at least `margin` pixels wide and high.

    The official `clip_box`; it keeps the next search crop on the image even after a bad frame.
    """
    x1, y1, w, h = _as_box(box)
    x2, y2 = x1 + w, y1 + h
    x1 = min(max(0.0, x1), width - margin)
    x2 = min(max(margin, x2), width)
    y1 = min(max(0.0, y1), height - margin)
    y2 = min(max(margin, y2), height)
    return np.array([x1, y1, max(margin, x2 - x1), max(margin, y2 - y1)], dtype=np.float64)
