"""Crop, Hann window, map-back and clipping against cases computed by hand."""
from __future__ import annotations

import math

import numpy as np
import pytest

from rgbt_tracking_ros.tracker.geometry import (
    clip_box,
    crop_square,
    hann_window,
    map_box_back,
    validate_box,
)

WIDTH, HEIGHT = 100, 80


@pytest.fixture
def coded_image() -> np.ndarray:
    """100 wide x 80 high; pixel (y, x) = (2*(x+1), 2*(y+1), 200), so no pixel is 0."""
    image = np.zeros((HEIGHT, WIDTH, 3), dtype=np.uint8)
    image[:, :, 0] = 2 * (np.arange(WIDTH) + 1)[None, :]
    image[:, :, 1] = 2 * (np.arange(HEIGHT) + 1)[:, None]
    image[:, :, 2] = 200
    return image


def test_crop_bottom_right_corner_pads_and_drops_last_row_and_column(coded_image):
    # crop = ceil(sqrt(64) * 2) = 16; x1 = round(88 + 4 - 8) = 84, y1 = round(70 + 4 - 8) = 66.
    # x2 = 100 -> x2_pad = 100 - 100 + 1 = 1; y2 = 82 -> y2_pad = 82 - 80 + 1 = 3.
    # Source: rows 66..78, columns 84..98; image column 99 and row 79 are dropped (the +1).
    patch, resize_factor = crop_square(coded_image, (88, 70, 8, 8), 2.0, 16)
    assert patch.shape == (16, 16, 3) and patch.dtype == np.uint8
    assert resize_factor == 1.0
    assert patch[0, 0].tolist() == [2 * 85, 2 * 67, 200]
    assert patch[12, 14].tolist() == [2 * 99, 2 * 79, 200]
    assert patch[5, 3].tolist() == [2 * 88, 2 * 72, 200]
    assert not patch[:, 15].any()  # image column 99 exists but is padded away
    assert not patch[13:, :].any()  # image row 79 exists but is padded away
    assert patch[:13, :15].all()


def test_crop_top_left_corner_pads_then_halves(coded_image):
    # crop = ceil(4 * 2) = 8; x1 = y1 = round(0 + 2 - 4) = -2 -> 2 rows/columns of zeros
    # before image rows/columns 0..5. Halving with bilinear averages 2x2 blocks.
    patch, resize_factor = crop_square(coded_image, (0, 0, 4, 4), 2.0, 4)
    assert resize_factor == 0.5
    assert patch.shape == (4, 4, 3)
    assert not patch[0].any() and not patch[:, 0].any()
    # Output (1, 1) averages padded rows/cols 2..3 = image rows/cols 0..1: (2 + 4) / 2 = 3.
    assert patch[1, 1].tolist() == [3, 3, 200]
    # Output (2, 3): image rows 2..3 -> (6 + 8) / 2 = 7, image cols 4..5 -> (10 + 12) / 2 = 11.
    assert patch[2, 3].tolist() == [11, 7, 200]


def test_crop_uses_bankers_rounding_for_the_corner(coded_image):
    # x1 = round(2.5 + 2 - 4) = round(0.5) = 0 and y1 = round(10.5 + 2 - 4) = round(8.5) = 8;
    # rounding half up would give 1 and 9.
    patch, resize_factor = crop_square(coded_image, (2.5, 10.5, 4, 4), 2.0, 8)
    assert resize_factor == 1.0
    assert patch[0, 0].tolist() == [2 * 1, 2 * 9, 200]
    assert patch[7, 7].tolist() == [2 * 8, 2 * 16, 200]


def test_crop_size_is_ceiled_and_resize_factor_follows():
    image = np.ones((50, 60, 3), dtype=np.uint8)
    # sqrt(3 * 5) * 2 = 7.746 -> crop 8 -> 128 / 8 = 16.
    patch, resize_factor = crop_square(image, (20, 20, 3, 5), 2.0, 128)
    assert patch.shape == (128, 128, 3)
    assert resize_factor == 16.0


def test_crop_keeps_single_channel_axis():
    image = np.full((30, 40, 1), 9, dtype=np.uint8)
    patch, _ = crop_square(image, (10, 10, 8, 8), 2.0, 32)
    assert patch.shape == (32, 32, 1)
    assert (patch == 9).all()


def test_crop_window_wholly_in_padding_is_black(coded_image):
    # crop = ceil(0.5 * 2) = 1; x1 = round(99.75 - 0.5) = 99, x2 = 100, x2_pad = 1 -> no column.
    patch, resize_factor = crop_square(coded_image, (99.5, 40, 0.5, 0.5), 2.0, 4)
    assert patch.shape == (4, 4, 3)
    assert not patch.any()
    assert resize_factor == 4.0


