"""The robust target-state policy with the shipped default model on edited synthetic frames:
the target vanishes (its region replaced by the background behind it), reappears far away,
garbage frames arrive and the camera stalls."""
from __future__ import annotations

import numpy as np
import pytest

from rgbt_tracking_ros.data.synthetic import make_sequence
from rgbt_tracking_ros.eval.boxes import iou_xywh
from rgbt_tracking_ros.models.loading import load_model
from rgbt_tracking_ros.tracker import RGBTTracker, TrackerConfig, TrackState

FAR = (250.0, 20.0)  # top-right corner: beyond the widest local search from the start box


def _region(box: np.ndarray, margin: int, shape: tuple[int, ...]) -> tuple[slice, slice]:
    x, y, w, h = box
    return (slice(max(int(y) - margin, 0), min(int(y + h) + margin + 1, shape[0])),
            slice(max(int(x) - margin, 0), min(int(x + w) + margin + 1, shape[1])))


@pytest.fixture(scope="module")
def scene():
    """A static-camera sequence and frames with the target removed (its region, plus a margin,
    copied from the last frame, where the target is elsewhere)."""
    sequence = make_sequence(1000, frames=30, conditions=("hot",))
    last = len(sequence.rgb) - 1

    def without_target(index: int) -> tuple[np.ndarray, np.ndarray]:
        rgb, thermal = sequence.rgb[index].copy(), sequence.thermal[index].copy()
        rows, cols = _region(sequence.boxes[index], 4, rgb.shape)
        rgb[rows, cols] = sequence.rgb[last][rows, cols]
        thermal[rows, cols] = sequence.thermal[last][rows, cols]
        return rgb, thermal

    for index in range(6):
        assert iou_xywh(sequence.boxes[index][None], sequence.boxes[last][None])[0] == 0
    return sequence, without_target


def _result(tracker, frames, truth=None):
    result = tracker.track(*frames)
    iou = None if truth is None else float(iou_xywh(result.box[None], np.asarray(truth)[None])[0])
    return result, iou


def test_lost_when_the_target_vanishes_and_reacquired_far_away(trained_checkpoint, scene):
    sequence, without_target = scene
    config = TrackerConfig(redetect_interval=4)
    tracker = RGBTTracker(load_model(checkpoint=trained_checkpoint), config)
    tracker.initialize(sequence.rgb[0], sequence.thermal[0], sequence.boxes[0])
    for index in (1, 2):
        result, iou = _result(tracker, (sequence.rgb[index], sequence.thermal[index]), sequence.boxes[index])
        assert result.state is TrackState.TRACKING and iou > 0.5, (index, result, iou)
    seen = result.box

    # Gone: LOST within two frames, and the box stays where the target was last seen.
    states = []
    for index in range(3, 3 + config.redetect_interval):
        result, _ = _result(tracker, without_target(index))
        states.append(result.state)
        np.testing.assert_allclose(result.box, seen)
    assert TrackState.LOST in states[:2] and all(state is TrackState.LOST for state in states[2:]), states
    assert result.frames_since_seen >= config.redetect_interval - 1
    assert "full-frame search" in result.reason and result.search_factor > tracker.config.search_factor

    # Back, far away (the target's patch pasted into the top-right corner): the full-frame
    # search, due every redetect_interval lost frames, finds it.
    rows, cols = _region(sequence.boxes[2], 0, sequence.rgb[2].shape)
    patch_rgb, patch_thermal = sequence.rgb[2][rows, cols], sequence.thermal[2][rows, cols]
    truth = np.array([*FAR, patch_rgb.shape[1], patch_rgb.shape[0]], np.float64)
    found = None
    for attempt in range(config.redetect_interval):
        rgb, thermal = without_target(7 + attempt)
        y, x = int(FAR[1]), int(FAR[0])
        rgb[y : y + patch_rgb.shape[0], x : x + patch_rgb.shape[1]] = patch_rgb
        thermal[y : y + patch_rgb.shape[0], x : x + patch_rgb.shape[1]] = patch_thermal
        result, iou = _result(tracker, (rgb, thermal), truth)
        if result.state is TrackState.TRACKING:
            found = (result, iou)
            break
    assert found is not None, result
    result, iou = found
    assert result.redetected and result.reason.startswith("re-acquired by full-frame search"), result
    assert result.confidence >= tracker.policy.redetect_threshold
    assert iou > 0.4, (result, truth)
    rgb, thermal = without_target(12)
    rgb[y : y + patch_rgb.shape[0], x : x + patch_rgb.shape[1]] = patch_rgb
    thermal[y : y + patch_rgb.shape[0], x : x + patch_rgb.shape[1]] = patch_thermal
    result, iou = _result(tracker, (rgb, thermal), truth)
    assert result.state is TrackState.TRACKING and iou > 0.5, (result, iou)


def test_no_runaway_after_garbage_frames_or_a_stall(trained_checkpoint, scene):
    sequence, _ = scene
    tracker = RGBTTracker(load_model(checkpoint=trained_checkpoint), TrackerConfig(redetect_interval=0))
    tracker.initialize(sequence.rgb[0], sequence.thermal[0], sequence.boxes[0])
    result, _ = _result(tracker, (sequence.rgb[1], sequence.thermal[1]))
    assert result.state is TrackState.TRACKING
    seen = result.box
    rng = np.random.default_rng(0)
    for _ in range(3):
        garbage = (rng.integers(0, 256, sequence.rgb[0].shape, dtype=np.uint8),
                   rng.integers(0, 65535, sequence.thermal[0].shape, dtype=np.uint16))
        result, _ = _result(tracker, garbage)
        assert result.state is TrackState.LOST, result
        np.testing.assert_allclose(result.box, seen)
    for _ in range(4):  # the camera stalls on frame 2
        result, iou = _result(tracker, (sequence.rgb[2], sequence.thermal[2]), sequence.boxes[2])
        assert result.state is TrackState.TRACKING and iou > 0.5, (result, iou)
    area = result.box[2] * result.box[3]
    assert area < 2 * sequence.boxes[2][2] * sequence.boxes[2][3]
