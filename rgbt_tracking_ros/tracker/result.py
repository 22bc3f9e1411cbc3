"""What one tracking step tells its caller: the contract between the tracker and its users."""
from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np


class TrackState(enum.Enum):
    TRACKING = "tracking"
    LOST = "lost"


@dataclass(frozen=True)
class TrackResult:
    """One frame's answer. `box` is (x, y, w, h) in RGB pixels; while LOST it is the last
    confident estimate, not the model's guess; `reason` says why the state is what it is."""

    box: np.ndarray
    confidence: float
    state: TrackState
    frames_since_seen: int = 0
    reason: str = ""

    @property
    def lost(self) -> bool:
        return self.state is TrackState.LOST

    def __iter__(self) -> Iterator[object]:
        """Unpacks as (box, confidence, state) for callers written before the result object."""
        return iter((self.box, self.confidence, self.state))
