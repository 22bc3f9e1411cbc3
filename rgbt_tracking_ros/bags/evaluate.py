"""Track a bag in process and score it against the bag's ground truth (`rgbt-track bag evaluate`).

Deterministic, and through the node's own runtime (rgbt_tracking_ros/runtime): frames go in
receive order to the same pairing, stream-continuity checks and tracking session as in the
node; the target is set (as a set_target request) on the first pair whose RGB frame has a
valid ground-truth box (or, with a start box given, on the first pair), and every later pair
is tracked, so states follow the node's rules (e.g. stamps going back or a gap longer than
camera_timeout make the target LOST, holding its last box). Images may be raw or compressed
(JPEG / 16-bit PNG, as robots record them).

Scoring (kept apart from the tracking loop): the tracked frames that have a ground-truth
message are scored, the others skipped, under the protocol of the dataset the bag was written
from (`from-sequence` records it; another recorder's bag is scored with the OTB convention
unless told otherwise). Benchmarks scored against both modalities' truth (RGBT234, GTOT,
VTUAV: MPR/MSR) take the infrared truth from its own topic. So a bag without jitter, offset,
gaps or rate difference scores exactly as `rgbt-track run` + `evaluate --dataset` on its
sequence.
"""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import yaml

from ..codec import ImageConversionError, decode_image
from ..eval.boxes import valid_box
from ..eval.metrics import PROTOCOLS, Protocol, Scores, score_results
from ..eval.runner import SequenceRun, Tracker
from ..runtime.parameters import NodeParameters, parse_parameters
from ..sync import PairingConfig
from .messages import header_stamp
from .read import connections, has_topic, image_topic, messages, open_bag, read_ground_truth

if TYPE_CHECKING:
    from ..runtime.session import Frames

_FLUSH_GAP_NS = 10 * 1_000_000_000  # as bags/read.py's ImagePairs settles the last frames

PROTOCOL = "otb"  # bags that do not say which dataset they come from


@dataclass(frozen=True)
class Topics:
    """Camera base topics (raw there, compressed there or on `<topic>/compressed`) and ground truth."""

    rgb: str = "/rgb/image"
    thermal: str = "/thermal/image"
    ground_truth: str = "/ground_truth"
    infrared_ground_truth: str = "/ground_truth/infrared"


@dataclass
class BagEvaluation:
    """Tracked frames (RGB stamps, boxes) and how the bag's frames fared."""

    name: str
    run: SequenceRun
    stamps: npt.NDArray[np.int64]  # RGB header stamps (ns) of the tracked frames
    truth: dict[int, npt.NDArray[np.float64]]
    received_rgb: int
    received_thermal: int
    pairs: int
    scores: Scores | None  # None: the bag has no ground truth for any tracked frame
    protocol: str = PROTOCOL
    infrared_truth: dict[int, npt.NDArray[np.float64]] = dataclasses.field(default_factory=dict)
    # The camera offset found from the images: the node's /diagnostics time_offset_* values.
    time_offset: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def scored_frames(self) -> int:
        return 0 if self.scores is None else self.scores.frames

    @property
    def unpaired_truth_frames(self) -> int:
        """Ground-truth frames after initialisation that no pair covered (the node emits nothing there)."""
        tracked = set(self.stamps.tolist())
        return sum(1 for stamp in self.truth if stamp >= self.stamps[0] and stamp not in tracked)


def bag_name(path: str | os.PathLike[str]) -> str:
    """The sequence name recorded by `from-sequence` (read directly: rosbags' API for it varies
    across versions), else the bag folder's name."""
    metadata = yaml.safe_load((Path(path) / "metadata.yaml").read_text())
    custom = metadata.get("rosbag2_bagfile_information", {}).get("custom_data") or {}
    return custom.get("rgbt_tracking_ros.sequence") or Path(path).resolve().name


