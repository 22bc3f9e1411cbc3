"""Output messages built from tracking outcomes, and boxes read from vision_msgs detections.

ROS message modules are imported inside the functions: vision_msgs is optional (not
installable here, present on many robots), and the detection readers work on any objects
with the vision_msgs fields, which keeps them testable without it.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from rgbt_tracking_ros.ros.conversions import numpy_to_image
from rgbt_tracking_ros.runtime.session import Outcome, State
from rgbt_tracking_ros.tracker import align_thermal, thermal_to_rgb8
from rgbt_tracking_ros.visualize import annotate

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


def tracked_object(header: Any, target_id: str, state: State, box: Sequence[float] | None,
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


def outcome_message(outcome: Outcome) -> Any:
    return tracked_object(outcome.frames.header, outcome.target_id, outcome.state, outcome.box,
                          outcome.confidence, outcome.age, outcome.frames_since_seen,
                          outcome.frames.pair_dt_ns, outcome.reason)


def detection_array(outcome: Outcome) -> Any:
    """vision_msgs/Detection2DArray with the tracked box (empty unless NEW or TRACKING)."""
    from vision_msgs.msg import Detection2D, Detection2DArray, ObjectHypothesisWithPose

    array = Detection2DArray()
    array.header = outcome.frames.header
    if outcome.state in (State.STOPPED, State.ERROR, State.LOST) or outcome.box is None:
        return array
    x, y, w, h = (float(v) for v in outcome.box)
    detection = Detection2D()
    detection.header = outcome.frames.header
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
                    homography: np.ndarray | None) -> Any:
    """sensor_msgs/Image (rgb8): the RGB frame with box, state and confidence, and the thermal
    frame colour-mapped in a corner (mono16 would look black in RViz)."""
    frames = outcome.frames
    thermal = align_thermal(thermal_to_rgb8(frames.thermal, thermal_mode, thermal_range),
                            frames.rgb.shape, homography)
    label = f"{outcome.target_id} {outcome.state.name} {outcome.confidence:.2f}"
    box = None if outcome.state is State.STOPPED else outcome.box
    bgr = annotate(frames.rgb, thermal, box, label,
                   lost=outcome.state in (State.LOST, State.ERROR))
    return numpy_to_image(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), "rgb8", header=frames.header)


def detection_box(detection: Any) -> np.ndarray:
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
                   class_id: str = "") -> tuple[np.ndarray, float] | None:
    """Box and score of the highest-scoring detection with score >= min_score, else None."""
    best: tuple[np.ndarray, float] | None = None
    for detection in array.detections:
        score = detection_score(detection, class_id)
        if score is None or not np.isfinite(score) or score < min_score:
            continue
        box = detection_box(detection)
        if not (np.all(np.isfinite(box)) and box[2] > 0 and box[3] > 0):
            continue
        if best is None or score > best[1]:
            best = (box, score)
    return best


def detection_at(array: Any, x: float, y: float, class_id: str = "") -> np.ndarray | None:
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
