"""The target-state policy, exactly: the pure TargetState, and RGBTTracker around fake models.

`SpotModel` sees: its peak is wherever the search crop shows the target's colour (a square
of RGB (250, 10, 10)), with that square's size, at `hit` confidence; anywhere else the map
is flat at `miss`. So the test decides, frame by frame, whether the target is visible.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from test_tracker_runtime import FakeModel, _frames
from torch import nn

from rgbt_tracking_ros.models.protocol import Geometry
from rgbt_tracking_ros.tracker import RGBTTracker, TrackerConfig, TrackState
from rgbt_tracking_ros.tracker.target_state import (
    StatePolicy,
    TargetState,
    bounded_size,
    tile_boxes,
)
from rgbt_tracking_ros.tracker.tracker import state_policy

HEIGHT, WIDTH = 240, 320
COLOUR = (250, 10, 10)
MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
CONFIG = TrackerConfig(search_factor=4.0)  # explicit: the policy tests run without a model


class SpotModel(nn.Module):
    """Finds the COLOUR square in each search crop of a batch."""

    def __init__(self, hit: float = 0.9, miss: float = 0.02):
        super().__init__()
        self.num_templates = 1
        self.geometry = Geometry(template_size=128, search_size=256)
        self.anchor = nn.Parameter(torch.zeros(()))
        self.hit, self.miss = hit, miss
        self.batches: list[int] = []

    def encode_templates(self, template_rgb, template_x):
        return torch.stack([template_rgb, template_x])

    def track_search(self, templates, search_rgb, search_x):
        return self(templates[0], templates[1], search_rgb, search_x)

    def forward(self, template_rgb, template_x, search_rgb, search_x):
        batch = search_rgb.shape[0]
        assert template_rgb.shape[0] == batch
        self.batches.append(batch)
        pixels = ((search_rgb.float() * STD + MEAN) * 255.0).round()
        colour = torch.tensor(COLOUR, dtype=pixels.dtype).view(1, 3, 1, 1)
        mask = ((pixels - colour).abs() <= 3).all(dim=1)  # (B, S, S)
        score = torch.full((batch, 1, 16, 16), self.miss)
        size = torch.full((batch, 2, 16, 16), 0.25)
        offset = torch.zeros(batch, 2, 16, 16)
        for b in range(batch):
            ys, xs = torch.nonzero(mask[b], as_tuple=True)
            if len(ys) < 20:
                continue
            x0, x1, y0, y1 = xs.min().item(), xs.max().item() + 1, ys.min().item(), ys.max().item() + 1
            cx, cy = (x0 + x1) / 2 / 16, (y0 + y1) / 2 / 16
            col, row = min(int(cx), 15), min(int(cy), 15)
            score[b, 0, row, col] = self.hit
            size[b, :, row, col] = torch.tensor([(x1 - x0) / 256, (y1 - y0) / 256])
            offset[b, :, row, col] = torch.tensor([cx - col, cy - row])
        return {"score_map": score, "size_map": size, "offset_map": offset}


def scene(box: tuple[float, float, float, float] | None, background: int = 90) -> tuple[np.ndarray, np.ndarray]:
    """A uniform frame pair with the target square at box (x, y, w, h), or without it."""
    rgb = np.full((HEIGHT, WIDTH, 3), background, np.uint8)
    thermal = np.full((HEIGHT, WIDTH), background, np.uint8)
    if box is not None:
        x, y, w, h = (int(round(v)) for v in box)
        rgb[max(y, 0) : y + h, max(x, 0) : x + w] = COLOUR
        thermal[max(y, 0) : y + h, max(x, 0) : x + w] = 200
    return rgb, thermal


def iou(a: np.ndarray, b) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    w = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    h = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    return w * h / (aw * ah + bw * bh - w * h)


def policy(**changes) -> StatePolicy:
    return state_policy(TrackerConfig(**changes))


# ---------------------------------------------------------------------------- pure policy


def test_low_confidence_does_not_move_the_target_and_says_why():
    p = policy(lost_threshold=0.25)
    state = TargetState(p, np.array([100.0, 80, 40, 30]))
    decision = state.update(np.array([0.0, 0, 300, 200]), 0.18, HEIGHT, WIDTH)
    assert decision.state is TrackState.LOST and not decision.take_template
    np.testing.assert_array_equal(decision.box, [100, 80, 40, 30])
    assert decision.reason == "confidence 0.180 below lost_threshold 0.25"
    assert decision.frames_since_seen == state.frames_since_seen == 1
    assert state.update(np.array([0.0, 0, 300, 200]), float("nan"), HEIGHT, WIDTH).state is TrackState.LOST


def test_search_widens_step_by_step_up_to_the_cap():
    p = policy()
    state = TargetState(p, np.array([100.0, 80, 40, 30]))
    factors = [state.search_factor]
    for _ in range(12):
        state.update(np.zeros(4), 0.0, HEIGHT, WIDTH)
        factors.append(state.search_factor)
    assert factors[0] == CONFIG.search_factor
    expected = [min(CONFIG.search_factor * CONFIG.search_growth**k, CONFIG.max_search_factor) for k in range(13)]
    np.testing.assert_allclose(factors, expected)
    assert all(b >= a for a, b in zip(factors, factors[1:])) and factors[-1] == CONFIG.max_search_factor
    state.update(np.array([100.0, 80, 40, 30]), 0.9, HEIGHT, WIDTH)
    assert state.search_factor == CONFIG.search_factor and state.frames_since_seen == 0


def test_a_lost_target_needs_the_reacquire_threshold_to_come_back():
    p = policy(lost_threshold=0.10, reacquire_threshold=0.15)
    state = TargetState(p, np.array([100.0, 80, 40, 30]))
    assert state.update(np.array([100.0, 80, 40, 30]), 0.12, HEIGHT, WIDTH).state is TrackState.TRACKING
    assert state.update(np.zeros(4), 0.05, HEIGHT, WIDTH).state is TrackState.LOST
    stays = state.update(np.array([10.0, 10, 40, 30]), 0.12, HEIGHT, WIDTH)
    assert stays.state is TrackState.LOST and stays.frames_since_seen == 2
    assert stays.reason == "confidence 0.120 below reacquire_threshold 0.15"
    np.testing.assert_array_equal(stays.box, [100, 80, 40, 30])
    back = state.update(np.array([10.0, 10, 40, 30]), 0.16, HEIGHT, WIDTH)
    assert back.state is TrackState.TRACKING and back.reason.startswith("re-acquired after 2 lost frame(s)")
    # Never below the lost threshold, whatever it is set to.
    assert policy(lost_threshold=0.3, reacquire_threshold=0.15).reacquire_threshold == 0.15
    high = TargetState(policy(lost_threshold=0.3, reacquire_threshold=0.15), np.array([100.0, 80, 40, 30]))
    high.update(np.zeros(4), 0.0, HEIGHT, WIDTH)
    assert high.update(np.zeros(4), 0.2, HEIGHT, WIDTH).reason == "confidence 0.200 below lost_threshold 0.3"


def test_full_frame_search_falls_due_every_interval():
    state = TargetState(policy(redetect_interval=4), np.array([100.0, 80, 40, 30]))
    due = []
    for _ in range(9):
        state.update(np.zeros(4), 0.0, HEIGHT, WIDTH)
        due.append(state.full_search_due)
    assert due == [False, False, False, True, False, False, False, True, False]
    assert not TargetState(policy(policy="official"), np.ones(4) * 20).full_search_due


def test_scale_and_aspect_change_are_clamped_then_smoothed():
    p = policy()
    previous = np.array([100.0, 80, 40, 40])
    for predicted in ([90, 70, 400, 400], [110, 90, 4, 4], [100, 80, 160, 10], [100, 80, 44, 40]):
        w, h = bounded_size(previous, np.array(predicted, float), p.max_scale_step, p.max_aspect_step,
                            p.size_smoothing)
        scale_step = 0.5 * math.log(w * h / 1600)
        aspect_step = math.log(w / h)
        assert abs(scale_step) <= p.size_smoothing * p.max_scale_step + 1e-12
        assert abs(aspect_step) <= p.size_smoothing * p.max_aspect_step + 1e-12
        want = 0.5 * math.log(predicted[2] * predicted[3] / 1600)
        if abs(want) <= p.max_scale_step:  # small changes are only smoothed
            assert scale_step == pytest.approx(p.size_smoothing * want)


def test_official_policy_follows_every_prediction():
    state = TargetState(policy(policy="official", lost_threshold=0.25), np.array([100.0, 80, 40, 30]))
    decision = state.update(np.array([10.0, 20, 300, 200]), 0.1, HEIGHT, WIDTH)
    np.testing.assert_array_equal(decision.box, [10, 20, 300, 200])
    assert decision.state is TrackState.LOST and decision.take_template
    assert state.search_factor == CONFIG.search_factor


def test_tiles_cover_the_frame_with_a_bounded_count():
    box = np.array([100.0, 80, 20, 20])
    tiles = tile_boxes(512, 640, box, 4.0, 48)
    side = 4.0 * 20
    assert len(tiles) <= 48
    centres = np.array([[t[0] + t[2] / 2, t[1] + t[3] / 2] for t in tiles])
    # Every pixel lies in the central half of some crop.
    grid = np.stack(np.meshgrid(np.arange(0, 640, 7), np.arange(0, 512, 7)), -1).reshape(-1, 2)
    crop_side = np.array([4.0 * math.sqrt(t[2] * t[3]) for t in tiles])
    inside = (np.abs(grid[:, None, :] - centres[None]) <= crop_side[None, :, None] / 4 + 1).all(-1).any(-1)
    assert inside.all()
    assert crop_side.min() >= side  # grown (not shrunk) when the count had to be bounded
    tiny = tile_boxes(512, 640, np.array([0.0, 0, 4, 4]), 4.0, 48)
    assert 1 <= len(tiny) <= 48


def test_bad_policy_settings_are_rejected():
    for changes, message in (({"policy": "greedy"}, "policy"), ({"search_growth": 0.9}, "search_growth"),
                             ({"size_smoothing": 0.0}, "size_smoothing"), ({"redetect_interval": -1}, "redetect")):
        with pytest.raises(ValueError, match=message):
            RGBTTracker(FakeModel(), TrackerConfig(**changes))


def test_thresholds_default_to_the_model_config():
    assert state_policy(TrackerConfig(), {"tracker": {"lost_threshold": 0.4}}).lost_threshold == 0.4
    assert state_policy(TrackerConfig(), {"tracker": {"lost_threshold": 0.4}}).redetect_threshold == 0.4
    both = state_policy(TrackerConfig(), {"tracker": {"lost_threshold": 0.4, "redetect_threshold": 0.6}})
    assert both.redetect_threshold == 0.6
    assert state_policy(TrackerConfig(lost_threshold=0.1), {"tracker": {"lost_threshold": 0.4}}).lost_threshold == 0.1
    assert state_policy(TrackerConfig(), None).lost_threshold == 0.25  # DEFAULT_LOST_THRESHOLD
    assert both.reacquire_threshold == 0.4  # no hysteresis unless the model config sets one
    assert state_policy(TrackerConfig(), {"tracker": {"reacquire_threshold": 0.5}}).reacquire_threshold == 0.5
    assert state_policy(TrackerConfig(reacquire_threshold=0.2), {"tracker": {"reacquire_threshold": 0.5}}).reacquire_threshold == 0.2


# ------------------------------------------------------------------ tracker with fakes


def test_tracker_keeps_the_last_confident_box_on_low_confidence():
    # The fake predicts a box the size of the whole crop, at low confidence, every frame.
    model = FakeModel(cell=(3, 12), size=(1.0, 1.0), peaks=(0.15,))
    tracker = RGBTTracker(model, TrackerConfig(lost_threshold=0.25))
    tracker.initialize(*_frames(), (140, 100, 40, 40))
    for k in range(1, 6):
        result = tracker.track(*_frames())
        np.testing.assert_array_equal(result.box, [140, 100, 40, 40])
        assert result.state is TrackState.LOST and result.frames_since_seen == k
        assert "below lost_threshold 0.25" in result.reason


def test_official_policy_runs_away_where_robust_does_not():
    """The bug of the issue: low-confidence oversized boxes feed the next search (official)."""
    boxes = {}
    for name in ("official", "robust"):
        tracker = RGBTTracker(FakeModel(size=(1.0, 1.0), peaks=(0.2,)), TrackerConfig(policy=name))
        tracker.initialize(*_frames(), (140, 100, 20, 20))
        for _ in range(4):
            result = tracker.track(*_frames())
        boxes[name] = result.box
        assert result.state is TrackState.LOST
    assert boxes["official"][2] * boxes["official"][3] > 0.5 * HEIGHT * WIDTH
    np.testing.assert_array_equal(boxes["robust"], [140, 100, 20, 20])


def test_confident_size_change_is_bounded_per_frame():
    model = FakeModel(size=(1.0, 1.0), peaks=(0.9,))  # says "4x larger" confidently, every frame
    tracker = RGBTTracker(model)
    tracker.initialize(*_frames(), (150, 110, 20, 20))
    previous = 20.0
    for _ in range(5):
        box = tracker.track(*_frames()).box
        scale = math.sqrt(box[2] * box[3])
        assert 0 < math.log(scale / previous) <= CONFIG.size_smoothing * CONFIG.max_scale_step + 1e-9
        previous = scale


def test_target_leaving_and_returning_nearby_is_lost_then_reacquired():
    model = SpotModel()
    tracker = RGBTTracker(model)
    truth = (150, 100, 24, 24)
    tracker.initialize(*scene(truth), truth)
    assert tracker.track(*scene(truth)).state is TrackState.TRACKING
    results = [tracker.track(*scene(None)) for _ in range(3)]  # occluded: gone from the frame
    assert [r.state for r in results] == [TrackState.LOST] * 3
    assert [r.frames_since_seen for r in results] == [1, 2, 3]
    assert all(np.allclose(r.box, results[0].box) for r in results)
    assert results[-1].search_factor > results[0].search_factor  # widening
    back = (165, 110, 24, 24)
    result = tracker.track(*scene(back))
    assert result.state is TrackState.TRACKING and not result.redetected
    assert result.reason.startswith("re-acquired after 3 lost frame(s)")
    assert iou(result.box, back) > 0.7


def test_target_reappearing_far_away_is_found_by_the_full_frame_search():
    model = SpotModel()
    config = TrackerConfig(redetect_interval=5)
    tracker = RGBTTracker(model, config)
    truth = (30, 30, 24, 24)
    tracker.initialize(*scene(truth), truth)
    far = (270, 190, 24, 24)  # beyond any widened local search
    results = [tracker.track(*scene(far)) for _ in range(config.redetect_interval)]
    assert all(r.state is TrackState.LOST for r in results[:-1])
    assert all(not r.redetected for r in results[:-1]) and max(model.batches[: len(results) - 1]) == 1
    last = results[-1]
    assert last.redetected and last.state is TrackState.TRACKING and last.frames_since_seen == 0
    assert last.reason.startswith("re-acquired by full-frame search")
    assert iou(last.box, far) > 0.7
    # One crop per call, through the local search's path: the templates were not re-sent per crop.
    assert set(model.batches) == {1} and len(model.batches) > len(results) + 4
    following = tracker.track(*scene(far))
    assert following.state is TrackState.TRACKING and iou(following.box, far) > 0.7


def test_failed_full_frame_search_stays_lost_and_says_so():
    model = SpotModel()
    tracker = RGBTTracker(model, TrackerConfig(redetect_interval=2))
    truth = (30, 30, 24, 24)
    tracker.initialize(*scene(truth), truth)
    results = [tracker.track(*scene(None)) for _ in range(2)]
    assert results[-1].state is TrackState.LOST and not results[-1].redetected
    assert "full-frame search over" in results[-1].reason and "below redetect_threshold" in results[-1].reason
    np.testing.assert_array_equal(results[-1].box, truth)


def test_no_runaway_after_garbage_frames_or_a_stall():
    rng = np.random.default_rng(0)
    model = SpotModel()
    tracker = RGBTTracker(model)
    truth = (150, 100, 24, 24)
    tracker.initialize(*scene(truth), truth)
    for _ in range(25):  # sensor garbage
        result = tracker.track(rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8),
                               rng.integers(0, 256, (HEIGHT, WIDTH), dtype=np.uint8))
        assert result.state is TrackState.LOST
        np.testing.assert_array_equal(result.box, truth)
        assert result.search_factor <= CONFIG.max_search_factor
    assert tracker.track(*scene(truth)).state is TrackState.TRACKING  # and back
    stale = scene(truth)
    for _ in range(10):  # a stalled camera repeating one frame
        result = tracker.track(*stale)
    assert result.state is TrackState.TRACKING and iou(result.box, truth) > 0.8


def test_dmtrack_memory_takes_no_template_while_lost():
    model = FakeModel(num_templates=3, peaks=(0.9, 0.1, 0.1, 0.9))
    tracker = RGBTTracker(model)
    tracker.initialize(*_frames(10, 10), (140, 100, 40, 40))
    for i in range(1, 6):
        tracker.track(*_frames(10 * (i + 1), 10 * (i + 1)))
    seen = [[int(image[64, 64, 0]) for image in call["templates_rgb"]] for call in model.calls]
    # Frames 2 and 3 (values 30, 40) were LOST: their templates never enter the memory.
    assert seen == [[10], [10, 20], [10, 20], [10, 20], [10, 20, 50]]


def test_a_live_lost_threshold_change_decides_the_next_frame():
    model = SpotModel(hit=0.6)
    tracker = RGBTTracker(model, TrackerConfig(lost_threshold=0.5))
    tracker.initialize(*scene((100, 80, 40, 30)), (100, 80, 40, 30))
    assert tracker.track(*scene((102, 80, 40, 30))).state is TrackState.TRACKING
    tracker.set_lost_threshold(0.95)
    result = tracker.track(*scene((104, 80, 40, 30)))
    assert result.state is TrackState.LOST and "0.95" in result.reason
    tracker.set_lost_threshold(None)  # back to the model's own (here the default)
    assert tracker.policy.lost_threshold == 0.25
