"""Photometric and geometric augmentation of training crops, as in the published recipe:
grayscale 5 %, horizontal flip, brightness jitter 0.2.

Applied to the crops rather than the full frames: a crop is mirrored pixel for pixel, so the
box stays exact, and the small crops are cheaper to transform than whole frames.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import cv2
import numpy as np
import numpy.typing as npt


class Pair(NamedTuple):
    """One training sample: template crops (T, 128, 128, 3) per modality, oldest first, the
    search crops (256, 256, 3) and the target box (cx, cy, w, h) normalised to the search crop."""

    templates_rgb: npt.NDArray[np.uint8]
    templates_x: npt.NDArray[np.uint8]
    search_rgb: npt.NDArray[np.uint8]
    search_x: npt.NDArray[np.uint8]
    box: npt.NDArray[np.float64]


@dataclass(frozen=True)
class Augment:
    """Probabilities of grayscale and flip; brightness factors are drawn from 1 +- brightness."""

    grayscale: float = 0.05
    flip: float = 0.5
    brightness: float = 0.2


def to_grayscale(images: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """(..., H, W, 3) RGB -> the same shape with three equal luminance channels."""
    flat = images.reshape(-1, *images.shape[-3:])
    gray = np.stack([cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) for image in flat])
    return np.repeat(gray[..., None], 3, axis=-1).reshape(images.shape)


def flip_box(box: npt.NDArray[np.float64], crop_size: int) -> npt.NDArray[np.float64]:
    """Mirror a normalised (cx, cy, w, h) box: pixel column i becomes crop_size - 1 - i, and
    box centres are in pixel-index coordinates (see pairs.box_in_crop)."""
    flipped: npt.NDArray[np.float64] = box.copy()
    flipped[0] = (crop_size - 1) / crop_size - box[0]
    return flipped


def scale_brightness(images: list[npt.NDArray[np.uint8]], factor: float) -> list[npt.NDArray[np.uint8]]:
    return [np.clip(np.rint(image.astype(np.float32) * factor), 0, 255).astype(np.uint8) for image in images]


def augment_pair(pair: Pair, rng: np.random.Generator, augment: Augment) -> Pair:
    """Grayscale and flip act on templates and search together (one joint draw, as the target
    must look alike in both); brightness is drawn once for the templates, once for the search.
    Every draw is made whatever its outcome, so the random stream does not depend on it."""
    gray, flip = rng.random(2) < (augment.grayscale, augment.flip)
    low = max(0.0, 1.0 - augment.brightness)
    template_gain, search_gain = rng.uniform(low, 1.0 + augment.brightness, size=2)
    templates_rgb, templates_x, search_rgb, search_x, box = pair
    if gray:
        templates_rgb, search_rgb = to_grayscale(templates_rgb), to_grayscale(search_rgb)
    if flip:
        templates_rgb, templates_x = templates_rgb[..., ::-1, :], templates_x[..., ::-1, :]
        search_rgb, search_x = search_rgb[:, ::-1], search_x[:, ::-1]
        box = flip_box(box, search_rgb.shape[1])
    templates_rgb, templates_x = scale_brightness([templates_rgb, templates_x], template_gain)
    search_rgb, search_x = scale_brightness([search_rgb, search_x], search_gain)
    return Pair(templates_rgb, templates_x, search_rgb, search_x, box)
