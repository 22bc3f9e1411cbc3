"""Training samples: template crops from earlier frames and a jittered search crop, made with
the tracker's own crop and normalisation so training sees what inference sees."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..tracker.geometry import crop_square
from ..tracker.preprocess import align_thermal, thermal_to_rgb8, to_tensor
from .synthetic import SyntheticSequence

TEMPLATE_FACTOR, TEMPLATE_SIZE = 2.0, 128
SEARCH_FACTOR, SEARCH_SIZE = 4.0, 256


@dataclass
class Jitter:
    """Search-region jitter of the published recipe: centre 3, scale 0.25."""

    center: float = 3.0
    scale: float = 0.25


def jitter_box(box: np.ndarray, rng: np.random.Generator, jitter: Jitter) -> np.ndarray:
    size = box[2:] * np.exp(rng.normal(size=2) * jitter.scale)
    max_offset = np.sqrt(size.prod()) * jitter.center
    centre = box[:2] + 0.5 * box[2:] + max_offset * (rng.random(2) - 0.5)
    return np.concatenate([centre - 0.5 * size, size])


def box_in_crop(box: np.ndarray, crop_centre_box: np.ndarray, resize_factor: float, crop_size: int) -> np.ndarray:
    """Normalised (cx, cy, w, h) of an image box inside a crop centred on another box."""
    offset = (box[:2] + 0.5 * box[2:]) - (crop_centre_box[:2] + 0.5 * crop_centre_box[2:])
    centre = (crop_size - 1) / 2 + offset * resize_factor
    return np.concatenate([centre, box[2:] * resize_factor]) / crop_size


def _modalities(sequence: SyntheticSequence, index: int) -> tuple[np.ndarray, np.ndarray]:
    rgb = sequence.rgb[index]
    return rgb, align_thermal(thermal_to_rgb8(sequence.thermal[index]), rgb.shape)


def sample_pair(
    sequence: SyntheticSequence,
    rng: np.random.Generator,
    num_templates: int = 1,
    max_gap: int = 20,
    jitter: Jitter | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Templates (T, 128, 128, 3) x2 from frames before the search frame, oldest first, the
    search crops (256, 256, 3) x2 and the target box normalised to the search crop."""
    frames = len(sequence.boxes)
    search_index = int(rng.integers(1, frames)) if frames > 1 else 0
    low = max(0, search_index - max_gap)
    template_indices = np.sort(rng.integers(low, max(search_index, low + 1), size=num_templates))
    templates_rgb, templates_x = [], []
    for index in template_indices:
        rgb, thermal = _modalities(sequence, int(index))
        box = sequence.boxes[index]
        templates_rgb.append(crop_square(rgb, box, TEMPLATE_FACTOR, TEMPLATE_SIZE)[0])
        templates_x.append(crop_square(thermal, box, TEMPLATE_FACTOR, TEMPLATE_SIZE)[0])
    rgb, thermal = _modalities(sequence, search_index)
    target = sequence.boxes[search_index]
    centre_box = jitter_box(target, rng, jitter or Jitter())
    search_rgb, factor = crop_square(rgb, centre_box, SEARCH_FACTOR, SEARCH_SIZE)
    search_x, _ = crop_square(thermal, centre_box, SEARCH_FACTOR, SEARCH_SIZE)
    return (
        np.stack(templates_rgb),
        np.stack(templates_x),
        search_rgb,
        search_x,
        box_in_crop(target, centre_box, factor, SEARCH_SIZE),
    )


def make_batch(
    sequences: list[SyntheticSequence], rng: np.random.Generator, batch_size: int, num_templates: int = 1
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A batch in the models' input layout; single-template models get (B, 3, H, W) templates."""
    samples = [sample_pair(sequences[int(rng.integers(len(sequences)))], rng, num_templates) for _ in range(batch_size)]
    z_rgb, z_x, x_rgb, x_x, boxes = (np.stack(parts) for parts in zip(*samples))

    def templates(patches: np.ndarray) -> torch.Tensor:
        tensor = to_tensor(patches.reshape(-1, *patches.shape[2:]))
        tensor = tensor.reshape(batch_size, num_templates, *tensor.shape[1:])
        return tensor[:, 0] if num_templates == 1 else tensor

    return templates(z_rgb), templates(z_x), to_tensor(x_rgb), to_tensor(x_x), torch.from_numpy(boxes).float()
