"""The online discriminative target model (tracker/target_model.py) and its use by the tracker."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from rgbt_tracking_ros.models.loading import load_model
from rgbt_tracking_ros.tracker import RGBTTracker, TrackerConfig
from rgbt_tracking_ros.tracker.target_model import (
    DiscriminativeTargetModel,
    InstanceMatcher,
    TargetModelConfig,
    refine_peak,
)

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
GRID = 32
CHANNELS = 48


def _pattern(seed: int, size: int = 7) -> torch.Tensor:
    """An object's (C, size, size) features: a different unit vector in every cell."""
    pattern = torch.randn(CHANNELS, size, size, generator=torch.Generator().manual_seed(seed))
    return pattern / pattern.norm(dim=0, keepdim=True)


def _appearances(similarity: float = 0.85) -> tuple[torch.Tensor, torch.Tensor]:
    """A target and a look-alike whose features have the given cosine similarity."""
    target, other = _pattern(100), _pattern(101)
    return target, similarity * target + (1 - similarity**2) ** 0.5 * other


def _scene(objects: list[tuple[torch.Tensor, int, int]], seed: int) -> torch.Tensor:
    """(C, H, W) features: background noise, with each (pattern, row, col) object on it."""
    generator = torch.Generator().manual_seed(seed)
    features = 0.3 * torch.randn(CHANNELS, GRID, GRID, generator=generator) / CHANNELS**0.5
    for pattern, row, col in objects:
        half = pattern.shape[-1] // 2
        features[:, row - half : row + half + 1, col - half : col + half + 1] += pattern
    return features


def _peak_near(response: torch.Tensor, row: int, col: int) -> bool:
    """The response's maximum is within a cell of (row, col)."""
    peak_row, peak_col, _ = refine_peak(response)
    return abs(peak_row - row) <= 1 and abs(peak_col - col) <= 1


def test_the_filter_prefers_the_target_over_a_look_alike_beside_it():
    target, look_alike = _appearances()
    model = DiscriminativeTargetModel()
    model.fit(_scene([(target, 16, 16), (look_alike, 16, 25)], seed=1), (16, 16), (7, 7))
    # Next frame: the look-alike has moved onto the target's old place, the target beside it.
    response = model.respond(_scene([(look_alike, 16, 16), (target, 16, 7)], seed=2))
    assert _peak_near(response, 16, 7)
    assert float(response[16, 7]) > 2 * float(response[16, 16])


def test_plain_template_matching_would_take_the_look_alike():
    """The check above is not trivial: correlating the target's own features (no negatives)
    scores the look-alike almost as high as the target, so any motion prior favouring the
    old place takes the look-alike."""
    target, look_alike = _appearances()
    frame = _scene([(look_alike, 16, 16), (target, 16, 7)], seed=2)

    def match(row: int, col: int) -> float:
        return float((frame[:, row - 3 : row + 4, col - 3 : col + 4] * target).sum())

    assert match(16, 16) > 0.7 * match(16, 7)


def test_fit_is_deterministic():
    target, look_alike = _appearances()
    features = _scene([(target, 12, 14), (look_alike, 20, 22)], seed=3)
    first, second = DiscriminativeTargetModel(), DiscriminativeTargetModel()
    first.fit(features, (12, 14), (7, 7))
    second.fit(features.clone(), (12, 14), (7, 7))
    assert torch.equal(first.filter, second.filter)
    assert torch.equal(first.respond(features), second.respond(features))


def test_refresh_learns_a_changed_appearance():
    target, look_alike = _appearances()
    changed = _appearances(0.5)[1]  # the target's appearance after a turn: half its old self
    config = TargetModelConfig(learning_rate=0.5)
    static, refreshed = DiscriminativeTargetModel(config), DiscriminativeTargetModel(config)
    first = _scene([(target, 16, 16)], seed=4)
    static.fit(first, (16, 16), (7, 7))
    refreshed.fit(first, (16, 16), (7, 7))
    for seed in range(5, 8):
        refreshed.update(_scene([(changed, 16, 16)], seed=seed), (16, 16))
    probe = _scene([(changed, 16, 10)], seed=9)
    # The first frame's filter answers the new appearance below zero; the refreshed one well above.
    assert float(refreshed.respond(probe)[16, 10]) > float(static.respond(probe)[16, 10]) + 0.15
    assert _peak_near(refreshed.respond(probe), 16, 10)


