"""RGBTTracker against fake models whose output, and so the expected box, is known by hand."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from rgbt_tracking_ros.models.protocol import Geometry
from rgbt_tracking_ros.tracker import RGBTTracker, TrackerConfig, TrackState

HEIGHT, WIDTH = 240, 320
MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)


def _pixels(images: torch.Tensor) -> list[np.ndarray]:
    """Undo the normalisation of (1, 3, S, S) or (1, k, 3, S, S): k uint8 (S, S, 3) images."""
    stacked = images.reshape(-1, 3, images.shape[-2], images.shape[-1]).float().cpu()
    values = ((stacked * STD + MEAN) * 255.0).round().clamp(0, 255).to(torch.uint8)
    return [image.permute(1, 2, 0).numpy().copy() for image in values]


def _hann(index: int) -> float:
    """The official 1-D Hann weight of 0-based cell `index` on the 16-cell map."""
    return 0.5 * (1 - math.cos(2 * math.pi * (index + 1) / 17))


class FakeModel(nn.Module):
    """Score map with one peak at `cell` (plus an optional decoy at the corner cell (0, 0)).

    Records, per call, the template count and the de-normalised input images.
    """

    def __init__(
        self,
        num_templates: int = 1,
        cell: tuple[int, int] = (8, 8),
        offset: tuple[float, float] = (0.0, 0.0),
        size: tuple[float, float] = (0.25, 0.25),
        peaks: tuple[float, ...] = (0.9,),
        decoy: float = 0.0,
    ):
        super().__init__()
        self.num_templates = num_templates
        self.geometry = Geometry(template_size=128, search_size=256, num_templates=num_templates)
        self.anchor = nn.Parameter(torch.zeros(()))
        self.cell, self.offset, self.size, self.peaks, self.decoy = cell, offset, size, peaks, decoy
        self.calls: list[dict] = []
        self.fail = False

    def encode_templates(self, template_rgb, template_x):
        return torch.stack([template_rgb, template_x])

    def track_search(self, templates, search_rgb, search_x):
        return self(templates[0], templates[1], search_rgb, search_x)

    def forward(self, template_rgb, template_x, search_rgb, search_x):
        if self.fail:
            raise RuntimeError("model failure")
        if self.num_templates == 1:
            assert template_rgb.shape == template_x.shape == (1, 3, 128, 128)
        else:
            assert template_rgb.ndim == 5 and template_rgb.shape[2:] == (3, 128, 128)
            assert template_x.shape == template_rgb.shape
        assert search_rgb.shape == search_x.shape == (1, 3, 256, 256)
        self.calls.append(
            {
                "templates_rgb": _pixels(template_rgb),
                "templates_x": _pixels(template_x),
                "search_rgb": _pixels(search_rgb)[0],
                "search_x": _pixels(search_x)[0],
                "inference_mode": torch.is_inference_mode_enabled(),
                "training": self.training,
            }
        )
        row, col = self.cell
        score = torch.zeros(1, 1, 16, 16)
        score[0, 0, row, col] = self.peaks[min(len(self.calls), len(self.peaks)) - 1]
        score[0, 0, 0, 0] = self.decoy
        size_map = torch.zeros(1, 2, 16, 16)
        size_map[0, :, row, col] = torch.tensor(self.size)
        offset_map = torch.zeros(1, 2, 16, 16)
        offset_map[0, :, row, col] = torch.tensor(self.offset)
        return {
            "score_map": score,
            "size_map": size_map,
            "offset_map": offset_map,
            "pred_boxes": torch.zeros(1, 1, 4),
        }


def _frames(rgb_value: int = 100, thermal_value: int = 60) -> tuple[np.ndarray, np.ndarray]:
    return (
        np.full((HEIGHT, WIDTH, 3), rgb_value, np.uint8),
        np.full((HEIGHT, WIDTH), thermal_value, np.uint8),
    )


def test_track_returns_the_hand_computed_box_and_windowed_confidence():
    model = FakeModel(cell=(9, 6), offset=(0.25, 0.5), size=(0.1, 0.2), peaks=(0.9,), decoy=0.95)
    model.train()
    tracker = RGBTTracker(model, TrackerConfig())
    assert not model.training
    tracker.initialize(*_frames(), (100, 80, 40, 30))

    box, confidence, state = tracker.track(*_frames())
    # Search crop ceil(sqrt(1200) * 4) = 139 pixels; half side 69.5; previous centre (120, 95).
    # cx = 6.25 / 16 * 139 = 54.296875 -> 120 - 69.5 + 54.296875 = 104.796875, w = 13.9;
    # cy = 9.5 / 16 * 139 = 82.53125 -> 95 - 69.5 + 82.53125 = 108.03125, h = 27.8.
    assert isinstance(box, np.ndarray) and box.dtype == np.float64 and box.shape == (4,)
    np.testing.assert_allclose(box, [97.846875, 94.13125, 13.9, 27.8], atol=1e-4)
    # The raw decoy (0.95 in the corner) loses to the peak once the Hann window is applied.
    assert isinstance(confidence, float)
    assert confidence == pytest.approx(0.9 * _hann(9) * _hann(6), rel=1e-6)
    assert state is TrackState.TRACKING
    np.testing.assert_allclose(tracker.box, box)

    box, _, _ = tracker.track(*_frames())
    # Crop ceil(sqrt(13.9 * 27.8) * 4) = 79, half 39.5, centre (104.796875, 108.03125):
    # cx = 6.25 / 16 * 79 = 30.859375 -> 96.15625, w = 7.9 -> clipped up to the margin of 10;
    # cy = 9.5 / 16 * 79 = 46.90625 -> 115.4375, h = 15.8.
    np.testing.assert_allclose(box, [92.20625, 107.5375, 10.0, 15.8], atol=1e-4)
    assert tracker.age == 2
    assert all(call["inference_mode"] and not call["training"] for call in model.calls)


def test_templates_and_search_are_cut_around_the_right_boxes():
    rgb, thermal = _frames(rgb_value=0, thermal_value=0)
    rgb[80:112, 100:132] = 250  # the target, a 32 x 32 square centred on (116, 96)
    thermal[80:112, 100:132] = 120
    model = FakeModel(size=(0.25, 0.25))
    tracker = RGBTTracker(model)
    tracker.initialize(rgb, thermal, (100, 80, 32, 32))
    box, _, _ = tracker.track(rgb, thermal)
    # Template: crop 64 -> x2 -> the square covers 32..95. Search: crop 128 -> x2 -> 96..159.
    call = model.calls[0]
    for image, value, start, stop in (
        (call["templates_rgb"][0], 250, 32, 96),
        (call["templates_x"][0], 120, 32, 96),
        (call["search_rgb"], 250, 96, 160),
        (call["search_x"], 120, 96, 160),
    ):
        inside = image[start + 1 : stop - 1, start + 1 : stop - 1]
        assert (inside == value).all()
        assert not image[: start - 1].any() and not image[:, stop + 1 :].any()
    # Peak at the map centre with size 0.25 * 128 = 32: the state stays on the square.
    np.testing.assert_allclose(box, [100, 80, 32, 32])


def test_dmtrack_memory_slides_over_the_latest_templates():
    model = FakeModel(num_templates=3, size=(0.25, 0.25))
    tracker = RGBTTracker(model)
    # Frame i is uniform: RGB 10 * (i + 1), thermal 7 * (i + 1) + 3; frame 0 initialises.
    tracker.initialize(*_frames(10, 10), (140, 100, 40, 40))
    for i in range(1, 6):
        box, _, _ = tracker.track(*_frames(10 * (i + 1), 7 * (i + 1) + 3))
        np.testing.assert_allclose(box, [140, 100, 40, 40])

    def fingerprints(call: dict, key: str) -> list[int]:
        return [int(image[..., 0].mean().round()) for image in call[key]]

    rgb_seen = [fingerprints(call, "templates_rgb") for call in model.calls]
    assert rgb_seen == [[10], [10, 20], [10, 20, 30], [20, 30, 40], [30, 40, 50]]
    thermal_seen = [fingerprints(call, "templates_x") for call in model.calls]
    assert thermal_seen == [[10], [10, 17], [10, 17, 24], [17, 24, 31], [24, 31, 38]]
    assert [int(call["search_rgb"][0, 0, 0]) for call in model.calls] == [20, 30, 40, 50, 60]


def test_ainet_keeps_the_first_template():
    model = FakeModel(num_templates=1)
    tracker = RGBTTracker(model)
    tracker.initialize(*_frames(10, 10), (140, 100, 40, 40))
    for i in range(1, 4):
        tracker.track(*_frames(10 * (i + 1), 10 * (i + 1)))
    assert all(int(call["templates_rgb"][0][64, 64, 0]) == 10 for call in model.calls)


def test_low_confidence_is_lost_and_frames_since_seen_counts():
    # Centre cell (7, 7): window 0.99149 ** 2 = 0.983; 0.1 -> 0.098 < 0.25, 0.9 -> 0.885.
    model = FakeModel(cell=(7, 7), peaks=(0.9, 0.1, 0.1, 0.9, 0.1))
    tracker = RGBTTracker(model, TrackerConfig(lost_threshold=0.25))
    tracker.initialize(*_frames(), (140, 100, 40, 40))
    assert (tracker.age, tracker.frames_since_seen) == (0, 0)
    states, unseen = [], []
    for _ in range(5):
        _, _, state = tracker.track(*_frames())
        states.append(state)
        unseen.append(tracker.frames_since_seen)
    T, L = TrackState.TRACKING, TrackState.LOST
    assert states == [T, L, L, T, L]
    assert unseen == [0, 1, 2, 0, 1]
    assert tracker.age == 5


def test_lost_threshold_is_configurable():
    model = FakeModel(cell=(7, 7), peaks=(0.9,))
    tracker = RGBTTracker(model, TrackerConfig(lost_threshold=0.95))
    tracker.initialize(*_frames(), (140, 100, 40, 40))
    assert tracker.track(*_frames()).state is TrackState.LOST


def _step_thermal(height: int, width: int, step_col: int) -> np.ndarray:
    thermal = np.full((height, width), 1000, np.uint16)
    thermal[:, step_col:] = 3000
    return thermal


def _assert_step_in_template(template: np.ndarray) -> None:
    # Box (144, 104, 32, 32): template crop 64 from RGB column 128, x2. The step at RGB
    # column 160 lands at template column 64 (min-max: 1000 -> 0, 3000 -> 255), blurred by
    # at most two bilinear resizes: template columns 61..66 may hold grey levels.
    assert not template[:, :61].any()
    assert (template[:, 67:] == 255).all()


def test_smaller_uint16_thermal_is_stretched_and_resized_onto_rgb():
    model = FakeModel()
    tracker = RGBTTracker(model)
    rgb = np.full((HEIGHT, WIDTH, 3), 100, np.uint8)
    thermal = _step_thermal(HEIGHT // 2, WIDTH // 2, 80)  # column 80 -> RGB column 160
    tracker.initialize(rgb, thermal, (144, 104, 32, 32))
    box, _, state = tracker.track(rgb, thermal)
    _assert_step_in_template(model.calls[0]["templates_x"][0])
    np.testing.assert_allclose(box, [144, 104, 32, 32])  # RGB pixels, not thermal pixels
    assert state is TrackState.TRACKING


def test_homography_aligns_thermal_onto_rgb():
    shift = np.array([[1.0, 0.0, 20.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    model = FakeModel()
    tracker = RGBTTracker(model, TrackerConfig(homography=shift))
    rgb = np.full((HEIGHT, WIDTH, 3), 100, np.uint8)
    tracker.initialize(rgb, _step_thermal(HEIGHT, WIDTH, 140), (144, 104, 32, 32))
    tracker.track(rgb, _step_thermal(HEIGHT, WIDTH, 140))
    _assert_step_in_template(model.calls[0]["templates_x"][0])


def test_track_before_initialize_raises():
    tracker = RGBTTracker(FakeModel())
    with pytest.raises(RuntimeError, match="before initialize"):
        tracker.track(*_frames())


def test_bad_initial_box_leaves_tracker_uninitialised():
    tracker = RGBTTracker(FakeModel())
    with pytest.raises(ValueError, match="NaN"):
        tracker.initialize(*_frames(), (np.nan, 10, 20, 20))
    with pytest.raises(ValueError, match="does not overlap"):
        tracker.initialize(*_frames(), (WIDTH + 5, 10, 20, 20))
    assert not tracker.initialized and tracker.box is None


def test_bad_inputs_raise_and_leave_state_unchanged():
    model = FakeModel(num_templates=3, peaks=(0.9, 0.1))
    tracker = RGBTTracker(model)
    tracker.initialize(*_frames(10, 10), (140, 100, 40, 40))
    tracker.track(*_frames(20, 20))
    tracker.track(*_frames(30, 30))  # LOST: frames_since_seen = 1
    before = (tracker.box, tracker.age, tracker.frames_since_seen)
    rgb, thermal = _frames(40, 40)

    bad_calls = [
        (ValueError, "must be uint8", lambda: tracker.track(rgb.astype(np.float32), thermal)),
        (ValueError, r"\(H, W, 3\)", lambda: tracker.track(rgb[:, :, :2], thermal)),
        (ValueError, "dtype", lambda: tracker.track(rgb, thermal.astype(np.int32))),
        (ValueError, "empty", lambda: tracker.track(rgb, thermal[:0])),
        (ValueError, "positive width", lambda: tracker.initialize(rgb, thermal, (5, 5, 0, 9))),
        (ValueError, "exactly 4", lambda: tracker.initialize(rgb, thermal, (5, 5, 9))),
    ]
    for error, message, call in bad_calls:
        with pytest.raises(error, match=message):
            call()
    model.fail = True
    with pytest.raises(RuntimeError, match="model failure"):
        tracker.track(rgb, thermal)
    model.fail = False
    model.size = (float("nan"), 0.25)
    with pytest.raises(RuntimeError, match="non-finite box"):
        tracker.track(rgb, thermal)
    model.size = (0.25, 0.25)

    np.testing.assert_array_equal(tracker.box, before[0])
    assert (tracker.age, tracker.frames_since_seen) == before[1:]
    tracker.track(rgb, thermal)
    # The failed calls added no template: memory holds frames 0, 1, 2 (values 10, 20, 30).
    last = model.calls[-1]["templates_rgb"]
    assert [int(image[64, 64, 0]) for image in last] == [10, 20, 30]
    assert tracker.age == before[1] + 1


def test_wrong_model_output_shape_is_reported():
    model = FakeModel()
    model.geometry = Geometry(template_size=128, search_size=256, stride=32)  # 8 x 8; the maps stay 16 x 16
    tracker = RGBTTracker(model)
    tracker.initialize(*_frames(), (140, 100, 40, 40))
    with pytest.raises(RuntimeError, match="score_map"):
        tracker.track(*_frames())
    assert tracker.age == 0


def test_reset_forgets_the_target():
    tracker = RGBTTracker(FakeModel())
    tracker.initialize(*_frames(), (140, 100, 40, 40))
    tracker.track(*_frames())
    tracker.reset()
    assert not tracker.initialized and tracker.box is None and tracker.age == 0
    with pytest.raises(RuntimeError, match="before initialize"):
        tracker.track(*_frames())


def test_returned_box_is_a_copy():
    tracker = RGBTTracker(FakeModel())
    tracker.initialize(*_frames(), (140, 100, 40, 40))
    box, _, _ = tracker.track(*_frames())
    box[0] = -1.0
    assert tracker.box[0] == 140


def test_cuda_request_without_cuda_raises(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for device in ("cuda", "cuda:1"):
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            RGBTTracker(FakeModel(), TrackerConfig(device=device))


def test_half_on_cpu_raises():
    with pytest.raises(ValueError, match="half precision needs a CUDA device"):
        RGBTTracker(FakeModel(), TrackerConfig(half=True))


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (TrackerConfig(device="tpu"), "'cpu' or 'cuda"),
        (TrackerConfig(device="meta"), "'cpu' or 'cuda"),
        (TrackerConfig(thermal_mode="fixed"), "needs value_range"),
        (TrackerConfig(homography=np.zeros((3, 3))), "singular"),
        (TrackerConfig(search_factor=0.0), "positive"),
    ],
)
def test_bad_config_raises(config, message):
    with pytest.raises(ValueError, match=message):
        RGBTTracker(FakeModel(), config)


def test_model_without_the_interface_attributes_is_rejected():
    with pytest.raises(ValueError, match="model protocol.*geometry"):
        RGBTTracker(nn.Linear(2, 2))
