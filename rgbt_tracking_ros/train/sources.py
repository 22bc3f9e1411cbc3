"""Where training frames come from: benchmark folders read lazily from disk, or synthetic
sequences rendered on first use. Every source gives RGB and thermal as (H, W, 3) uint8 on
one pixel grid, so one box crops both modalities.

Data specs on the command line: `lasher:/path/to/LasHeR/trainingset` (any reader of
data/datasets.py: gtot, rgbt210, rgbt234, lasher, vtuav, otb), `synthetic:0-199` or
`synthetic:0-199:48` (seeds, optionally frames per sequence), and `real:data/real_train`: the
sequences `rgbt-track data build` composed from real imagery (data/real.py), read from disk
like LasHeR; their out-of-view frames (0 0 0 0 rows) are never sampled.
"""
from __future__ import annotations

import logging
from collections import OrderedDict
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from ..data.datasets import READERS, Sequence, read_dataset
from ..data.synthetic import SyntheticSequence, make_sequence, seed_range
from ..tracker.preprocess import align_thermal, thermal_to_rgb8

logger = logging.getLogger(__name__)

SYNTHETIC_FRAMES = 64
# Rendered synthetic sequences kept per process (each is a few tens of MB).
SYNTHETIC_CACHE = 8


class FrameSource(Protocol):
    """One sequence as pair sampling sees it."""

    @property
    def boxes(self) -> npt.NDArray[np.float64]:
        """(N, 4) x y w h per frame; NaN or w, h <= 0 where the target is not annotated."""

    def frame(self, index: int) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
        """RGB and thermal of frame `index`, both (H, W, 3) uint8 on the RGB pixel grid."""


def _aligned(rgb: npt.NDArray[np.uint8], thermal: npt.NDArray[Any]) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
    return rgb, align_thermal(thermal_to_rgb8(thermal), rgb.shape)


_rendered: OrderedDict[tuple[int, int], SyntheticSequence] = OrderedDict()


def _render(seed: int, frames: int) -> SyntheticSequence:
    """make_sequence with a small least-recently-used cache: rendering costs far more than a sample."""
    key = (seed, frames)
    if key in _rendered:
        _rendered.move_to_end(key)
        return _rendered[key]
    sequence = _rendered[key] = make_sequence(seed, frames=frames)
    if len(_rendered) > SYNTHETIC_CACHE:
        _rendered.popitem(last=False)
    return sequence


class SyntheticSource:
    """A synthetic sequence by seed, rendered when first sampled (in the process sampling it)."""

    def __init__(self, seed: int, frames: int = SYNTHETIC_FRAMES) -> None:
        self.seed, self.frames = seed, frames

    @cached_property
    def boxes(self) -> npt.NDArray[np.float64]:
        return _render(self.seed, self.frames).boxes

    def frame(self, index: int) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
        sequence = _render(self.seed, self.frames)
        return _aligned(sequence.rgb[index], sequence.thermal[index])


class BenchmarkSource:
    """A benchmark sequence (data/datasets.py): frames read from disk only when sampled.

    The visible ground truth is used for both modalities (the benchmarks' frames are aligned);
    with a truth step (VTUAV), frames between annotated ones count as unannotated.
    """

    def __init__(self, sequence: Sequence) -> None:
        self.sequence = sequence

    @cached_property
    def boxes(self) -> npt.NDArray[np.float64]:
        truth = self.sequence.truth["visible"]
        step = self.sequence.truth_step
        boxes = np.full((len(self.sequence), 4), np.nan)
        rows = min(len(truth), -(-len(boxes) // step))
        boxes[: rows * step : step] = truth[:rows]
        return boxes

    def frame(self, index: int) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
        return _aligned(self.sequence.rgb(index), self.sequence.thermal(index))


def real_sources(folder: str) -> list[FrameSource]:
    """The sequences `rgbt-track data build` wrote into a folder (each real_<seed>/ has a meta.json)."""
    sequences = read_dataset("lasher", folder)
    built = [sequence for sequence in sequences if (Path(folder) / sequence.name / "meta.json").is_file()]
    if not built:
        raise ValueError(f"{folder}: no sequence built by `rgbt-track data build` (no real_<seed>/meta.json)")
    sources: list[FrameSource] = [BenchmarkSource(sequence) for sequence in built]
    absent = sum(int((~(np.nan_to_num(s.boxes[:, 2:]) > 0).all(axis=1)).sum()) for s in sources)
    logger.info("real:%s: %d sequences, %d out-of-view frames skipped", folder, len(sources), absent)
    return sources


def sources_from_spec(spec: str) -> list[FrameSource]:
    """The sequences of one `--data` spec (see the module docstring)."""
    kind, separator, argument = spec.partition(":")
    if not separator or not argument:
        raise ValueError(f"data spec {spec!r}: expected KIND:ARGUMENT, e.g. lasher:/data/LasHeR/trainingset")
    if kind == "synthetic":
        seeds, _, frames = argument.partition(":")
        try:
            return [SyntheticSource(seed, int(frames or SYNTHETIC_FRAMES)) for seed in seed_range(seeds)]
        except ValueError as error:
            raise ValueError(f"data spec {spec!r}: expected synthetic:FIRST-LAST[:FRAMES] ({error})") from error
    if kind == "real":
        return real_sources(argument)
    if kind not in READERS:
        raise ValueError(
            f"data spec {spec!r}: unknown kind {kind!r}; choose synthetic, real or one of {', '.join(READERS)}"
        )
    sources: list[FrameSource] = [BenchmarkSource(sequence) for sequence in read_dataset(kind, argument)]
    logger.info("%s: %d sequences", spec, len(sources))
    return sources
