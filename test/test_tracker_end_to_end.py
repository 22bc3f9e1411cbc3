"""The whole tracker on synthetic RGB-T sequences with a tiny model the test trains itself.

A model that has learned nothing stays near its first box; these sequences move the target
by tens of pixels, so following it proves crops, normalisation, decoding and map-back work
together with real weights.
"""
from __future__ import annotations

import numpy as np
import pytest

from rgbt_tracking_ros.data.synthetic import SyntheticSequence, make_sequence
from rgbt_tracking_ros.eval.boxes import centre_error, iou_xywh
from rgbt_tracking_ros.models.loading import load_model
from rgbt_tracking_ros.tracker import RGBTTracker, TrackerConfig, TrackState

HELD_OUT_SEEDS = (1000, 1001, 1002)


def track_sequence(tracker: RGBTTracker, sequence: SyntheticSequence) -> np.ndarray:
    """Boxes for every frame; the first is the given one."""
    tracker.initialize(sequence.rgb[0], sequence.thermal[0], sequence.boxes[0])
    boxes = [sequence.boxes[0]]
    for rgb, thermal in zip(sequence.rgb[1:], sequence.thermal[1:]):
        boxes.append(tracker.track(rgb, thermal).box)
    return np.array(boxes)


def _track(checkpoint, seed: int, **config):
    sequence = make_sequence(seed, frames=50)
    tracker = RGBTTracker(load_model(checkpoint=checkpoint), TrackerConfig(**config))
    boxes = track_sequence(tracker, sequence)
    return sequence, boxes, tracker


@pytest.mark.parametrize("seed", HELD_OUT_SEEDS[:2])
def test_trained_tiny_tracker_follows_a_moving_target(trained_checkpoint, seed):
    sequence, boxes, tracker = _track(trained_checkpoint, seed)
    travelled = centre_error(sequence.boxes[1:], sequence.boxes[:1].repeat(len(boxes) - 1, 0))
    assert travelled.max() > 40, "the target must move far enough for a frozen box to fail"
    iou = iou_xywh(boxes[1:], sequence.boxes[1:])
    assert iou.mean() > 0.5
    assert np.median(centre_error(boxes[1:], sequence.boxes[1:])) < 8
    assert tracker.age == len(sequence.rgb) - 1


def test_a_frozen_box_would_fail_the_same_check():
    """The control: repeating the first box scores far below the trained tracker."""
    sequence = make_sequence(HELD_OUT_SEEDS[0], frames=50)
    frozen = np.repeat(sequence.boxes[:1], len(sequence.boxes) - 1, axis=0)
    assert iou_xywh(frozen, sequence.boxes[1:]).mean() < 0.5


def test_confidence_drops_and_state_turns_lost_when_the_target_vanishes(trained_checkpoint):
    sequence = make_sequence(HELD_OUT_SEEDS[0], frames=10)
    tracker = RGBTTracker(load_model(checkpoint=trained_checkpoint), TrackerConfig(lost_threshold=0.3))
    tracker.initialize(sequence.rgb[0], sequence.thermal[0], sequence.boxes[0])
    first = tracker.track(sequence.rgb[1], sequence.thermal[1])
    seen = first.confidence
    assert first.state is TrackState.TRACKING and seen > 0.3
    blank_rgb = np.full_like(sequence.rgb[2], 128)
    blank_thermal = np.full_like(sequence.thermal[2], 20000)
    confidences = [tracker.track(blank_rgb, blank_thermal).confidence for _ in range(3)]
    assert max(confidences) < seen
    assert tracker.frames_since_seen >= 1


def test_thermal_at_another_resolution_tracks_the_same(trained_checkpoint):
    """A thermal camera at half resolution, resized onto the RGB frame by the tracker."""
    sequence = make_sequence(HELD_OUT_SEEDS[0], frames=30)
    sequence.thermal = [frame[::2, ::2].copy() for frame in sequence.thermal]
    tracker = RGBTTracker(load_model(checkpoint=trained_checkpoint), TrackerConfig())
    boxes = track_sequence(tracker, sequence)
    assert iou_xywh(boxes[1:], sequence.boxes[1:]).mean() > 0.4
