"""Synthetic RGB-T sequences: reproducibility, geometry, every condition's effect, the held-out
image split, the LasHeR layout on disk and `rgbt-track synth`.

Each aspect of a sequence has its own random stream, so two renders of one seed that differ in
a single forced condition differ only by that condition's effect; most checks compare such pairs.
"""
from __future__ import annotations

import numpy as np
import pytest

from rgbt_tracking_ros.cli import main
from rgbt_tracking_ros.data.datasets import read_dataset
from rgbt_tracking_ros.data.synthetic import (
    CONDITIONS,
    EVAL_POOL,
    POLARITIES,
    TRAIN_POOL,
    SyntheticSequence,
    load_image,
    make_sequence,
    sequence_sources,
    write_sequence,
)

SEEDS = (2, 7, 1002, 1007)  # both sides of the split, several kinds of object


def _crop(image: np.ndarray, box: np.ndarray, grow: float = 0.0) -> np.ndarray:
    x, y, w, h = box
    x0, y0 = max(0, int(x - grow)), max(0, int(y - grow))
    return image[y0 : int(np.ceil(y + h + grow)), x0 : int(np.ceil(x + w + grow))]


def _contrast(sequence: SyntheticSequence) -> np.ndarray:
    """Per frame: median counts in the middle of the box minus the median of a ring around it."""
    values = []
    for thermal, box in zip(sequence.thermal, sequence.boxes):
        x, y, w, h = box
        inner = _crop(thermal, np.array([x + 0.3 * w, y + 0.3 * h, 0.4 * w, 0.4 * h])).astype(float)
        ring = np.zeros(thermal.shape, bool)
        x0, y0 = int(max(0, x - w / 2)), int(max(0, y - h / 2))
        ring[y0 : int(y + 1.5 * h), x0 : int(x + 1.5 * w)] = True
        ring[max(0, int(y) - 3) : int(y + h) + 4, max(0, int(x) - 3) : int(x + w) + 4] = False
        values.append(np.median(inner) - np.median(thermal[ring]))
    return np.array(values)


def _target_heat(seed: int, frames: int, *extra: str) -> list[np.ndarray]:
    """Hot minus cold render of one seed: non-zero exactly where the thermal camera sees the target."""
    hot = make_sequence(seed, frames, conditions=("hot", *extra))
    cold = make_sequence(seed, frames, conditions=("cold", *extra))
    return [a.astype(float) - b.astype(float) for a, b in zip(hot.thermal, cold.thermal)]


def test_a_seed_gives_the_same_sequence_every_time():
    first, again, other = (make_sequence(seed, frames=6) for seed in (5, 5, 6))
    assert first.conditions == again.conditions
    np.testing.assert_array_equal(first.boxes, again.boxes)
    for a, b in zip(first.rgb + first.thermal, again.rgb + again.thermal):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first.rgb[0], other.rgb[0])


def test_frames_have_the_camera_layouts():
    sequence = make_sequence(11, frames=4, height=120, width=160)
    assert len(sequence.rgb) == len(sequence.thermal) == 4 and sequence.boxes.shape == (4, 4)
    assert all(frame.shape == (120, 160, 3) and frame.dtype == np.uint8 for frame in sequence.rgb)
    assert all(frame.shape == (120, 160) and frame.dtype == np.uint16 for frame in sequence.thermal)
    assert sequence.boxes.dtype == np.float64
    assert 15000 < np.median(sequence.thermal[0]) < 35000, "radiometric-like counts"
    assert len(set(sequence.conditions) & set(POLARITIES)) == 1 and set(sequence.conditions) <= set(CONDITIONS)


def test_sequences_built_without_conditions_still_work():
    sequence = SyntheticSequence([np.zeros((4, 4, 3), np.uint8)], [np.zeros((4, 4), np.uint16)], np.zeros((1, 4)))
    assert sequence.conditions == ()


def test_forced_conditions_are_used_and_checked():
    assert make_sequence(3, frames=2, conditions=("cold", "fog")).conditions == ("cold", "fog")
    drawn = make_sequence(3, frames=2, conditions=("fog",)).conditions
    assert len(drawn) == 2 and drawn[0] in POLARITIES and drawn[1] == "fog"
    with pytest.raises(ValueError, match="unknown"):
        make_sequence(3, frames=2, conditions=("rain",))
    with pytest.raises(ValueError, match="at most one"):
        make_sequence(3, frames=2, conditions=("hot", "cold"))


