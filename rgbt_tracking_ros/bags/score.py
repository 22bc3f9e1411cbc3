"""Score a recording of the node's output against the replayed bag (`rgbt-track bag score`).

Outputs are matched to ground truth by header stamp: the node copies the RGB image's header
into each TrackedObject. The expected frames are the ground-truth frames whose RGB image the
node's pairing pairs (`all_frames`: every ground-truth frame), from the first one with a valid
box on; an expected frame without output is scored as a miss. Outputs in state STOPPED carry
no target and count as no output.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ..eval.boxes import valid_box
from ..eval.metrics import Scores
from ..sync import PairingConfig
from .evaluate import Topics, score_tracked
from .messages import TRACKED_OBJECT, box_from_tracked_object, header_stamp
from .read import ImagePairs, connections, messages, open_bag, read_ground_truth

STATE_STOPPED = 3


@dataclass
class RecordingScore:
    scores: Scores
    expected: int
    missing: int
    unmatched_outputs: int  # outputs whose stamp is no expected frame

    @property
    def missing_percent(self) -> float:
        return 100.0 * self.missing / self.expected


def read_outputs(path: str | os.PathLike[str], topic: str) -> dict[int, npt.NDArray[np.float64]]:
    """{stamp ns: box} of the TrackedObject messages with a target (the last one per stamp)."""
    with open_bag(path) as reader:
        conns = connections(reader, topic, TRACKED_OBJECT)
        return {header_stamp(msg): box_from_tracked_object(msg)
                for _, _, msg in messages(reader, conns) if msg.state != STATE_STOPPED}


def expected_stamps(
    truth_bag: str | os.PathLike[str],
    truth: dict[int, npt.NDArray[np.float64]],
    config: PairingConfig,
    topics: Topics,
    all_frames: bool,
) -> list[int]:
    """Ground-truth stamps the node should answer, from the first valid box on."""
    if all_frames:
        stamps = sorted(truth)
    else:
        stamps = sorted({header_stamp(pair.rgb) for pair in ImagePairs(truth_bag, topics.rgb, topics.thermal, config)}
                        & set(truth))
    first = next((i for i, stamp in enumerate(stamps) if valid_box(truth[stamp])), None)
    if first is None:
        raise ValueError(f"no paired frame of {truth_bag} has a valid ground-truth box")
    return stamps[first:]


def score_recording(
    recorded: str | os.PathLike[str],
    truth_bag: str | os.PathLike[str],
    topic: str = "/tracked_object",
    config: PairingConfig = PairingConfig(),
    topics: Topics = Topics(),
    all_frames: bool = False,
) -> RecordingScore:
    truth = read_ground_truth(truth_bag, topics.ground_truth)
    outputs = read_outputs(recorded, topic)
    stamps = expected_stamps(truth_bag, truth, config, topics, all_frames)
    missing = np.full(4, np.nan)
    boxes = np.array([outputs.get(stamp, missing) for stamp in stamps])
    scores = score_tracked("recording", np.array(stamps, dtype=np.int64), boxes, truth)
    answered = sum(1 for stamp in stamps if stamp in outputs)
    unmatched = len(set(outputs) - set(stamps))
    return RecordingScore(scores, len(stamps), len(stamps) - answered, unmatched)