def bag_protocol(path: str | os.PathLike[str]) -> str | None:
    """The scoring protocol `from-sequence` recorded (the dataset kind), else None."""
    metadata = yaml.safe_load((Path(path) / "metadata.yaml").read_text())
    custom = metadata.get("rosbag2_bagfile_information", {}).get("custom_data") or {}
    protocol = custom.get("rgbt_tracking_ros.protocol")
    return protocol if protocol in PROTOCOLS else None


def read_truths(
    path: str | os.PathLike[str], topics: Topics, required: bool
) -> tuple[dict[int, npt.NDArray[np.float64]], dict[int, npt.NDArray[np.float64]]]:
    """(visible, infrared) ground truth by RGB stamp; either may be empty where the bag has none."""
    truth = read_ground_truth(path, topics.ground_truth) if required or has_topic(path, topics.ground_truth) else {}
    infrared: dict[int, npt.NDArray[np.float64]] = {}
    if topics.infrared_ground_truth and has_topic(path, topics.infrared_ground_truth):
        infrared = read_ground_truth(path, topics.infrared_ground_truth)
    return truth, infrared


def runtime_parameters(config: PairingConfig, **values: object) -> NodeParameters:
    """The node's parameters (defaults) with this pairing config and any other values."""
    params, _ = parse_parameters({
        "slop": config.slop, "queue_size": config.queue_size, "rgb_offset": config.rgb_offset,
        "thermal_offset": config.thermal_offset,
        "jump_back_tolerance": config.jump_back_tolerance, **values})
    return params


def evaluate_bag(
    path: str | os.PathLike[str],
    make_tracker: Callable[[], Tracker],
    config: PairingConfig = PairingConfig(),
    topics: Topics = Topics(),
    on_pair: Callable[[], object] | None = None,
    start_box: Sequence[float] | npt.NDArray[np.float64] | None = None,
    protocol: str | None = None,
    params: NodeParameters | None = None,
) -> BagEvaluation:
    """Pair, track and score one bag with the node's runtime (params: the node's parameters;
    default: its defaults with `config`'s pairing).

    `start_box` (x, y, w, h in RGB pixels) starts the tracker on the first pair instead of on
    the first ground-truth box (a bag without ground truth is then tracked, not scored).
    `protocol` overrides the one the bag records (default OTB).
    """
    from ..runtime.core import ImageFrame, TrackingRuntime
    from ..runtime.inputs import camera_image
    from ..runtime.session import State, TargetRequest

    start = None if start_box is None else np.asarray(start_box, dtype=np.float64)
    if start is not None and not valid_box(start):
        raise ValueError(f"start box must be finite (x, y, w, h) with w, h > 0, got {start.tolist()}")
    truth, infrared = read_truths(path, topics, required=start is None)
    params = params or runtime_parameters(config)
    tracker = make_tracker()
    pairs: list[Frames] = []
    runtime = TrackingRuntime(tracker, params, sink=pairs.append)
    received = {"rgb": 0, "thermal": 0}
    started = False
    stamps, boxes, confidences, seconds = [], [], [], []

    paired = 0

    def track(frames_list: list[Frames]) -> None:
        nonlocal started, paired
        paired += len(frames_list)
        for frames in frames_list:
            stamp = frames.rgb_stamp_ns
            if not started:
                box = truth.get(stamp, np.full(4, np.nan)) if start is None else start
                if not valid_box(box):
                    continue
                source = "ground truth" if start is None else "start box"
                request = runtime.request_target([float(v) for v in box], source, source, stamp)
                if not isinstance(request, TargetRequest):
                    continue
                result = runtime.step(None)
                if not request.success:
                    continue
                started = True
                outcome = result.outcomes[0]
                record(stamp, box, 1.0, outcome.inference_s)
                continue
            outcomes = [o for o in runtime.step(frames).outcomes if o.frames is frames]
            if not outcomes or outcomes[-1].state is State.STOPPED:
                continue
            outcome = outcomes[-1]
            box = outcome.box if outcome.box is not None else np.full(4, np.nan)
            record(stamp, box, outcome.confidence, outcome.inference_s)

    def record(stamp: int, box: npt.NDArray[np.float64], confidence: float, elapsed: float) -> None:
        seconds.append(elapsed)
        stamps.append(stamp)
        boxes.append(np.asarray(box, dtype=np.float64))
        confidences.append(float(confidence))
        if on_pair is not None:
            on_pair()

    newest = 0
    with open_bag(path) as reader:
        rgb_topic, thermal_topic = image_topic(reader, topics.rgb), image_topic(reader, topics.thermal)
        conns = connections(reader, rgb_topic) + connections(reader, thermal_topic)
        for topic, _, msg in messages(reader, conns):
            camera = "rgb" if topic == rgb_topic else "thermal"
            received[camera] += 1
            stamp = header_stamp(msg)
            newest = max(newest, stamp)
            try:
                image = camera_image(camera, decode_image(msg, camera))
            except ImageConversionError as error:
                runtime.unusable(camera, str(error))
                continue
            runtime.image(camera, ImageFrame(msg.header, image, stamp))
            runtime.check_time_offset()  # the node's timer check, here per frame in bag time
            track(pairs)
            pairs.clear()
    end = newest + _FLUSH_GAP_NS + round(2e9 * (abs(config.rgb_offset) + abs(config.thermal_offset)))
    runtime.flush(end)
    track(pairs)
    if not started:
        where = "no RGB-thermal pair" if start is not None else "no RGB-thermal pair with a valid ground-truth box"
        raise ValueError(f"{where} in {path} to start from")
    name = bag_name(path)
    run = SequenceRun(name, np.array(boxes), np.array(confidences), np.array(seconds))
    stamp_array = np.array(stamps, dtype=np.int64)
    protocol = protocol or bag_protocol(path) or PROTOCOL
    scored = any(stamp in truth for stamp in stamps)
    scores = score_tracked(name, stamp_array, run.boxes, truth, protocol, infrared) if scored else None
    return BagEvaluation(name, run, stamp_array, truth, received["rgb"], received["thermal"],
                         paired, scores, protocol, infrared, dict(runtime.time_offset.values()))


