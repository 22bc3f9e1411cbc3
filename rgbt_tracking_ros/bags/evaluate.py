"""Track a bag in process and score it against the bag's ground truth (`rgbt-track bag evaluate`).

Deterministic: frames are paired by the node's `StampPairer` in receive order, the tracker is
initialised on the first pair whose RGB frame has a valid ground-truth box, and every later
pair is tracked. Scores follow the OTB convention (one ground truth, the first frame replaced
by the ground truth) over the tracked frames that have ground truth, so a bag without jitter,
offset or rate difference scores exactly as `rgbt-track run` + `evaluate` on its sequence.
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from ..eval.metrics import Scores, score_results
from ..eval.runner import SequenceRun, Tracker
from ..ros.conversions import image_to_numpy
from ..sync import PairingConfig
from .messages import header_stamp
from .read import ImagePairs, read_ground_truth

PROTOCOL = "otb"


@dataclass(frozen=True)
class Topics:
    rgb: str = "/rgb/image"
    thermal: str = "/thermal/image"
    ground_truth: str = "/ground_truth"


@dataclass
class BagEvaluation:
    """Tracked frames (RGB stamps, boxes) and how the bag's frames fared."""

    name: str
    run: SequenceRun
    stamps: np.ndarray  # RGB header stamps (ns) of the tracked frames
    truth: dict[int, np.ndarray]
    received_rgb: int
    received_thermal: int
    pairs: int
    scores: Scores

    @property
    def scored_frames(self) -> int:
        return self.scores.frames

    @property
    def unpaired_truth_frames(self) -> int:
        """Ground-truth frames after initialisation that no pair covered (the node emits nothing there)."""
        tracked = set(self.stamps.tolist())
        return sum(1 for stamp in self.truth if stamp >= self.stamps[0] and stamp not in tracked)


def valid_box(box: np.ndarray) -> bool:
    return bool(np.all(np.isfinite(box)) and box[2] > 0 and box[3] > 0)


def bag_name(path: str | os.PathLike) -> str:
    """The sequence name recorded by `from-sequence` (read directly: rosbags' API for it varies
    across versions), else the bag folder's name."""
    metadata = yaml.safe_load((Path(path) / "metadata.yaml").read_text())
    custom = metadata.get("rosbag2_bagfile_information", {}).get("custom_data") or {}
    return custom.get("rgbt_tracking_ros.sequence") or Path(path).resolve().name


def evaluate_bag(
    path: str | os.PathLike,
    make_tracker: Callable[[], Tracker],
    config: PairingConfig = PairingConfig(),
    topics: Topics = Topics(),
    on_pair: Callable[[], None] | None = None,
) -> BagEvaluation:
    """Pair, track and score one bag."""
    truth = read_ground_truth(path, topics.ground_truth)
    pairs = ImagePairs(path, topics.rgb, topics.thermal, config)
    tracker: Tracker | None = None
    stamps, boxes, confidences, seconds = [], [], [], []
    for pair in pairs:
        stamp = header_stamp(pair.rgb)
        if tracker is None and not valid_box(truth.get(stamp, np.full(4, np.nan))):
            continue
        rgb, thermal = image_to_numpy(pair.rgb), image_to_numpy(pair.thermal)
        start = time.perf_counter()
        if tracker is None:
            tracker = make_tracker()
            box, confidence = truth[stamp], 1.0
            tracker.initialize(rgb, thermal, box)
        else:
            result = tracker.track(rgb, thermal)
            box, confidence = result.box, result.confidence
        seconds.append(time.perf_counter() - start)
        stamps.append(stamp)
        boxes.append(np.asarray(box, dtype=np.float64))
        confidences.append(float(confidence))
        if on_pair is not None:
            on_pair()
    if tracker is None:
        raise ValueError(f"no RGB-thermal pair of {path} has a valid ground-truth box to start from")
    name = bag_name(path)
    run = SequenceRun(name, np.array(boxes), np.array(confidences), np.array(seconds))
    stamp_array = np.array(stamps, dtype=np.int64)
    scores = score_tracked(name, stamp_array, run.boxes, truth)
    return BagEvaluation(name, run, stamp_array, truth, pairs.received["rgb"], pairs.received["thermal"],
                         pairs.pairs, scores)


def score_tracked(name: str, stamps: np.ndarray, boxes: np.ndarray, truth: dict[int, np.ndarray]) -> Scores:
    """OTB-protocol scores of the frames (by RGB stamp) that have ground truth; NaN boxes are misses."""
    listed = stamps.tolist()
    keep = [i for i, stamp in enumerate(listed) if stamp in truth]
    if not keep:
        raise ValueError("no tracked frame has a ground-truth box")
    truths = np.array([truth[listed[i]] for i in keep])
    return score_results({name: boxes[keep]}, {name: (truths, truths)}, PROTOCOL)
