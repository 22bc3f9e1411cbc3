"""Frame checks, thermal conversion, alignment and tensor normalisation."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from rgbt_tracking_ros.tracker.preprocess import (
    align_thermal,
    normalise,
    thermal_to_rgb8,
    to_rgb_uint8,
    to_tensor,
)


def _gray(result: np.ndarray) -> np.ndarray:
    """The single gray level of a converted thermal image, after checking its layout."""
    assert result.dtype == np.uint8 and result.ndim == 3 and result.shape[2] == 3
    assert (result[:, :, 0] == result[:, :, 1]).all() and (result[:, :, 0] == result[:, :, 2]).all()
    return result[:, :, 0]


def test_rgb_frame_is_accepted_unchanged():
    frame = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    assert to_rgb_uint8(frame) is frame


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (np.zeros((4, 5, 3), np.float32), "must be uint8"),
        (np.zeros((4, 5), np.uint8), r"shape \(H, W, 3\)"),
        (np.zeros((4, 5, 4), np.uint8), r"shape \(H, W, 3\)"),
        (np.zeros((0, 5, 3), np.uint8), "empty"),
        ([[1, 2, 3]], "numpy array"),
    ],
)
def test_bad_rgb_frames_raise(frame, message):
    with pytest.raises(ValueError, match=message):
        to_rgb_uint8(frame)


def test_uint8_thermal_is_repeated_not_stretched():
    thermal = np.array([[10, 20], [30, 40]], dtype=np.uint8)
    np.testing.assert_array_equal(_gray(thermal_to_rgb8(thermal)), thermal)
    np.testing.assert_array_equal(_gray(thermal_to_rgb8(thermal[:, :, None])), thermal)


def test_three_channel_uint8_thermal_passes_through():
    thermal = np.random.default_rng(0).integers(0, 256, (6, 7, 3), dtype=np.uint8)
    np.testing.assert_array_equal(thermal_to_rgb8(thermal), thermal)


def test_uint16_minmax_uses_the_frame_range():
    # lo = 1000, hi = 3000: 1400 -> 400 / 2000 * 255 = 51, 2600 -> 204.
    thermal = np.array([[1000, 1400], [2600, 3000]], dtype=np.uint16)
    np.testing.assert_array_equal(_gray(thermal_to_rgb8(thermal)), [[0, 51], [204, 255]])


def test_float_minmax_ignores_nan_and_inf_for_the_range():
    # Finite range -5..15: 0 -> 5 / 20 * 255 = 63.75 -> 64; NaN counts as lo; +inf saturates.
    thermal = np.array([[-5.0, np.nan, np.inf], [15.0, 0.0, -np.inf]], dtype=np.float32)
    np.testing.assert_array_equal(_gray(thermal_to_rgb8(thermal)), [[0, 0, 255], [255, 64, 0]])


@pytest.mark.parametrize(
    "thermal",
    [
        np.full((3, 4), 1234, np.uint16),
        np.full((3, 4), 36.6, np.float64),
        np.full((3, 4), np.nan, np.float32),
    ],
)
def test_constant_thermal_becomes_black(thermal):
    with np.errstate(all="raise"):
        assert not thermal_to_rgb8(thermal).any()


def test_fixed_range_is_the_same_for_every_frame():
    # lo = 0, hi = 1000: 200 -> 51, values past hi saturate, values below lo clip to 0.
    cold = np.array([[200, 0], [1000, 2000]], dtype=np.uint16)
    np.testing.assert_array_equal(
        _gray(thermal_to_rgb8(cold, "fixed", (0, 1000))), [[51, 0], [255, 255]]
    )
    warm = np.array([[200, 600]], dtype=np.float32)
    assert _gray(thermal_to_rgb8(warm, "fixed", (0, 1000)))[0, 0] == 51
    assert _gray(thermal_to_rgb8(warm))[0, 0] == 0  # per-frame min-max would move it


@pytest.mark.parametrize(
    ("thermal", "kwargs", "message"),
    [
        (np.zeros((4, 5), np.int16), {}, "dtype must be uint8, uint16, float32 or float64"),
        (np.zeros((4, 5), np.float16), {}, "dtype must be uint8, uint16, float32 or float64"),
        (np.zeros((4, 5, 3), np.uint16), {}, "3-channel thermal image must be uint8"),
        (np.zeros((4, 5, 2), np.uint8), {}, r"\(H, W\), \(H, W, 1\) or \(H, W, 3\)"),
        (np.zeros((2, 4, 5), np.uint8)[None], {}, r"\(H, W\), \(H, W, 1\) or \(H, W, 3\)"),
        (np.zeros((0, 5), np.uint16), {}, "empty"),
        (np.zeros((4, 5), np.uint16), {"mode": "gamma"}, "thermal mode must be one of"),
        (np.zeros((4, 5), np.uint16), {"mode": "fixed"}, "needs value_range"),
        (np.zeros((4, 5), np.uint16), {"mode": "fixed", "value_range": (5, 5)}, "hi > lo"),
        (np.zeros((4, 5), np.uint16), {"value_range": (0, 10)}, "only used with mode='fixed'"),
    ],
)
def test_bad_thermal_raises(thermal, kwargs, message):
    with pytest.raises(ValueError, match=message):
        thermal_to_rgb8(thermal, **kwargs)


def test_align_by_resize_to_the_rgb_size():
    thermal = np.zeros((10, 10, 3), np.uint8)
    thermal[:, 5:] = 255
    aligned = align_thermal(thermal, (20, 20, 3))
    assert aligned.shape == (20, 20, 3)
    # Bilinear 2x: output column j samples source j / 2 - 0.25; the step is between 4 and 5.
    assert not aligned[:, :9].any()
    assert (aligned[:, 9] == 64).all() and (aligned[:, 10] == 191).all()
    assert (aligned[:, 11:] == 255).all()


def test_align_same_size_is_a_no_op():
    thermal = np.ones((8, 9, 3), np.uint8)
    assert align_thermal(thermal, (8, 9)) is thermal


def test_align_by_translation_homography():
    thermal = np.full((40, 50, 3), 50, np.uint8)
    thermal[10, 20] = 255
    shift = np.array([[1.0, 0.0, 5.0], [0.0, 1.0, 3.0], [0.0, 0.0, 1.0]])  # thermal -> RGB
    aligned = align_thermal(thermal, (60, 70, 3), shift)
    assert aligned.shape == (60, 70, 3)
    assert (aligned[13, 25] == 255).all()
    assert aligned[12, 25, 0] == 50 and aligned[13, 24, 0] == 50
    assert not aligned[:3].any() and not aligned[:, :5].any()  # reached by no thermal pixel
    assert not aligned[43:].any() and not aligned[:, 55:].any()


@pytest.mark.parametrize(
    ("homography", "message"),
    [
        (np.eye(2), "3x3"),
        (np.array([[1.0, 0, np.nan], [0, 1, 0], [0, 0, 1]]), "NaN or infinity"),
        (np.array([[1.0, 2, 0], [2, 4, 0], [0, 0, 1]]), "singular"),
    ],
)
def test_bad_homography_raises(homography, message):
    with pytest.raises(ValueError, match=message):
        align_thermal(np.zeros((4, 4, 3), np.uint8), (4, 4), homography)


def test_to_tensor_normalises_with_imagenet_statistics_in_rgb_order():
    patch = np.zeros((4, 5, 3), np.uint8)
    patch[..., 0], patch[..., 1], patch[..., 2] = 255, 0, 51
    tensor = to_tensor(patch, "cpu")
    assert tensor.shape == (1, 3, 4, 5) and tensor.dtype == torch.float32
    expected = [(1.0 - 0.485) / 0.229, (0.0 - 0.456) / 0.224, (0.2 - 0.406) / 0.225]
    for channel, value in enumerate(expected):
        torch.testing.assert_close(tensor[0, channel], torch.full((4, 5), value))


def test_to_tensor_batch_keeps_order():
    patches = np.stack([np.zeros((3, 3, 3), np.uint8), np.full((3, 3, 3), 255, np.uint8)])
    tensor = to_tensor(patches, "cpu")
    assert tensor.shape == (2, 3, 3, 3)
    assert tensor[0, 0, 0, 0] == pytest.approx(-0.485 / 0.229)
    assert tensor[1, 0, 0, 0] == pytest.approx((1 - 0.485) / 0.229)


def test_to_tensor_rejects_non_uint8_patches():
    with pytest.raises(ValueError, match="must be uint8"):
        to_tensor(np.zeros((3, 3, 3), np.float32), "cpu")


def test_cpu_tensors_by_table_equal_the_normalisation():
    patches = np.random.default_rng(3).integers(0, 256, (2, 20, 30, 3), dtype=np.uint8)
    expected = normalise(torch.from_numpy(patches))
    assert torch.equal(to_tensor(patches), expected)
    assert torch.equal(to_tensor(patches[1]), expected[1:])
    assert torch.equal(to_tensor(patches[:, ::2, ::3]), normalise(torch.from_numpy(patches[:, ::2, ::3].copy())))
