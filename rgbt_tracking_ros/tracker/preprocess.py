"""Frame checks and conversions between camera images and network input tensors.

Thermal cameras deliver 8-bit, 16-bit (radiometric counts) or float (temperature) frames at
their own resolution; the networks expect an 8-bit 3-channel image aligned with the RGB frame.
"""
from __future__ import annotations

import functools

import cv2
import numpy as np
import numpy.typing as npt
import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
THERMAL_MODES = ("minmax", "fixed")
_SCALED_DTYPES = (np.dtype(np.uint16), np.dtype(np.float32), np.dtype(np.float64))


def _check_size(image: np.ndarray, name: str) -> None:
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"{name} image is empty (shape {image.shape})")


def to_rgb_uint8(image: np.ndarray) -> npt.NDArray[np.uint8]:
    """Return the RGB frame if it is an (H, W, 3) uint8 array; raise a clear ValueError if not."""
    if not isinstance(image, np.ndarray):
        raise ValueError(f"RGB image must be a numpy array, got {type(image).__name__}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"RGB image must have shape (H, W, 3), got {image.shape}")
    if image.dtype != np.uint8:
        raise ValueError(f"RGB image must be uint8, got {image.dtype}")
    _check_size(image, "RGB")
    return image


def _check_range(value_range: tuple[float, float] | None) -> tuple[float, float]:
    if value_range is None or len(value_range) != 2:
        raise ValueError("thermal mode 'fixed' needs value_range=(lo, hi)")
    lo, hi = float(value_range[0]), float(value_range[1])
    if not (np.isfinite(lo) and np.isfinite(hi) and hi > lo):
        raise ValueError(f"thermal value_range must be finite with hi > lo, got {value_range}")
    return lo, hi


def _scale_to_uint8(values: np.ndarray, lo: float, hi: float) -> npt.NDArray[np.uint8]:
    values = values.astype(np.float64)
    if hi <= lo:  # constant frame: no contrast to stretch
        return np.zeros(values.shape, dtype=np.uint8)
    values = np.nan_to_num(values, nan=lo, posinf=hi, neginf=lo)
    scaled = (values - lo) * (255.0 / (hi - lo))
    return np.rint(np.clip(scaled, 0.0, 255.0)).astype(np.uint8)


def _scale_uint16(
    values: npt.NDArray[np.uint16], lo: float, hi: float, present: tuple[float, float] | None = None
) -> npt.NDArray[np.uint8]:
    """`_scale_to_uint8` for uint16 frames through a table over the values present (their
    min and max, when the caller has them): the same numbers from one gather instead of
    several float64 passes over the frame."""
    low, high = present or cv2.minMaxLoc(values)[:2]
    table = _scale_to_uint8(np.arange(int(low), int(high) + 1, dtype=np.uint16), lo, hi)
    scaled: npt.NDArray[np.uint8] = np.take(table, values - np.uint16(low))
    return scaled


def thermal_source(
    thermal: np.ndarray, mode: str = "minmax", value_range: tuple[float, float] | None = None
) -> tuple[np.ndarray, tuple[float, float] | None]:
    """Check a thermal frame; return it as (H, W) or (H, W, 3) and the (lo, hi) it is stretched
    over (None for uint8 frames, which are used as they are). Only the frame's min and max are
    read here: `thermal_to_gray8` converts the whole frame or any part of it with that range."""
    if mode not in THERMAL_MODES:
        raise ValueError(f"thermal mode must be one of {THERMAL_MODES}, got {mode!r}")
    if mode == "fixed":
        fixed_range = _check_range(value_range)
    elif value_range is not None:
        raise ValueError("thermal value_range is only used with mode='fixed'")
    if not isinstance(thermal, np.ndarray):
        raise ValueError(f"thermal image must be a numpy array, got {type(thermal).__name__}")
    if thermal.ndim == 3 and thermal.shape[2] == 3:
        if thermal.dtype != np.uint8:
            raise ValueError(f"3-channel thermal image must be uint8, got {thermal.dtype}")
        _check_size(thermal, "thermal")
        return thermal, None
    if thermal.ndim == 3 and thermal.shape[2] == 1:
        thermal = thermal[:, :, 0]
    if thermal.ndim != 2:
        raise ValueError(
            f"thermal image must have shape (H, W), (H, W, 1) or (H, W, 3), got {thermal.shape}"
        )
    _check_size(thermal, "thermal")
    if thermal.dtype == np.uint8:
        return thermal, None
    if thermal.dtype not in _SCALED_DTYPES:
        raise ValueError(
            f"thermal image dtype must be uint8, uint16, float32 or float64, got {thermal.dtype}"
        )
    if mode == "fixed":
        return thermal, fixed_range
    if thermal.dtype == np.uint16:  # every value is finite
        low, high = cv2.minMaxLoc(thermal)[:2]
        return thermal, (low, high)
    finite = thermal[np.isfinite(thermal)]
    return thermal, ((float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0))


def thermal_to_gray8(
    thermal: np.ndarray, value_range: tuple[float, float] | None, minmax: bool = True
) -> np.ndarray:
    """A checked thermal frame (or a window of it) from `thermal_source` to uint8, stretched
    over `value_range` (the whole frame's); uint8 and 3-channel frames come back as they are.
    `minmax`: the range is the frame's own min and max (the uint16 table then spans it)."""
    if value_range is None:
        return thermal
    lo, hi = value_range
    if thermal.size == 0:
        return np.zeros(thermal.shape, np.uint8)
    if thermal.dtype == np.uint16:
        return _scale_uint16(thermal, lo, hi, (lo, hi) if minmax else None)
    return _scale_to_uint8(thermal, lo, hi)


def thermal_to_rgb8(
    thermal: np.ndarray, mode: str = "minmax", value_range: tuple[float, float] | None = None
) -> np.ndarray:
    """Convert a thermal frame to the (H, W, 3) uint8 image the networks were trained on.

    uint8 frames are used as they are (one channel is repeated three times). uint16 and float
    frames are stretched to 0..255, per frame over their finite values (mode "minmax") or over
    a fixed value_range=(lo, hi) (mode "fixed"), which keeps brightness stable between frames;
    NaN pixels count as lo, a constant frame becomes black.
    """
    source, stretch = thermal_source(thermal, mode, value_range)
    if source.ndim == 3:
        return source
    gray = thermal_to_gray8(source, stretch, mode == "minmax")
    # The host work per frame counts at hundreds of frames per second: OpenCV copies the
    # channel 3x in a fraction of what np.repeat takes (and the uint16 table saves ~1 ms).
    return cv2.cvtColor(np.ascontiguousarray(gray), cv2.COLOR_GRAY2RGB)


def check_homography(homography: np.ndarray) -> npt.NDArray[np.float64]:
    """Return a 3x3 finite, invertible homography as float64, or raise a clear ValueError."""
    matrix = np.asarray(homography, dtype=np.float64)
    if matrix.shape != (3, 3):
        raise ValueError(f"homography must be a 3x3 matrix, got shape {matrix.shape}")
    if not np.all(np.isfinite(matrix)):
        raise ValueError("homography contains NaN or infinity")
    if np.linalg.matrix_rank(matrix) < 3:
        raise ValueError("homography is singular (not invertible)")
    return matrix


def align_thermal(
    thermal_rgb8: np.ndarray,
    rgb_shape: tuple[int, ...],
    homography: np.ndarray | None = None,
) -> np.ndarray:
    """Put the thermal image onto the RGB pixel grid so one box crops both modalities.

    Without a homography the two cameras are assumed to share their field of view and the
    thermal image is resized (bilinear); with one (thermal pixel -> RGB pixel) it is warped,
    and RGB pixels that no thermal pixel reaches are black.
    """
    height, width = int(rgb_shape[0]), int(rgb_shape[1])
    if homography is not None:
        return cv2.warpPerspective(
            thermal_rgb8,
            check_homography(homography),
            (width, height),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0,
        )
    if thermal_rgb8.shape[:2] == (height, width):
        return thermal_rgb8
    return cv2.resize(thermal_rgb8, (width, height), interpolation=cv2.INTER_LINEAR)


def to_tensor(
    patches: np.ndarray, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """uint8 RGB patch(es) (H, W, 3) or (N, H, W, 3) -> ImageNet-normalised (N, 3, H, W) tensor.

    A single patch gives N = 1. The uint8 data is moved to the device before the float
    conversion, which is the cheaper transfer.
    """
    if patches.dtype != np.uint8 or patches.ndim not in (3, 4) or patches.shape[-1] != 3:
        raise ValueError(
            f"patches must be uint8 (H, W, 3) or (N, H, W, 3), got {patches.dtype} {patches.shape}"
        )
    batch = patches[None] if patches.ndim == 3 else patches
    if torch.device(device).type == "cpu" and dtype == torch.float32:
        # One table lookup per channel instead of permute, convert, divide, subtract and
        # divide over the whole batch: the same float32 values in a third of the time.
        table = _normalised_levels()
        out = np.empty((batch.shape[0], 3, *batch.shape[1:3]), np.float32)
        for index, patch in enumerate(batch):
            for channel in range(3):
                np.take(table[channel], patch[:, :, channel], out=out[index, channel])
        return torch.from_numpy(out)
    return normalise(torch.from_numpy(np.ascontiguousarray(batch)).to(device), dtype)


@functools.lru_cache(maxsize=1)
def _normalised_levels() -> npt.NDArray[np.float32]:
    """(3, 256) float32: `normalise` of every uint8 level per channel, by the same ops."""
    levels = torch.arange(256, dtype=torch.uint8).view(1, 1, 256, 1).repeat(1, 1, 1, 3)  # NHWC
    table: npt.NDArray[np.float32] = normalise(levels)[0, :, 0, :].numpy().copy()
    return table


def normalise(images: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """uint8 (N, H, W, 3) tensor -> ImageNet-normalised (N, 3, H, W), on the tensor's device."""
    mean, std = _imagenet_stats(images.device, dtype)
    return (images.permute(0, 3, 1, 2).to(dtype) / 255.0 - mean) / std


@functools.lru_cache(maxsize=8)
def _imagenet_stats(device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    # Made once per device: on a GPU each new small tensor is a synchronous upload.
    mean = torch.tensor(IMAGENET_MEAN, device=device, dtype=dtype).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=device, dtype=dtype).view(1, 3, 1, 1)
    return mean, std
