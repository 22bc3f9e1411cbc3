"""Which image pair a target request names, whether its box can be tracked there, and which
box a click or a detection array yields.

A request (set_target, a click, a detection) carries a stamp. It is applied to the held image
pair with that RGB stamp (within slop, at least 1 ms), or to the newest pair when the stamp is
zero. A stamp older than the oldest held pair or newer than the newest one is refused with the
reason: initialising on a different frame would put the box on whatever is there now.
"""
from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from rgbt_tracking_ros.eval.boxes import valid_box
from rgbt_tracking_ros.runtime.session import Frames

if TYPE_CHECKING:  # the tracker package imports torch; only its box type is needed here
    from rgbt_tracking_ros.tracker.geometry import BoxLike

HISTORY_PAIRS = 30  # recent pairs kept so a set_target/click/detection stamp finds its frame
_NS = 1_000_000_000


class FrameHistory:
    """The most recent image pairs, in arrival order; thread-safe."""

    def __init__(self, size: int = HISTORY_PAIRS) -> None:
        self._frames: deque[Frames] = deque(maxlen=size)
        self._lock = threading.Lock()

    def append(self, frames: Frames) -> None:
        with self._lock:
            self._frames.append(frames)

    def clear(self) -> None:
        with self._lock:
            self._frames.clear()

    def latest(self) -> Frames | None:
        with self._lock:
            return self._frames[-1] if self._frames else None

    def snapshot(self) -> list[Frames]:
        with self._lock:
            return list(self._frames)


def _seconds(ns: int) -> str:
    return f"{ns / _NS:.3f} s"


def find_frames(history: Sequence[Frames], stamp_ns: int,
                tolerance_s: float) -> tuple[Frames | None, str]:
    """The held pair a stamp names, or None and why not (too old, in the future, not held)."""
    if not history:
        return None, "no image pair received yet"
    tolerance = max(tolerance_s, 1e-3) * _NS
    best = min(history, key=lambda f: abs(f.rgb_stamp_ns - stamp_ns))
    if abs(best.rgb_stamp_ns - stamp_ns) <= tolerance:
        return best, ""
    oldest = min(f.rgb_stamp_ns for f in history)
    newest = max(f.rgb_stamp_ns for f in history)
    if stamp_ns < oldest:
        return None, (f"stamp {_seconds(stamp_ns)} is {_seconds(oldest - stamp_ns)} older than "
                      f"the oldest held image pair ({len(history)} pairs are held): too old")
    if stamp_ns > newest:
        return None, (f"stamp {_seconds(stamp_ns)} is {_seconds(stamp_ns - newest)} after the "
                      "newest image pair: in the future (check the caller's clock)")
    return None, (f"no held image pair has RGB stamp {_seconds(stamp_ns)} (closest "
                  f"{_seconds(abs(best.rgb_stamp_ns - stamp_ns))} away, slop "
                  f"{tolerance / _NS:g} s)")


def check_box(box: BoxLike, height: int, width: int,
              min_size: float) -> tuple[tuple[float, float, float, float] | None, str]:
    """The box as floats, or None and why it cannot be tracked in a height x width image."""
    values = tuple(float(v) for v in box)
    if len(values) != 4:
        return None, f"a box needs 4 values (x, y, width, height), got {len(values)}"
    if not all(math.isfinite(v) for v in values):
        return None, f"box {list(values)} contains NaN or infinity"
    x, y, w, h = values
    if not (w > 0 and h > 0):
        return None, f"box {list(values)} needs a positive width and height"
    if w < min_size or h < min_size:
        return None, (f"box {list(values)} is too small to track: width and height must be at "
                      f"least min_size {min_size:g} px")
    if w > width or h > height:
        return None, (f"box {list(values)} is larger than the {width}x{height} image")
    if x >= width or y >= height or x + w <= 0 or y + h <= 0:
        return None, f"box {list(values)} does not overlap the {width}x{height} image"
    return (x, y, w, h), ""


# Click or detection: which box a target input yields. The detection readers work on any
# objects with vision_msgs' fields (Humble+ and older layouts), so they need no ROS.


def detection_box(detection: Any) -> npt.NDArray[np.float64]:
    """(x, y, w, h) of a vision_msgs Detection2D (Humble+ Pose2D centre, or the older x/y)."""
    bbox = detection.bbox
    centre = getattr(bbox.center, "position", bbox.center)
    w, h = float(bbox.size_x), float(bbox.size_y)
    return np.array([float(centre.x) - w / 2, float(centre.y) - h / 2, w, h])


def _class_and_score(result: Any) -> tuple[str, float]:
    hypothesis = getattr(result, "hypothesis", result)  # Humble+ nests it; older: flat id
    class_id = getattr(hypothesis, "class_id", getattr(hypothesis, "id", ""))
    return str(class_id), float(hypothesis.score)


def detection_score(detection: Any, class_id: str = "") -> float | None:
    """Best score among the detection's results of class_id (any class when empty)."""
    scores = [score for name, score in map(_class_and_score, detection.results)
              if not class_id or name == class_id]
    return max(scores, default=None)


def best_detection(array: Any, min_score: float,
                   class_id: str = "") -> tuple[npt.NDArray[np.float64], float] | None:
    """Box and score of the highest-scoring detection with score >= min_score, else None."""
    best: tuple[npt.NDArray[np.float64], float] | None = None
    for detection in array.detections:
        score = detection_score(detection, class_id)
        if score is None or not np.isfinite(score) or score < min_score:
            continue
        box = detection_box(detection)
        if not valid_box(box):
            continue
        if best is None or score > best[1]:
            best = (box, score)
    return best


def detection_at(array: Any, x: float, y: float, class_id: str = "") -> npt.NDArray[np.float64] | None:
    """The smallest detection box containing the point (x, y), else None."""
    hits = []
    for detection in array.detections:
        if class_id and detection_score(detection, class_id) is None:
            continue
        box = detection_box(detection)
        if box[0] <= x <= box[0] + box[2] and box[1] <= y <= box[1] + box[3]:
            hits.append(box)
    return min(hits, key=lambda b: b[2] * b[3], default=None)


def centred_box(x: float, y: float, size: Sequence[float]) -> tuple[float, float, float, float]:
    w, h = float(size[0]), float(size[1])
    return (float(x) - w / 2, float(y) - h / 2, w, h)


def click_box(x: float, y: float, size: Sequence[float], detections: Any = None,
              class_id: str = "") -> tuple[tuple[float, ...], str]:
    """The box a click sets: the smallest detection containing it, else a box of `size`
    centred on it; with the source text."""
    if detections is not None:
        box = detection_at(detections, x, y, class_id)
        if box is not None:
            return tuple(float(v) for v in box), "click on a detection"
    return centred_box(x, y, size), "click"
