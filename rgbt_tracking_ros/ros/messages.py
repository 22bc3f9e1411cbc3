"""Output messages built from tracking outcomes.

ROS message modules are imported inside the functions: vision_msgs is optional (not
installable here, present on many robots). Which box a click or a detection array yields is
the runtime's decision (runtime/targets.py, re-exported here).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from rgbt_tracking_ros.codec import numpy_to_image
from rgbt_tracking_ros.runtime.session import Frames, Outcome, State
from rgbt_tracking_ros.runtime.targets import (
    best_detection,
    centred_box,
    detection_at,
    detection_box,
    detection_score,
)
from rgbt_tracking_ros.tracker import align_thermal, thermal_to_rgb8
from rgbt_tracking_ros.visualize import annotate

# Target choices from clicks and detections are re-exported from the runtime.
__all__ = ["Outcome", "annotated_image", "best_detection", "centred_box", "detection_array", "detection_at",
           "detection_box", "detection_score", "duration", "outcome_message", "tracked_object",
           "vision_msgs_available"]

_NS_PER_S = 1_000_000_000


def vision_msgs_available() -> bool:
    try:
        import vision_msgs.msg  # noqa: F401
    except ImportError:
        return False
    return True


def duration(ns: int) -> Any:
    from builtin_interfaces.msg import Duration

    ns = max(0, int(ns))
    return Duration(sec=ns // _NS_PER_S, nanosec=ns % _NS_PER_S)


def tracked_object(header: Any, target_id: str, state: State, box: Sequence[float] | npt.NDArray[np.float64] | None,
                   confidence: float = 0.0, age: int = 0, frames_since_seen: int = 0,
                   pair_dt_ns: int = 0, reason: str = "") -> Any:
    """A TrackedObject; the header is copied as given (the RGB image's)."""
    from rgbt_tracking_ros.msg import TrackedObject

    msg = TrackedObject()
    msg.header = header
    msg.target_id = target_id
    msg.state = int(state)
    if box is not None:
        msg.x, msg.y, msg.width, msg.height = (float(v) for v in box)
    msg.confidence = float(confidence)
    msg.age = int(age)
    msg.frames_since_seen = int(frames_since_seen)
    msg.pair_dt = duration(pair_dt_ns)
    msg.reason = reason
    return msg


def _frames(outcome: Outcome) -> Frames:
    """The image pair an outcome was computed on; an event between images has none."""
    if outcome.frames is None:
        raise ValueError(f"a {outcome.state.name} outcome without an image pair ({outcome.reason!r}) has no image "
                         "header: publish it with tracked_object and a header of its own")
    return outcome.frames


def outcome_message(outcome: Outcome) -> Any:
    frames = _frames(outcome)
    return tracked_object(frames.header, outcome.target_id, outcome.state, outcome.box,
                          outcome.confidence, outcome.age, outcome.frames_since_seen,
                          frames.pair_dt_ns, outcome.reason)


def detection_array(outcome: Outcome) -> Any:
    """vision_msgs/Detection2DArray with the tracked box (empty unless NEW or TRACKING)."""
    from vision_msgs.msg import Detection2D, Detection2DArray, ObjectHypothesisWithPose

    header = _frames(outcome).header
    array = Detection2DArray()
    array.header = header
    if outcome.state in (State.STOPPED, State.ERROR, State.LOST) or outcome.box is None:
        return array
    x, y, w, h = (float(v) for v in outcome.box)
    detection = Detection2D()
    detection.header = header
    detection.id = outcome.target_id
    detection.bbox.center.position.x = x + w / 2
    detection.bbox.center.position.y = y + h / 2
    detection.bbox.size_x, detection.bbox.size_y = w, h
    hypothesis = ObjectHypothesisWithPose()
    hypothesis.hypothesis.class_id = outcome.target_id
    hypothesis.hypothesis.score = outcome.confidence
    detection.results.append(hypothesis)
    array.detections.append(detection)
    return array


def annotated_image(outcome: Outcome, thermal_mode: str,
                    thermal_range: tuple[float, float] | None,
                    homography: npt.NDArray[np.float64] | None) -> Any:
    """sensor_msgs/Image (rgb8): the RGB frame with box, state and confidence, and the thermal
    frame colour-mapped in a corner (mono16 would look black in RViz)."""
    frames = _frames(outcome)
    thermal = align_thermal(thermal_to_rgb8(frames.thermal, thermal_mode, thermal_range),
                            frames.rgb.shape, homography)
    label = f"{outcome.target_id} {outcome.state.name} {outcome.confidence:.2f}"
    box = None if outcome.state is State.STOPPED else outcome.box
    bgr = annotate(frames.rgb, thermal, box, label,
                   lost=outcome.state in (State.LOST, State.ERROR))
    return numpy_to_image(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), "rgb8", header=frames.header)