# --- scoring: which tracked frames count, against which truth, under which protocol -------------


def frame_protocol(protocol: str | Protocol, first_is_start: bool = True) -> Protocol:
    """The dataset's protocol for boxes already matched to their truth frames one to one
    (VTUAV's one-in-ten annotation is done by the stamps); the first-frame rule holds only when
    the first scored frame is the one the tracker started on."""
    protocol = PROTOCOLS[protocol] if isinstance(protocol, str) else protocol
    return dataclasses.replace(protocol, truth_step=1, first_frame_truth=protocol.first_frame_truth and first_is_start)


def score_tracked(
    name: str,
    stamps: npt.NDArray[np.int64],
    boxes: npt.NDArray[np.float64],
    truth: dict[int, npt.NDArray[np.float64]],
    protocol: str | Protocol = PROTOCOL,
    infrared: dict[int, npt.NDArray[np.float64]] | None = None,
) -> Scores:
    """Scores of the tracked frames (by RGB stamp) that have ground truth, the others skipped;
    NaN boxes are misses. `infrared` truth (where the bag has it) is the second truth of the
    MPR/MSR protocols; without it the visible truth stands for both."""
    listed = stamps.tolist()
    keep = [i for i, stamp in enumerate(listed) if stamp in truth]
    if not keep:
        raise ValueError("no tracked frame has a ground-truth box")
    visible = np.array([truth[listed[i]] for i in keep])
    infrared = infrared or {}
    thermal = np.array([infrared.get(listed[i], truth[listed[i]]) for i in keep])
    return score_results({name: boxes[keep]}, {name: (visible, thermal)}, frame_protocol(protocol, keep[0] == 0))
