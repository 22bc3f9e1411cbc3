"""What the tracker believes about its target between frames, and when it stops believing it.

Pure numpy, no model: `RGBTTracker.track()` decodes the model's best peak into a box and a
confidence and hands them to a `TargetState`, which decides what the target state becomes.

Two policies:

* ``"official"``: the plain OSTrack-style protocol of AINet and DMTrack as their papers run
  it. Every prediction becomes the next state, however low its confidence; the search factor
  never changes; the template memory takes every frame. Only the state label (LOST below
  ``lost_threshold``) is added. Benchmark runs use this to reproduce the papers.
* ``"robust"`` (default): a prediction below ``lost_threshold`` does not move the target. The
  last confident box is kept and reported, the state is LOST, the search crop widens by
  ``search_growth`` per lost frame up to ``max_search_factor`` (the crop keeps its pixel size,
  so the cost per frame does not change), and templates are only taken from confident frames.
  Every ``redetect_interval`` lost frames the tracker searches the whole frame (see
  `tile_boxes`); its best raw peak re-acquires the target if it reaches
  ``redetect_threshold``. A local peak re-acquires it at once if its confidence reaches
  ``reacquire_threshold`` (at least ``lost_threshold``: a LOST target needs a clearer peak to
  come back than a tracked one needs to stay, so background that scrapes past
  ``lost_threshold`` in the widened search is not taken for it). While tracking, the
  box size moves towards the prediction by ``size_smoothing`` (exponential smoothing in log
  space) after the change of scale sqrt(w h) and of aspect w / h is clamped to
  ``max_scale_step`` / ``max_aspect_step`` (natural-log units per frame; 0.156 is the 99th
  percentile of |log scale change| per frame on LasHeR).

Cost of the full-frame search: one local-search model call per `tile_boxes(...)` crop, at most
``redetect_max_tiles`` of them; docs/tracking-state.md has the measured figures.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from rgbt_tracking_ros.defaults import TRACKER_POLICIES as POLICIES
from rgbt_tracking_ros.tracker.geometry import clip_box
from rgbt_tracking_ros.tracker.result import TrackState


@dataclass(frozen=True)
class StatePolicy:
    """The numbers a `TargetState` decides with (the tracker fills them from TrackerConfig)."""

    policy: str
    lost_threshold: float
    redetect_threshold: float
    reacquire_threshold: float
    search_factor: float
    search_growth: float
    max_search_factor: float
    redetect_interval: int
    max_scale_step: float
    max_aspect_step: float
    size_smoothing: float
    clip_margin: float

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ValueError(f"policy must be one of {POLICIES}, got {self.policy!r}")
        for name in ("lost_threshold", "redetect_threshold", "reacquire_threshold"):
            if not np.isfinite(getattr(self, name)):
                raise ValueError(f"{name} must be finite, got {getattr(self, name)}")
        if not self.search_growth >= 1.0:
            raise ValueError(f"search_growth must be >= 1, got {self.search_growth}")
        if not self.max_search_factor >= self.search_factor:
            raise ValueError(
                f"max_search_factor ({self.max_search_factor}) must be >= search_factor ({self.search_factor})"
            )
        if self.redetect_interval < 0:
            raise ValueError(f"redetect_interval must be >= 0 (0: never), got {self.redetect_interval}")
        if not (self.max_scale_step > 0 and self.max_aspect_step > 0):
            raise ValueError("max_scale_step and max_aspect_step must be positive")
        if not 0.0 < self.size_smoothing <= 1.0:
            raise ValueError(f"size_smoothing must be in (0, 1], got {self.size_smoothing}")


@dataclass(frozen=True)
class Decision:
    """The outcome of one frame: what `track()` reports and whether to keep a template."""

    box: npt.NDArray[np.float64]
    state: TrackState
    frames_since_seen: int
    reason: str
    take_template: bool
    redetected: bool = False


def bounded_size(previous: npt.NDArray[np.float64], predicted: npt.NDArray[np.float64], max_scale_step: float,
                 max_aspect_step: float, smoothing: float) -> tuple[float, float]:
    """(w, h) moved from `previous` towards `predicted` with bounded, smoothed log changes."""
    pw, ph = float(previous[2]), float(previous[3])
    w, h = float(predicted[2]), float(predicted[3])
    scale_step = 0.5 * math.log((w * h) / (pw * ph))
    aspect_step = math.log((w / h) / (pw / ph))
    scale_step = smoothing * float(np.clip(scale_step, -max_scale_step, max_scale_step))
    aspect_step = smoothing * float(np.clip(aspect_step, -max_aspect_step, max_aspect_step))
    scale = math.sqrt(pw * ph) * math.exp(scale_step)
    aspect = (pw / ph) * math.exp(aspect_step)
    return scale * math.sqrt(aspect), scale / math.sqrt(aspect)


def tile_boxes(
    height: int, width: int, box: npt.NDArray[np.float64], factor: float, max_tiles: int
) -> list[npt.NDArray[np.float64]]:
    """Target-sized boxes whose search crops (side factor * sqrt(w h)) tile the whole frame.

    Crop centres run from a quarter crop inside one border to a quarter crop inside the other,
    at most half a crop apart, so every pixel lies in the central half of some crop (where the
    model was trained to find its target); crops at the border reach past it (zero padding, as
    in tracking). When that would need more than `max_tiles` crops (a small target in a large
    frame), the crops grow by 10% steps until it does not: the target then appears smaller
    than at training time, the price of a bounded cost.
    """
    size = math.sqrt(float(box[2]) * float(box[3]))
    side = max(size * factor, 1.0)

    def count(extent: float) -> int:
        span = extent - side / 2.0
        return 1 if span <= 0 else math.ceil(span / (side / 2.0)) + 1

    while count(width) * count(height) > max(1, max_tiles):
        side *= 1.1
    cols, rows = count(width), count(height)
    scale = side / max(size * factor, 1.0)  # > 1 when the crops had to grow
    w, h = float(box[2]) * scale, float(box[3]) * scale
    xs = np.linspace(side / 4.0, width - side / 4.0, cols) if cols > 1 else np.array([width / 2.0])
    ys = np.linspace(side / 4.0, height - side / 4.0, rows) if rows > 1 else np.array([height / 2.0])
    return [np.array([x - w / 2.0, y - h / 2.0, w, h]) for y in ys for x in xs]


class TargetState:
    """The target's state from `initialize` on; `update` once per frame with the model's peak."""

    def __init__(self, policy: StatePolicy, box: npt.NDArray[np.float64]):
        self.policy = policy
        self.box = np.asarray(box, dtype=np.float64).copy()
        self.frames_since_seen = 0

    @property
    def robust(self) -> bool:
        return self.policy.policy == "robust"

    @property
    def search_factor(self) -> float:
        """The search factor for the next frame: widened while LOST (robust policy only)."""
        p = self.policy
        if not self.robust:
            return p.search_factor
        return min(p.search_factor * p.search_growth ** self.frames_since_seen, p.max_search_factor)

    @property
    def full_search_due(self) -> bool:
        """True on every `redetect_interval`-th consecutive lost frame (robust policy only)."""
        n = self.policy.redetect_interval
        return self.robust and n > 0 and self.frames_since_seen > 0 and self.frames_since_seen % n == 0

    def update(self, predicted: npt.NDArray[np.float64], confidence: float, height: int, width: int) -> Decision:
        """The local search's peak (box in image pixels, windowed score) for this frame."""
        p = self.policy
        lost = not confidence >= p.lost_threshold  # NaN counts as lost
        if not self.robust:
            self.box = clip_box(predicted, height, width, p.clip_margin)
            self.frames_since_seen = self.frames_since_seen + 1 if lost else 0
            reason = f"confidence {confidence:.3f} below lost_threshold {p.lost_threshold:g}" if lost else ""
            state = TrackState.LOST if lost else TrackState.TRACKING
            return Decision(self.box.copy(), state, self.frames_since_seen, reason, take_template=True)
        if lost:
            return self._lose(f"confidence {confidence:.3f} below lost_threshold {p.lost_threshold:g}")
        reacquire = max(p.reacquire_threshold, p.lost_threshold)
        if self.frames_since_seen and not confidence >= reacquire:
            return self._lose(f"confidence {confidence:.3f} below reacquire_threshold {reacquire:g}")
        was_lost = self.frames_since_seen
        self._accept(predicted, height, width)
        reason = f"re-acquired after {was_lost} lost frame(s), confidence {confidence:.3f}" if was_lost else ""
        return Decision(self.box.copy(), TrackState.TRACKING, 0, reason, take_template=True)

    def redetect(self, found: npt.NDArray[np.float64] | None, score: float, tiles: int, height: int,
                 width: int) -> Decision:
        """The full-frame search's best peak (raw score) after `update` left the target LOST."""
        p = self.policy
        if found is None or not score >= p.redetect_threshold:
            return Decision(self.box.copy(), TrackState.LOST, self.frames_since_seen,
                            f"not found: full-frame search over {tiles} crops peaked at {score:.3f}, "
                            f"below redetect_threshold {p.redetect_threshold:g}", take_template=False)
        was_lost = self.frames_since_seen
        self._accept(found, height, width)
        return Decision(self.box.copy(), TrackState.TRACKING, 0,
                        f"re-acquired by full-frame search over {tiles} crops after {was_lost} lost "
                        f"frame(s), peak {score:.3f}", take_template=True, redetected=True)

    def _lose(self, reason: str) -> Decision:
        self.frames_since_seen += 1
        return Decision(self.box.copy(), TrackState.LOST, self.frames_since_seen, reason, take_template=False)

    def _accept(self, predicted: npt.NDArray[np.float64], height: int, width: int) -> None:
        p = self.policy
        predicted = clip_box(predicted, height, width, p.clip_margin)
        w, h = bounded_size(self.box, predicted, p.max_scale_step, p.max_aspect_step, p.size_smoothing)
        cx, cy = predicted[0] + 0.5 * predicted[2], predicted[1] + 0.5 * predicted[3]
        self.box = clip_box(np.array([cx - 0.5 * w, cy - 0.5 * h, w, h]), height, width, p.clip_margin)
        self.frames_since_seen = 0