def test_targets_move_inside_the_image_at_tracking_sizes():
    for seed in (*range(5), *range(1000, 1005)):
        sequence = make_sequence(seed, frames=30)
        x, y, w, h = sequence.boxes.T
        assert (x >= 0).all() and (y >= 0).all() and (x + w <= 320).all() and (y + h <= 240).all()
        assert 15 <= np.maximum(w, h).min() and np.maximum(w, h).max() <= 75
        centres = sequence.boxes[:, :2] + sequence.boxes[:, 2:] / 2
        assert np.abs(np.diff(centres, axis=0)).max() < 15, "smooth motion"
        assert np.linalg.norm(centres - centres[0], axis=1).max() > 10


@pytest.mark.parametrize("seed", SEEDS)
def test_the_box_is_the_tight_box_of_the_drawn_object(seed):
    for heat, box in zip(_target_heat(seed, 5), make_sequence(seed, 5, conditions=("hot",)).boxes):
        rows, cols = np.nonzero(heat > 0.3 * heat.max())
        found = np.array([cols.min(), rows.min(), cols.max() - cols.min() + 1, rows.max() - rows.min() + 1])
        np.testing.assert_allclose(found, box, atol=2)  # the thermal optics blur edges by ~1 px


def test_sizes_scale_with_the_image():
    small, large = (make_sequence(12, frames=2, height=h, width=w).boxes[0] for h, w in ((240, 320), (480, 640)))
    assert 1.7 < large[2:].max() / small[2:].max() < 2.3


def test_target_size_fixes_the_first_frame_size():
    box = make_sequence(4, frames=2, target_size=(40, 30), conditions=("hot",)).boxes[0]
    assert 36 <= box[2] <= 41 and 26 <= box[3] <= 31


@pytest.mark.parametrize("seed", SEEDS)
def test_hot_targets_are_warmer_and_cold_ones_cooler_than_their_surroundings(seed):
    assert (_contrast(make_sequence(seed, 8, conditions=("hot",))) > 500).all()
    assert (_contrast(make_sequence(seed, 8, conditions=("cold",))) < -500).all()


@pytest.mark.parametrize("seed", SEEDS)
def test_crossover_contrast_changes_sign_through_zero(seed):
    contrast = _contrast(make_sequence(seed, 31, conditions=("crossover",)))
    start, middle, end = contrast[:4].mean(), contrast[14:17].mean(), contrast[-4:].mean()
    assert np.sign(start) == -np.sign(end) and min(abs(start), abs(end)) > 500
    assert abs(middle) < 0.3 * min(abs(start), abs(end))


@pytest.mark.parametrize("seed", SEEDS[:2])
def test_low_light_darkens_and_adds_noise_to_rgb_only(seed):
    normal = make_sequence(seed, 4, conditions=("hot",))
    dark = make_sequence(seed, 4, conditions=("hot", "low_light"))
    assert np.mean(dark.rgb) < 0.35 * np.mean(normal.rgb)
    noise = [np.std(np.diff(frame.astype(float), axis=1)) / max(frame.mean(), 1) for frame in (dark.rgb[0], normal.rgb[0])]
    assert noise[0] > noise[1], "noisier relative to the signal"
    for a, b in zip(dark.thermal, normal.thermal):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("seed", SEEDS[:2])
def test_fog_flattens_rgb_and_thermal_only_mildly(seed):
    clear = make_sequence(seed, 4, conditions=("hot",))
    foggy = make_sequence(seed, 4, conditions=("hot", "fog"))
    assert np.std(foggy.rgb[0]) < 0.5 * np.std(clear.rgb[0])
    ratio = np.std(foggy.thermal[0].astype(float)) / np.std(clear.thermal[0].astype(float))
    assert 0.7 < ratio < 0.97


@pytest.mark.parametrize("seed", SEEDS)
def test_an_occluder_covers_the_target_for_some_frames(seed):
    clear = make_sequence(seed, 30, conditions=("hot",))
    occluded = make_sequence(seed, 30, conditions=("hot", "occlusion"))
    np.testing.assert_array_equal(clear.boxes, occluded.boxes)
    covered = np.array([
        (np.abs(_crop(a, box).astype(int) - _crop(b, box).astype(int)).max(axis=2) > 20).mean()
        for a, b, box in zip(clear.rgb, occluded.rgb, clear.boxes)
    ])
    assert covered.max() > 0.3 and covered.min() < 0.05
    hidden = [np.abs(_crop(a.astype(int) - b.astype(int), box)).mean()
              for a, b, box in zip(clear.thermal, occluded.thermal, clear.boxes)]
    assert max(hidden) > 300, "the occluder hides the target from the thermal camera too"