def test_memory_is_bounded_and_keeps_the_first_frame():
    target, _ = _appearances()
    model = DiscriminativeTargetModel(TargetModelConfig(memory=3))
    first = _scene([(target, 16, 16)], seed=4)
    model.fit(first, (16, 16), (7, 7))
    for seed in range(10, 16):
        model.update(_scene([(target, 16, 16)], seed=seed), (16, 16))
    assert len(model._samples) == 3
    assert torch.equal(model._samples[0][0], model._spectrum(model.project(first)))
    assert sum(model._weights) == pytest.approx(1.0)


def test_the_stacked_frames_operator_and_its_transpose_agree():
    """<A f, r> = <f, A^T r> summed over the training frames: the solver's normal equations
    take the transpose's sum over frames on the spectra, in one inverse FFT."""
    target, other = _appearances()
    model = DiscriminativeTargetModel(TargetModelConfig(memory=4))
    model.fit(_scene([(target, 16, 16), (other, 8, 24)], seed=1), (16, 16), (7, 7))
    for seed in (2, 3, 4):
        model.update(_scene([(target, 15, 17)], seed=seed), (15, 17))
    spectra = torch.stack([spectrum for spectrum, _ in model._samples])
    generator = torch.Generator().manual_seed(0)
    filt = torch.randn(model.filter.shape, generator=generator)
    residuals = torch.randn(len(model._samples), GRID, GRID, generator=generator)
    forward = model._apply(spectra, model._kernel(filt, GRID, GRID), GRID, GRID)
    assert forward.shape == residuals.shape
    lhs = float((forward * residuals).sum())
    rhs = float((filt * model._apply_transposed(spectra, residuals)).sum())
    assert lhs == pytest.approx(rhs, rel=1e-4)
    # Frame by frame, the same forward maps.
    for index, (spectrum, _) in enumerate(model._samples):
        alone = model._apply(spectrum, model._kernel(filt, GRID, GRID), GRID, GRID)
        assert torch.allclose(alone, forward[index], atol=1e-5)


@pytest.mark.parametrize(("size", "height", "width"), [((7.0, 7.0), GRID, GRID), ((5.0, 9.0), 24, 24),
                                                      ((23.0, 13.0), 24, 20)])