def test_crop_rejects_degenerate_box(coded_image):
    with pytest.raises(ValueError, match="too small"):
        crop_square(coded_image, (10, 10, 0, 5), 2.0, 16)


def test_hann_window_values():
    np.testing.assert_allclose(hann_window(1), [[1.0]])
    # k = 1, 2 over sz + 1 = 3: 0.5 * (1 - cos(2pi/3)) = 0.75 both.
    np.testing.assert_allclose(hann_window(2), np.full((2, 2), 0.5625))
    # k = 1..3 over 4: 0.5 * (1 - cos(pi/2, pi, 3pi/2)) = 0.5, 1, 0.5.
    np.testing.assert_allclose(
        hann_window(3), [[0.25, 0.5, 0.25], [0.5, 1.0, 0.5], [0.25, 0.5, 0.25]], atol=1e-12
    )


def test_hann_window_16_is_the_official_one():
    window = hann_window(16)
    assert window.shape == (16, 16)
    edge = 0.5 * (1 - math.cos(2 * math.pi / 17))  # 0.03376...
    centre = 0.5 * (1 - math.cos(2 * math.pi * 8 / 17))  # 0.99149...
    assert window[0, 0] == pytest.approx(edge * edge)
    assert window[7, 7] == pytest.approx(centre * centre)
    assert window[7, 0] == pytest.approx(centre * edge)
    np.testing.assert_allclose(window, window[::-1, ::-1])
    assert window.max() < 1.0  # 17 is odd: no sample lands on the peak


def test_map_box_back_hand_case():
    # prev centre (50, 35); crop 57 -> half side 0.5 * 256 / (256 / 57) = 28.5.
    box = map_box_back((33.5, 25.5, 12, 8), (40, 30, 20, 10), 256, 256 / 57)
    np.testing.assert_allclose(box, [49.0, 28.0, 12.0, 8.0])


def test_map_box_back_round_trip_through_a_real_crop():
    image = np.zeros((80, 100), dtype=np.uint8)
    target = (30, 10, 12, 8)
    image[10:18, 30:42] = 255
    prev = (40, 30, 21, 11)  # crop ceil(sqrt(231) * 4) = 61, corner (50.5 - 30.5, 35.5 - 30.5)
    patch, resize_factor = crop_square(image, prev, 4.0, 122)
    assert resize_factor == 2.0
    bright_rows = np.flatnonzero((patch > 127).any(axis=1))
    bright_cols = np.flatnonzero((patch > 127).any(axis=0))
    x0, x1 = bright_cols[0], bright_cols[-1] + 1
    y0, y1 = bright_rows[0], bright_rows[-1] + 1
    pred = np.array([(x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0]) / resize_factor
    np.testing.assert_allclose(map_box_back(pred, prev, 122, resize_factor), target)


@pytest.mark.parametrize(
    ("box", "expected"),
    [
        ((20, 30, 40, 20), (20, 30, 40, 20)),  # inside: unchanged
        ((-5, -8, 20, 30), (0, 0, 15, 22)),  # over the top-left edge: cut
        ((95, 75, 20, 20), (90, 70, 10, 10)),  # over the bottom-right corner: margin kept
        ((50, 40, 2, 3), (50, 40, 10, 10)),  # tiny: grown to the margin
        ((-50, 20, 30, 10), (0, 20, 10, 10)),  # wholly left of the image
    ],
)
def test_clip_box(box, expected):
    np.testing.assert_allclose(clip_box(box, HEIGHT, WIDTH, margin=10), expected)


def test_validate_box_accepts_partial_overlap():
    box = validate_box([-5, -5, 10, 10], HEIGHT, WIDTH)
    assert box.dtype == np.float64
    np.testing.assert_array_equal(box, [-5, -5, 10, 10])


@pytest.mark.parametrize(
    ("box", "message"),
    [
        ((np.nan, 1, 5, 5), "NaN or infinity"),
        ((1, 1, np.inf, 5), "NaN or infinity"),
        ((1, 1, 0, 5), "positive width and height"),
        ((1, 1, 5, -2), "positive width and height"),
        ((100, 10, 5, 5), "does not overlap"),
        ((10, 80, 5, 5), "does not overlap"),
        ((-5, 10, 5, 5), "does not overlap"),
        ((10, -5, 5, 5), "does not overlap"),
        ((1, 2, 3), "exactly 4 values"),
    ],
)
def test_validate_box_rejects(box, message):
    with pytest.raises(ValueError, match=message):
        validate_box(box, HEIGHT, WIDTH)
