"""Training pairs as a torch Dataset: sample k of an epoch is a pure function of
(seed, epoch, k), whatever the number of loader workers or processes.

Process `rank` of `world_size` takes the global samples rank, rank + world_size, ... so every
process sees its own stream, and together they see the same samples as one process would.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from torch.utils.data import Dataset

from ..models.protocol import Geometry
from .augment import Augment, Pair
from .pairs import Jitter, draw_pair
from .sources import FrameSource


class PairDataset(Dataset[Pair]):
    def __init__(
        self,
        sources: Sequence[FrameSource],
        length: int,
        geometry: Geometry,
        max_gap: int,
        jitter: Jitter,
        augment: Augment | None,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if not sources:
            raise ValueError("no training sequences")
        self.sources = list(sources)
        self.length = length
        self.geometry, self.max_gap, self.jitter, self.augment = geometry, max_gap, jitter, augment
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Call before making the epoch's DataLoader (its workers copy the dataset)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> Pair:
        sample = index * self.world_size + self.rank
        rng = np.random.default_rng([self.seed, self.epoch, sample])
        return draw_pair(self.sources, rng, self.geometry, self.max_gap, self.jitter, self.augment)
