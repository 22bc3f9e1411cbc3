"""Thermal crops taken in thermal pixels equal the full-frame path's crops: exactly where the
thermal frame lies on the RGB grid, within interpolation where it is resized or warped."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from rgbt_tracking_ros.data.synthetic import make_sequence
from rgbt_tracking_ros.tracker.geometry import crop_square
from rgbt_tracking_ros.tracker.preprocess import align_thermal, thermal_to_rgb8
from rgbt_tracking_ros.tracker.thermal_crop import ThermalFrame, crop_thermal

HEIGHT, WIDTH = 240, 320
# Inside, across the left/top edge, across the bottom-right corner (the official crop drops
# the last row/column there), larger than the frame, tiny (the crop is upsampled), and one
# that lies wholly outside the image after the box's clip margin.
BOXES = [(140, 100, 40, 30), (-15, -10, 50, 40), (290, 215, 25, 20), (40, 30, 260, 200),
         (150, 120, 6, 5), (0, 0, 320, 240), (310, 230, 10, 10)]
CROPS = [(4.0, 256), (2.0, 128)]
# thermal -> RGB: a half-resolution camera, slightly rotated and shifted; and a same-size one
# shifted by a few pixels with a little perspective.
HALF_WARP = np.array([[1.99, -0.04, 4.0], [0.05, 2.01, -6.0], [0.0, 0.0, 1.0]])
SAME_WARP = np.array([[1.01, 0.02, 5.5], [-0.01, 0.99, -3.0], [2e-5, -1e-5, 1.0]])


@pytest.fixture(scope="module")
def thermal() -> np.ndarray:
    return make_sequence(1000, frames=1, height=HEIGHT, width=WIDTH).thermal[0]


def _half(image: np.ndarray) -> np.ndarray:
    return cv2.resize(image, (WIDTH // 2, HEIGHT // 2), interpolation=cv2.INTER_AREA)


def _compare(image: np.ndarray, homography: np.ndarray | None, **conversion) -> np.ndarray:
    """Absolute differences, every box and crop, between the new and the full-frame path."""
    frame = ThermalFrame.of(image, (HEIGHT, WIDTH, 3), homography=homography, **conversion)
    full = align_thermal(thermal_to_rgb8(image, **conversion), (HEIGHT, WIDTH, 3), homography)
    differences = []
    for box in BOXES:
        for factor, size in CROPS:
            expected, _ = crop_square(full, box, factor, size)
            patch = crop_thermal(frame, box, factor, size)
            assert patch.shape == expected.shape and patch.dtype == np.uint8
            differences.append(np.abs(patch.astype(int) - expected.astype(int)).ravel())
    return np.concatenate(differences)


def test_on_the_rgb_grid_the_crop_is_the_reference_crop(thermal: np.ndarray) -> None:
    assert not _compare(thermal, None).any()
    assert not _compare(thermal, None, mode="fixed", value_range=(20000.0, 30000.0)).any()
    with_nan = thermal.astype(np.float32)
    with_nan[50:60, 70:90] = np.nan
    assert not _compare(with_nan, None).any()


@pytest.mark.parametrize(
    ("case", "make", "homography"),
    [
        ("resized", _half, None),
        ("warped from half resolution", _half, HALF_WARP),
        ("warped at the same size", lambda image: image, SAME_WARP),
    ],
)
def test_resized_or_warped_crop_matches_within_interpolation(thermal, case, make, homography) -> None:
    # One bilinear sampling instead of two (alignment, then the crop's resize): a grey level
    # or so on average, a few at sharp edges and in the noise of the thermal frame.
    difference = _compare(make(thermal), homography)
    assert difference.mean() < 1.0, case
    assert np.percentile(difference, 99) <= 5, case
    assert difference.max() <= 40, case


def test_other_thermal_kinds_match_too(thermal: np.ndarray) -> None:
    gray8 = thermal_to_rgb8(thermal)
    tinted = gray8.copy()
    tinted[:, :, 0] //= 2  # a 3-channel 8-bit thermal image need not be grey
    floats = _half(thermal).astype(np.float64)
    floats[10:20, 30:40] = np.nan
    for image, conversion in ((_half(tinted), {}), (floats, {}),
                              (_half(thermal), {"mode": "fixed", "value_range": (20000.0, 30000.0)})):
        for homography in (None, HALF_WARP):
            difference = _compare(image, homography, **conversion)
            assert difference.mean() < 1.0 and np.percentile(difference, 99) <= 5


def test_crop_that_sees_no_thermal_pixel_is_black(thermal: np.ndarray) -> None:
    # Thermal pixels land far to the right of the RGB image: nothing under the crop.
    away = np.array([[1.0, 0.0, 5000.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    frame = ThermalFrame.of(thermal, (HEIGHT, WIDTH, 3), homography=away)
    assert not crop_thermal(frame, (100, 100, 40, 40), 4.0, 256).any()


def test_bad_thermal_frames_still_raise() -> None:
    with pytest.raises(ValueError, match="dtype"):
        ThermalFrame.of(np.zeros((4, 5), np.int32), (4, 5, 3))
    with pytest.raises(ValueError, match="needs value_range"):
        ThermalFrame.of(np.zeros((4, 5), np.uint16), (4, 5, 3), mode="fixed")
    with pytest.raises(ValueError, match="singular"):
        ThermalFrame.of(np.zeros((4, 5), np.uint16), (4, 5, 3), homography=np.zeros((3, 3)))
