"""What one tracking step tells its caller: the contract between the tracker and its users."""
from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


class TrackState(enum.Enum):
    TRACKING = "tracking"
    LOST = "lost"


@dataclass(frozen=True)
class TrackResult:
    """One frame's answer. `box` is (x, y, w, h) in RGB pixels; while LOST it is the last
    confident estimate, not the model's guess (under the "official" policy it is the model's
    guess); `reason` says why the state is what it is ("" while plainly TRACKING).

    `confidence` is the local search's windowed peak score (the full-frame search's raw peak
    on a frame it re-acquired the target); `search_factor` the factor that
    search cropped with (it widens while LOST); `redetected` is True on the frame a full-frame
    search re-acquired the target.
    """

    box: npt.NDArray[np.float64]
    confidence: float
    state: TrackState
    frames_since_seen: int = 0
    reason: str = ""
    search_factor: float = float("nan")
    redetected: bool = False

    @property
    def lost(self) -> bool:
        return self.state is TrackState.LOST