@pytest.mark.parametrize("seed", SEEDS)
def test_misalignment_moves_the_thermal_target_but_not_the_rgb_box(seed):
    def centroids(*extra: str) -> np.ndarray:
        weights = [np.clip(heat, 0, None) for heat in _target_heat(seed, 3, *extra)]
        rows, cols = np.indices(weights[0].shape)
        return np.array([[(cols * w).sum() / w.sum(), (rows * w).sum() / w.sum()] for w in weights])

    aligned = make_sequence(seed, 3, conditions=("hot",)).boxes
    np.testing.assert_array_equal(make_sequence(seed, 3, conditions=("hot", "misalignment")).boxes, aligned)
    centres = centroids()
    assert ((centres > aligned[:, :2]) & (centres < aligned[:, :2] + aligned[:, 2:])).all()
    assert (np.linalg.norm(centroids("misalignment") - centres, axis=1) > 2.5).all()


@pytest.mark.parametrize("seed", SEEDS)
def test_scale_change_grows_or_shrinks_the_target_steadily(seed):
    areas = make_sequence(seed, 31, conditions=("hot", "scale_change")).boxes[:, 2:].prod(axis=1)
    ratio = areas[-1] / areas[0]
    assert ratio > 1.3 or ratio < 1 / 1.3
    steps = np.sign(np.diff(areas[::5]))
    assert (steps == steps[0]).all()
    steady = make_sequence(seed, 31, conditions=("hot",)).boxes[:, 2:].prod(axis=1)
    assert 0.75 < steady.max() / steady.min() < 1.33


def test_camera_motion_moves_the_background():
    def background_change(*extra: str) -> float:
        sequence = make_sequence(9, 20, conditions=("hot", *extra))
        away = np.ones(sequence.thermal[0].shape, bool)
        for box in sequence.boxes:
            _crop(away, box, grow=10)[:] = False
        first, last = (frame.astype(float)[away] for frame in (sequence.rgb[0], sequence.rgb[-1]))
        return float(np.abs(first - last).mean())

    assert background_change("camera_motion") > 3 * background_change()


def test_evaluation_seeds_use_only_held_out_images():
    assert not TRAIN_POOL.names() & EVAL_POOL.names()
    training = set().union(*(sequence_sources(seed) for seed in range(300)))
    evaluation = set().union(*(sequence_sources(seed) for seed in range(1000, 1300)))
    assert training <= TRAIN_POOL.names() and evaluation <= EVAL_POOL.names()
    assert not training & evaluation
    assert len(evaluation) >= 10, "the draw spreads over the held-out pool"
    assert len(sequence_sources(1000, ("hot", "occlusion"))) > len(sequence_sources(1000, ("hot",)))


def test_every_pooled_image_ships_with_scikit_image():
    for pool in (TRAIN_POOL, EVAL_POOL):
        for name in {*pool.backgrounds, *pool.textures, *pool.silhouettes, *pool.cutouts}:
            image = load_image(name)
            assert image.ndim == 3 and image.dtype == np.uint8 and min(image.shape[:2]) >= 100


def test_a_written_sequence_reads_back_as_lasher(tmp_path):
    sequence = make_sequence(1003, frames=5, height=120, width=160)
    write_sequence(sequence, tmp_path / "synth_1003")
    [read] = read_dataset("lasher", tmp_path)
    assert read.name == "synth_1003" and len(read) == 5
    np.testing.assert_allclose(read.truth["visible"], sequence.boxes, atol=0.01)
    np.testing.assert_allclose(read.truth["infrared"], sequence.boxes, atol=0.01)
    assert np.abs(read.rgb(4).astype(float) - sequence.rgb[4]).mean() < 6
    thermal = read.thermal(4)
    assert thermal.shape == (120, 160, 3) and thermal.dtype == np.uint8
    assert np.corrcoef(thermal[..., 0].ravel(), sequence.thermal[4].ravel())[0, 1] > 0.95


def test_synth_command_writes_one_lasher_folder_per_seed(tmp_path, capsys):
    args = ["synth", str(tmp_path), "--seeds", "1000", "5", "--frames", "3", "--height", "120", "--width", "160"]
    assert main(args) == 0
    for seed in (1000, 5):
        folder = tmp_path / f"synth_{seed}"
        assert len(list((folder / "visible").glob("*.jpg"))) == 3
        assert len(list((folder / "infrared").glob("*.jpg"))) == 3
        assert len((folder / "init.txt").read_text().splitlines()) == 3
    assert "wrote 2 sequences" in capsys.readouterr().out