def test_the_response_is_the_zero_padded_correlation(size, height, width):
    """The FFTs' padded grid (lengths with small prime factors) leaves no wrap-around: the
    response equals the filter's "same" correlation with the projected features, zero
    outside the grid, also for a filter as large as the grid."""
    generator = torch.Generator().manual_seed(5)
    features = torch.randn(CHANNELS, height, width, generator=generator)
    model = DiscriminativeTargetModel()
    model.fit(features, (height / 2, width / 2), size)
    kh, kw = model.filter.shape[-2:]
    direct = torch.nn.functional.conv2d(model.project(features)[None], model.filter, padding=(kh // 2, kw // 2))
    response = model.respond(features)
    assert response.shape == (height, width)
    assert torch.allclose(response, direct[0, 0], atol=1e-5 * float(direct.abs().max()))


def _size_maps(slope: float, size: float = 0.3) -> dict[float, torch.Tensor]:
    """Head size maps on crops at three scales of the first box, for a head whose size
    follows the crop scale with the given log-log slope."""
    return {scale: torch.full((1, 2, 12, 12), size * scale**slope) for scale in (0.8, 1.0, 1.25)}


def test_size_trust_follows_how_far_the_head_follows_scale():
    for slope, trust in ((-1.0, 1.0), (-0.6, 1.0), (-0.4, 0.5), (-0.2, 0.0), (0.0, 0.0), (0.3, 0.0)):
        matcher = InstanceMatcher()
        assert matcher.measure_size_response(_size_maps(slope)) == pytest.approx(slope, abs=1e-5)
        assert matcher.size_trust == pytest.approx(trust, abs=1e-4), slope
    with pytest.raises(ValueError, match="two scales"):
        InstanceMatcher().measure_size_response({1.0: torch.ones(1, 2, 12, 12)})
    for bad in (dict(size_probe=0.8), dict(size_trust_slopes=(0.6, 0.2)), dict(size_trust_slopes=(-0.1, 0.5))):
        with pytest.raises(ValueError, match="size_probe|size_trust_slopes"):
            TargetModelConfig(**bad)


def test_a_head_that_does_not_follow_scale_leaves_the_size():
    """A confident frame whose head says "twice as large": a head that followed the crop's
    scale on the first frame moves the size; one that did not leaves it."""
    target, _ = _appearances()
    scene = _scene([(target, 16, 16)], seed=1)
    sizes = {}
    for slope in (-1.0, 0.0):
        matcher = InstanceMatcher()
        matcher.fit(scene[None], torch.full((1, 2, 12, 12), 0.25), (0.25, 0.25))
        matcher.measure_size_response(_size_maps(slope, 0.25))
        score = torch.zeros(1, 1, 12, 12)
        boxes, _ = matcher.locate(scene[None], score, torch.full((1, 2, 12, 12), 0.5), (0.25, 0.25))
        sizes[slope] = float(boxes[0, 2])
    assert sizes[-1.0] > 0.25 * 1.04 and sizes[0.0] == pytest.approx(0.25)


def test_the_shipped_head_follows_scale_on_a_synthetic_sequence():
    """The head learned scale on sequences like this one: probed on its first frame it earns
    full trust (slopes measured: -0.72 to -1.05 on the held-out synthetic sequences, against
    -0.09 to -0.47 on the six real ones of ../shared/data)."""
    from rgbt_tracking_ros.data.synthetic import make_sequence

    sequence = make_sequence(1002, frames=1, height=240, width=320)
    tracker = RGBTTracker(load_model("compact_rgbt"))
    tracker.initialize(sequence.rgb[0], sequence.thermal[0], sequence.boxes[0])
    assert tracker._matcher is not None and tracker._matcher.size_slope is not None
    assert tracker._matcher.size_slope < -0.6 and tracker._matcher.size_trust == 1.0


def test_refine_peak_finds_a_sub_cell_maximum():
    rows, cols = torch.meshgrid(torch.arange(GRID), torch.arange(GRID), indexing="ij")
    response = torch.exp(-((rows - 10.3) ** 2 + (cols - 20.6) ** 2) / 8.0)
    row, col, peak = refine_peak(response)
    assert row == pytest.approx(10.3, abs=0.1) and col == pytest.approx(20.6, abs=0.1)
    assert 0.9 < peak <= 1.0


def _two_look_alikes(target_x: int, other_x: int) -> np.ndarray:
    """A 320 x 240 grey frame with two discs of the same size and brightness: the target
    with a dark bar across it, the look-alike with a dark ring."""
    import cv2

    frame = np.full((240, 320, 3), 90, np.uint8)
    cv2.circle(frame, (target_x, 120), 18, (220, 200, 160), -1)
    cv2.rectangle(frame, (target_x - 18, 116), (target_x + 18, 124), (40, 40, 40), -1)
    cv2.circle(frame, (other_x, 120), 18, (220, 200, 160), -1)
    cv2.circle(frame, (other_x, 120), 10, (40, 40, 40), 4)
    return frame


def test_tracker_keeps_the_target_where_the_learned_map_takes_the_look_alike():
    """The shipped model on two look-alikes: the look-alike steps next to the target's old
    place and the target steps aside by 0.8 of its size (inside the search crop of 3 sizes).
    The learned score map alone follows the look-alike; with the target model on, the
    tracker stays on the target."""
    box = (160 - 20, 100, 40, 40)
    first, second = _two_look_alikes(160, 215), _two_look_alikes(128, 165)
    centres = {}
    for enabled in (False, True):
        tracker = RGBTTracker(load_model("compact_rgbt"), TrackerConfig(target_model=enabled))
        tracker.initialize(first, first, box)
        x, _, w, _ = tracker.track(second, second).box
        centres[enabled] = x + w / 2
    assert abs(centres[False] - 165) < abs(centres[False] - 128), centres
    assert abs(centres[True] - 128) < 10, centres


def test_target_model_is_on_for_the_default_model_only():
    compact = RGBTTracker(load_model("compact_rgbt"))
    assert compact._use_target_model
    assert not RGBTTracker(load_model("compact_rgbt"), TrackerConfig(target_model=False))._use_target_model
    from rgbt_tracking_ros.models.registry import load_model_config

    for name in ("ainet_256", "dmtrack_rgbt"):
        assert not (load_model_config(name).get("tracker") or {}).get("target_model", False), name


def test_search_features_come_with_the_model_call():
    model = load_model("compact_rgbt").eval()
    template = torch.zeros(1, 3, model.template_size, model.template_size)
    search = torch.zeros(1, 3, model.search_size, model.search_size)
    with torch.inference_mode():
        output = model.track_search(model.encode_templates(template, template), search, search)
    grid = model.search_size // 8
    assert output["search_features"].shape == (1, model.SEARCH_FEATURE_CHANNELS, grid, grid)
    assert sum(model.SEARCH_FEATURE_GROUPS) == model.SEARCH_FEATURE_CHANNELS


def test_default_tracker_on_a_real_sequence():
    """otb_Human3 (a person walking through a cluttered street, 199 frames): the model's own
    score map scored SR 10.3 on it; with the target model the default tracker must stay
    well above that."""
    folder = SHARED_DATA / "otb_Human3"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent: the shared OTB-style sequences live in ../shared/data beside the project")
    from rgbt_tracking_ros.data.datasets import read_otb
    from rgbt_tracking_ros.eval.metrics import score_results
    from rgbt_tracking_ros.eval.runner import track_sequence

    (sequence,) = read_otb(folder)
    run = track_sequence(RGBTTracker(load_model("compact_rgbt")), sequence)
    scores = score_results({sequence.name: run.boxes}, {sequence.name: (sequence.truth["visible"],)}, sequence.protocol)
    assert scores.sr > 0.30, f"SR {100 * scores.sr:.1f}"


def test_lost_threshold_calibration_separates_on_and_off_target_crops():
    """The crops the compact model's lost_threshold was set from (eval/calibration.py): on a
    real sequence the confidence on the target stays above the shipped threshold, a crop
    away it stays below, and measuring moves nothing."""
    folder = SHARED_DATA / "otb_Human3"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent: the shared OTB-style sequences live in ../shared/data beside the project")
    from rgbt_tracking_ros.data.datasets import read_otb
    from rgbt_tracking_ros.eval.calibration import crop_peaks

    (sequence,) = read_otb(folder)
    tracker = RGBTTracker(load_model("compact_rgbt"))
    peaks = crop_peaks(tracker, sequence, step=20)
    on, off = peaks.on, peaks.off
    np.testing.assert_allclose(tracker.box, sequence.truth["visible"][0])
    threshold = tracker.policy.lost_threshold
    assert len(on) >= 8 and len(off) >= 8, (len(on), len(off))
    assert np.median(on) > threshold > np.median(off), (threshold, on, off)
    assert np.mean(np.array(on) >= threshold) >= 0.8, on
    # The full-frame search's raw peaks: higher on the target, and no off-target crop reaches
    # redetect_threshold.
    assert len(peaks.raw_on) == len(on) and len(peaks.raw_off) == len(off)
    assert np.median(peaks.raw_on) > np.median(peaks.raw_off), peaks
    assert max(peaks.raw_off) < tracker.policy.redetect_threshold, peaks
