"""Training samples: template crops from earlier frames and a jittered search crop, made with
the tracker's own crop and normalisation so training sees what inference sees. Crop sizes,
factors and the template count are the model's (`models.protocol.Geometry`, from its config)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch

from ..models.protocol import Geometry
from ..tracker.geometry import crop_square
from ..tracker.preprocess import to_tensor
from .augment import Augment, Pair, augment_pair
from .sources import FrameSource


@dataclass
class Jitter:
    """Search-region jitter of the published recipe: centre 3, scale 0.25."""

    center: float = 3.0
    scale: float = 0.25


def jitter_box(box: npt.NDArray[np.float64], rng: np.random.Generator, jitter: Jitter) -> npt.NDArray[np.float64]:
    size = box[2:] * np.exp(rng.normal(size=2) * jitter.scale)
    max_offset = np.sqrt(size.prod()) * jitter.center
    centre = box[:2] + 0.5 * box[2:] + max_offset * (rng.random(2) - 0.5)
    return np.concatenate([centre - 0.5 * size, size])


def box_in_crop(
    box: npt.NDArray[np.float64], crop_centre_box: npt.NDArray[np.float64], resize_factor: float, crop_size: int
) -> npt.NDArray[np.float64]:
    """Normalised (cx, cy, w, h) of an image box inside a crop centred on another box."""
    offset = (box[:2] + 0.5 * box[2:]) - (crop_centre_box[:2] + 0.5 * crop_centre_box[2:])
    centre = (crop_size - 1) / 2 + offset * resize_factor
    return np.concatenate([centre, box[2:] * resize_factor]) / crop_size


def usable_frames(boxes: npt.NDArray[np.float64]) -> npt.NDArray[np.intp]:
    """Indices of frames whose ground truth is a real box (finite, w and h > 0)."""
    finite: npt.NDArray[np.bool_] = np.all(np.isfinite(boxes), axis=1)
    sizes = np.where(finite[:, None], boxes[:, 2:], 0.0)
    return np.flatnonzero(finite & (sizes > 0).all(axis=1))


def choose_frames(
    boxes: npt.NDArray[np.float64], rng: np.random.Generator, num_templates: int, max_gap: int
) -> tuple[npt.NDArray[np.intp], int] | None:
    """Template frames (sorted, oldest first) from the usable frames at most `max_gap` before
    the search frame; None when the sequence has no usable frame. A sequence whose usable
    frames are all isolated gives template and search from one frame, as image data sets do."""
    valid = usable_frames(boxes)
    if len(valid) == 0:
        return None
    searches = valid[1:][np.diff(valid) <= max_gap]
    if len(searches) == 0:
        search = int(valid[rng.integers(len(valid))])
        return np.full(num_templates, search), search
    search = int(searches[rng.integers(len(searches))])
    pool = valid[np.searchsorted(valid, search - max_gap) : np.searchsorted(valid, search)]
    return np.sort(pool[rng.integers(len(pool), size=num_templates)]), search


def sample_pair(
    source: FrameSource,
    rng: np.random.Generator,
    geometry: Geometry,
    max_gap: int = 20,
    jitter: Jitter | None = None,
    augment: Augment | None = None,
) -> Pair | None:
    """`geometry.num_templates` template crops from frames before the search frame and a
    jittered search crop, at the model's sizes and factors, then the augmentation if one is
    given; None when the source has no usable frame."""
    chosen = choose_frames(source.boxes, rng, geometry.num_templates, max_gap)
    if chosen is None:
        return None
    template_indices, search_index = chosen
    frames = {index: source.frame(index) for index in {*template_indices.tolist(), search_index}}
    templates_rgb, templates_x = [], []
    for index in template_indices.tolist():
        rgb, thermal = frames[index]
        box = source.boxes[index]
        templates_rgb.append(crop_square(rgb, box, geometry.template_factor, geometry.template_size)[0])
        templates_x.append(crop_square(thermal, box, geometry.template_factor, geometry.template_size)[0])
    rgb, thermal = frames[search_index]
    target = source.boxes[search_index]
    centre_box = jitter_box(target, rng, jitter or Jitter())
    search_rgb, factor = crop_square(rgb, centre_box, geometry.search_factor, geometry.search_size)
    search_x, _ = crop_square(thermal, centre_box, geometry.search_factor, geometry.search_size)
    pair = Pair(
        np.stack(templates_rgb),
        np.stack(templates_x),
        search_rgb,
        search_x,
        box_in_crop(target, centre_box, factor, geometry.search_size),
    )
    return pair if augment is None else augment_pair(pair, rng, augment)


MAX_DRAWS = 100


def draw_pair(
    sources: Sequence[FrameSource],
    rng: np.random.Generator,
    geometry: Geometry,
    max_gap: int = 20,
    jitter: Jitter | None = None,
    augment: Augment | None = None,
) -> Pair:
    """A pair from a uniformly drawn source (sample_pair's options), drawing again past sources
    without usable frames."""
    for _ in range(MAX_DRAWS):
        pair = sample_pair(sources[int(rng.integers(len(sources)))], rng, geometry, max_gap, jitter, augment)
        if pair is not None:
            return pair
    raise ValueError(f"no usable ground truth in {MAX_DRAWS} sequences drawn: check the data")


def stack_pairs(pairs: Sequence[Pair]) -> Pair:
    """Batch of pairs as one Pair of stacked arrays (a DataLoader collate function)."""
    return Pair(*(np.stack(parts) for parts in zip(*pairs)))


def to_model_inputs(
    batch: Pair, num_templates: int, device: torch.device | str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Stacked uint8 crops -> normalised tensors on the device, in the models' input layout;
    single-template models get (B, 3, H, W) templates."""
    batch_size = len(batch.box)

    def templates(patches: npt.NDArray[np.uint8]) -> torch.Tensor:
        tensor = to_tensor(patches.reshape(-1, *patches.shape[2:]), device)
        tensor = tensor.reshape(batch_size, num_templates, *tensor.shape[1:])
        return tensor[:, 0] if num_templates == 1 else tensor

    return (
        templates(batch.templates_rgb),
        templates(batch.templates_x),
        to_tensor(batch.search_rgb, device),
        to_tensor(batch.search_x, device),
        torch.from_numpy(batch.box).float().to(device),
    )

