"""Synthetic RGB-T sequences: a target moving over a textured scene, seen by an RGB camera
and a thermal camera in which the target is warmer than its surroundings.

Deterministic by seed, so tests and training runs can be reproduced exactly.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass
class SyntheticSequence:
    rgb: list[np.ndarray]  # (H, W, 3) uint8 frames
    thermal: list[np.ndarray]  # (H, W) uint16 frames, like a radiometric camera
    boxes: np.ndarray  # (N, 4) ground truth x, y, w, h in pixels


def _texture(rng: np.random.Generator, height: int, width: int, channels: int) -> np.ndarray:
    """Smooth random blobs at a few scales: enough structure to make tracking non-trivial."""
    image = np.zeros((height, width, channels), np.float32)
    for scale in (4, 16, 64):
        coarse = rng.random((max(2, height // scale), max(2, width // scale), channels))
        image += cv2.resize(coarse.astype(np.float32), (width, height), interpolation=cv2.INTER_CUBIC).reshape(
            height, width, channels
        )
    image -= image.min()
    return image / max(float(image.max()), 1e-6)


def _trajectory(rng: np.random.Generator, frames: int, height: int, width: int, size: tuple[float, float]):
    """A smooth random walk of the target centre that bounces off the image border."""
    w, h = size
    centre = np.array([rng.uniform(w, width - w), rng.uniform(h, height - h)])
    velocity = rng.normal(0.0, 3.0, 2)
    boxes = []
    for _ in range(frames):
        velocity = 0.9 * velocity + rng.normal(0.0, 1.0, 2)
        centre = centre + velocity
        for axis, (extent, limit) in enumerate(((w, width), (h, height))):
            if not extent / 2 <= centre[axis] <= limit - extent / 2:
                velocity[axis] = -velocity[axis]
                centre[axis] = np.clip(centre[axis], extent / 2, limit - extent / 2)
        boxes.append([centre[0] - w / 2, centre[1] - h / 2, w, h])
    return np.array(boxes)


def make_sequence(
    seed: int, frames: int = 30, height: int = 240, width: int = 320, target_size: tuple[int, int] | None = None
) -> SyntheticSequence:
    rng = np.random.default_rng(seed)
    size = target_size or (int(rng.integers(24, 48)), int(rng.integers(24, 48)))
    boxes = _trajectory(rng, frames, height, width, size)
    scene = _texture(rng, height, width, 3)
    scene_heat = _texture(rng, height, width, 1)[..., 0]
    target_colour = rng.random(3).astype(np.float32)
    rgb_frames, thermal_frames = [], []
    for x, y, w, h in boxes:
        rgb = scene.copy()
        heat = 0.4 * scene_heat
        mask = np.zeros((height, width), np.float32)
        cv2.ellipse(mask, (int(round(x + w / 2)), int(round(y + h / 2))), (int(w / 2), int(h / 2)), 0, 0, 360, 1.0, -1)
        rgb = rgb * (1 - mask[..., None]) + target_colour * mask[..., None]
        heat = heat * (1 - mask) + mask * (0.8 + 0.2 * rng.random())
        rgb = np.clip(rgb + rng.normal(0, 0.02, rgb.shape), 0, 1)
        heat = np.clip(heat + rng.normal(0, 0.01, heat.shape), 0, 1)
        rgb_frames.append((rgb * 255).astype(np.uint8))
        thermal_frames.append((20000 + heat * 10000).astype(np.uint16))
    return SyntheticSequence(rgb_frames, thermal_frames, boxes)
