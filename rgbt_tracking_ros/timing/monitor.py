"""The node's camera offset check, without ROS: feed it frames, ask it on a timer.

Modes (parameter ``time_offset_estimation``): ``off``; ``report``: estimate the offset between
the cameras' stamps from the images, publish it in /diagnostics and warn when the stamps of
the same moment, after the configured offsets, differ by more than half the slop; ``apply``:
also set the pairer's thermal_offset to the estimate (and again whenever a later reliable
estimate differs by more than max(2 ms, slop / 4)).

Frames are reduced to a small grey image when fed (well under a millisecond); the estimate
runs at most every ``every`` seconds of stamps, on the caller's timer thread, outside the lock
the image callbacks take.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy.typing as npt

from .offset import OffsetConfig, OffsetEstimate, OffsetEstimator

MODES = ("off", "report", "apply")
_NS_PER_S = 1_000_000_000
# Diagnostics keys, in the order published.
KEYS = ("time_offset_ms", "time_offset_residual_ms", "time_offset_correlation", "time_offset_applied")


@dataclass(frozen=True)
class Correction:
    """Offsets (s) the pairer should use now, and why."""

    rgb_offset: float
    thermal_offset: float
    estimate: OffsetEstimate


class OffsetMonitor:
    """Thread-safe: ``add`` from image callbacks, ``update``/``values``/``warning`` from a timer."""

    def __init__(self, mode: str, slop: float, rgb_offset: float = 0.0, thermal_offset: float = 0.0,
                 config: OffsetConfig | None = None, every: float = 5.0) -> None:
        if mode not in MODES:
            raise ValueError(f"time offset mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.mode, self.slop = mode, slop
        self.rgb_offset, self.thermal_offset = rgb_offset, thermal_offset
        self._estimator = OffsetEstimator(config)
        self._every_ns = round(every * _NS_PER_S)
        self._lock = threading.Lock()
        self._newest = 0
        self._last_run: int | None = None
        self.estimate: OffsetEstimate | None = None
        self.applied = False

    @property
    def enabled(self) -> bool:
        return self.mode != "off"

    @property
    def collecting(self) -> bool:
        """Frames still wanted from a path where they cost a conversion (message_filters): until
        a reliable estimate, which then stays reported."""
        return self.enabled and (self.estimate is None or not self.estimate.reliable)

    def add(self, camera: str, stamp: int, image: npt.NDArray[Any]) -> None:
        """A camera's frame with its stamp as sent (before any offset)."""
        if not self.enabled:
            return
        with self._lock:
            if camera == "rgb":
                self._estimator.add_rgb(stamp, image)
            else:
                self._estimator.add_thermal(stamp, image)
            self._newest = max(self._newest, stamp)

    def set_offsets(self, rgb_offset: float, thermal_offset: float) -> None:
        """Offsets set by hand (a parameter change): the residual is measured against them; in
        apply mode a later reliable estimate that disagrees corrects them again."""
        self.rgb_offset, self.thermal_offset = rgb_offset, thermal_offset
        self.applied = False

    def residual(self) -> float | None:
        """Seconds between the stamps of the same moment after the offsets in use (thermal later
        > 0), or None before an estimate."""
        estimate = self.estimate
        return None if estimate is None else self._residual(estimate)

    def _residual(self, estimate: OffsetEstimate) -> float:
        return estimate.offset - (self.rgb_offset - self.thermal_offset)

    def update(self) -> Correction | None:
        """Estimate again when due; in apply mode, the offsets to use when they should change."""
        if not self.enabled:
            return None
        with self._lock:
            due = self._last_run is None or self._newest - self._last_run >= self._every_ns
            if not due:
                return None
            snapshot = self._estimator.snapshot()
            newest = self._newest
        estimate = snapshot.estimate()  # outside the lock: frames keep arriving meanwhile
        if estimate is None:
            return None
        self._last_run = newest
        self.estimate = estimate
        if self.mode != "apply" or not estimate.reliable or abs(self._residual(estimate)) <= max(0.002, self.slop / 4):
            return None
        self.thermal_offset = estimate.thermal_offset(self.rgb_offset)
        self.applied = True
        return Correction(self.rgb_offset, self.thermal_offset, estimate)

    def values(self) -> list[tuple[str, str]]:
        """Diagnostics key-values (empty strings before an estimate)."""
        estimate, residual = self.estimate, self.residual()
        values = {
            "time_offset_ms": "" if estimate is None else f"{estimate.offset_ms:.1f}",
            "time_offset_residual_ms": "" if residual is None else f"{1e3 * residual:.1f}",
            "time_offset_correlation": "" if estimate is None else f"{estimate.correlation:.2f}",
            "time_offset_applied": ("off" if not self.enabled else
                                    f"{self.thermal_offset:.4f}" if self.applied else "no"),
        }
        return [(key, values[key]) for key in KEYS]

    def warning(self, rgb_name: str = "rgb", thermal_name: str = "thermal") -> str | None:
        """A warning when the reliable estimate says the stamps of the same moment differ by more
        than half the slop after the offsets in use."""
        estimate = self.estimate
        if estimate is None or not estimate.reliable:
            return None
        residual = self._residual(estimate)
        if abs(residual) <= self.slop / 2:
            return None
        side = "later" if residual > 0 else "earlier"
        return (f"the images say {thermal_name} stamps are {1e3 * abs(residual):.0f} ms {side} than "
                f"{rgb_name} stamps of the same moment (more than half the slop, {1e3 * self.slop:g} ms): "
                f"pairs may use the wrong frame; set thermal_offset to {estimate.thermal_offset(self.rgb_offset):.4f} "
                "or time_offset_estimation to apply")
