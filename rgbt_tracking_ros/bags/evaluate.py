"""Track a bag in process and score it against the bag's ground truth (`rgbt-track bag evaluate`).

Deterministic, and through the node's own runtime (rgbt_tracking_ros/runtime): frames go in
receive order to the same pairing, stream-continuity checks and tracking session as in the
node, the target is set (as a set_target request) on the first pair whose RGB frame has a
valid ground-truth box, and every later pair is tracked, so states follow the node's rules
(e.g. stamps going back or a gap longer than camera_timeout make the target LOST, holding
its last box). Scores follow the OTB convention (one ground truth, the first frame replaced
by the ground truth) over the tracked frames that have ground truth, so a bag without jitter,
offset, gaps or rate difference scores exactly as `rgbt-track run` + `evaluate` on its
sequence.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from ..eval.metrics import Scores, score_results
from ..eval.runner import SequenceRun, Tracker
from ..ros.conversions import ImageConversionError, image_to_numpy
from ..runtime.parameters import NodeParameters, parse_parameters
from ..sync import PairingConfig
from .messages import header_stamp
from .read import connections, messages, open_bag, read_ground_truth

_FLUSH_GAP_NS = 10 * 1_000_000_000  # as bags/read.py's ImagePairs settles the last frames

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


def runtime_parameters(config: PairingConfig, **values: object) -> NodeParameters:
    """The node's parameters (defaults) with this pairing config and any other values."""
    params, _ = parse_parameters({
        "slop": config.slop, "queue_size": config.queue_size, "rgb_offset": config.rgb_offset,
        "thermal_offset": config.thermal_offset,
        "jump_back_tolerance": config.jump_back_tolerance, **values})
    return params


def evaluate_bag(
    path: str | os.PathLike,
    make_tracker: Callable[[], Tracker],
    config: PairingConfig = PairingConfig(),
    topics: Topics = Topics(),
    on_pair: Callable[[], None] | None = None,
    params: NodeParameters | None = None,
) -> BagEvaluation:
    """Pair, track and score one bag with the node's runtime (params: the node's parameters;
    default: its defaults with `config`'s pairing)."""
    from ..runtime.core import ImageFrame, TrackingRuntime
    from ..runtime.inputs import camera_image
    from ..runtime.session import State, TargetRequest

    truth = read_ground_truth(path, topics.ground_truth)
    params = params or runtime_parameters(config)
    tracker = make_tracker()
    pairs: list = []
    runtime = TrackingRuntime(tracker, params, sink=pairs.append)
    received = {"rgb": 0, "thermal": 0}
    started = False
    stamps, boxes, confidences, seconds = [], [], [], []

    paired = 0

    def track(frames_list: list) -> None:
        nonlocal started, paired
        paired += len(frames_list)
        for frames in frames_list:
            stamp = frames.rgb_stamp_ns
            if not started:
                box = truth.get(stamp, np.full(4, np.nan))
                if not valid_box(box):
                    continue
                request = runtime.request_target(box, "ground truth", "ground truth", stamp)
                if not isinstance(request, TargetRequest):
                    continue
                result = runtime.step(None)
                if not request.success:
                    continue
                started = True
                outcome = result.outcomes[0]
                record(stamp, truth[stamp], 1.0, outcome.inference_s)
                continue
            outcomes = [o for o in runtime.step(frames).outcomes if o.frames is frames]
            if not outcomes or outcomes[-1].state is State.STOPPED:
                continue
            outcome = outcomes[-1]
            box = outcome.box if outcome.box is not None else np.full(4, np.nan)
            record(stamp, box, outcome.confidence, outcome.inference_s)

    def record(stamp: int, box, confidence: float, elapsed: float) -> None:
        seconds.append(elapsed)
        stamps.append(stamp)
        boxes.append(np.asarray(box, dtype=np.float64))
        confidences.append(float(confidence))
        if on_pair is not None:
            on_pair()

    newest = 0
    with open_bag(path) as reader:
        conns = connections(reader, topics.rgb) + connections(reader, topics.thermal)
        for topic, _, msg in messages(reader, conns):
            camera = "rgb" if topic == topics.rgb else "thermal"
            received[camera] += 1
            stamp = header_stamp(msg)
            newest = max(newest, stamp)
            try:
                image = camera_image(camera, image_to_numpy(msg))
            except ImageConversionError as error:
                runtime.unusable(camera, str(error))
                continue
            runtime.image(camera, ImageFrame(msg.header, image, stamp))
            track(pairs)
            pairs.clear()
    end = newest + _FLUSH_GAP_NS + round(2e9 * (abs(config.rgb_offset) + abs(config.thermal_offset)))
    runtime.flush(end)
    track(pairs)
    if not started:
        raise ValueError(f"no RGB-thermal pair of {path} has a valid ground-truth box to start from")
    name = bag_name(path)
    run = SequenceRun(name, np.array(boxes), np.array(confidences), np.array(seconds))
    stamp_array = np.array(stamps, dtype=np.int64)
    scores = score_tracked(name, stamp_array, run.boxes, truth)
    return BagEvaluation(name, run, stamp_array, truth, received["rgb"], received["thermal"], paired, scores)


def score_tracked(name: str, stamps: np.ndarray, boxes: np.ndarray, truth: dict[int, np.ndarray]) -> Scores:
    """OTB-protocol scores of the frames (by RGB stamp) that have ground truth; NaN boxes are misses."""
    listed = stamps.tolist()
    keep = [i for i, stamp in enumerate(listed) if stamp in truth]
    if not keep:
        raise ValueError("no tracked frame has a ground-truth box")
    truths = np.array([truth[listed[i]] for i in keep])
    return score_results({name: boxes[keep]}, {name: (truths, truths)}, PROTOCOL)
