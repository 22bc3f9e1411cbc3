"""The tracker's thermal crops taken in thermal pixels: only the crop is converted and warped.

The reference path (`thermal_to_rgb8` -> `align_thermal` -> `crop_square`) converts the
whole thermal frame to 8 bit, warps or resizes all of it onto the RGB grid, then crops a
square from that. Per frame the tracker needs only two crops (search and, for DMTrack, a
template), so here the crop's square is mapped into the thermal image through the same
resize / homography, only the thermal pixels under it are converted to 8 bit (with the whole
frame's min and max, which are cheap to read), and one warp samples them straight into the
output patch. The cost no longer depends on the thermal frame's size, and for a crop inside
the RGB image it no longer depends on the box either (a crop reaching outside still only
converts the part of the thermal frame it covers).

Where the thermal frame already lies on the RGB grid (same size, no homography) the crop is
the reference crop exactly, of the converted window. Otherwise one bilinear sampling replaces
the reference's two (alignment, then the crop's resize), and the zero padding of the crop's
part outside the RGB image is applied as the reference's resize blends it in, so patches
differ from the reference only by interpolation (`test/test_thermal_crop.py` bounds it).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from .geometry import BoxLike, CropWindow, crop_window
from .preprocess import check_homography, thermal_source, thermal_to_gray8

_MARGIN = 2  # thermal pixels kept around a crop's footprint: bilinear reads one beyond


@dataclass(frozen=True)
class ThermalFrame:
    """A checked thermal frame and what its crops need: the range it is stretched over, the
    RGB frame's size and the thermal -> RGB homography (None: the frames are resized onto
    each other)."""

    image: np.ndarray  # (H, W) uint8 / uint16 / float, or (H, W, 3) uint8
    value_range: tuple[float, float] | None  # None: uint8, used as it is
    minmax: bool
    rgb_size: tuple[int, int]  # (height, width)
    homography: npt.NDArray[np.float64] | None

    @classmethod
    def of(cls, thermal: np.ndarray, rgb_shape: tuple[int, ...], mode: str = "minmax",
           value_range: tuple[float, float] | None = None,
           homography: np.ndarray | None = None) -> ThermalFrame:
        image, stretch = thermal_source(thermal, mode, value_range)
        matrix = None if homography is None else check_homography(homography)
        return cls(image, stretch, mode == "minmax", (int(rgb_shape[0]), int(rgb_shape[1])), matrix)

    @property
    def on_rgb_grid(self) -> bool:
        return self.homography is None and self.image.shape[:2] == self.rgb_size

    def to_uint8(self, part: np.ndarray) -> np.ndarray:
        """A part of the frame in 8 bit, stretched over the whole frame's range."""
        return thermal_to_gray8(part, self.value_range, self.minmax)


def crop_thermal(frame: ThermalFrame, box_xywh: BoxLike, factor: float, output_size: int) -> np.ndarray:
    """The (output_size, output_size, 3) uint8 thermal patch that `crop_square` would cut from
    the aligned 8-bit frame for this box (RGB pixels) and factor."""
    height, width = frame.rgb_size
    window = crop_window(box_xywh, factor, height, width)
    channels = frame.image.ndim == 3
    if window.empty:
        return np.zeros((output_size, output_size, 3), np.uint8)
    if frame.on_rgb_grid:
        part = frame.to_uint8(frame.image[window.row0:window.row1, window.col0:window.col1])
        if any(window.pads):
            part = cv2.copyMakeBorder(np.ascontiguousarray(part), *window.pads, cv2.BORDER_CONSTANT, value=0)
        patch = cv2.resize(part, (output_size, output_size))
    else:
        patch = _warped_crop(frame, window, output_size)
    return patch if channels else cv2.cvtColor(patch, cv2.COLOR_GRAY2RGB)


def _crop_to_rgb(window: CropWindow, output_size: int) -> npt.NDArray[np.float64]:
    """3x3 map from a patch pixel to the RGB pixel the crop's resize samples there
    (cv2.resize, INTER_LINEAR: source = (destination + 0.5) * scale - 0.5)."""
    scale = window.size / output_size
    return np.array([[scale, 0.0, window.x1 + 0.5 * scale - 0.5],
                     [0.0, scale, window.y1 + 0.5 * scale - 0.5],
                     [0.0, 0.0, 1.0]])


def _rgb_to_thermal(frame: ThermalFrame) -> npt.NDArray[np.floating[Any]]:
    """3x3 map from an RGB pixel to the thermal pixel `align_thermal` samples there."""
    if frame.homography is not None:
        return np.linalg.inv(frame.homography)
    (height, width), (t_height, t_width) = frame.rgb_size, frame.image.shape[:2]
    sx, sy = t_width / width, t_height / height
    return np.array([[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, 0.5 * sy - 0.5], [0.0, 0.0, 1.0]])


def _footprint(matrix: npt.NDArray[np.floating[Any]], output_size: int, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """Rows [r0, r1) x cols [c0, c1) of the thermal frame under the patch, with a margin."""
    t_height, t_width = shape[:2]
    edge = (-1.0, float(output_size))
    corners = np.array([[x, y, 1.0] for x in edge for y in edge]).T
    mapped = matrix @ corners
    if not np.all(mapped[2] > 1e-12):  # the square crosses the homography's horizon
        return 0, t_height, 0, t_width
    xs, ys = mapped[0] / mapped[2], mapped[1] / mapped[2]
    c0 = max(0, math.floor(xs.min()) - _MARGIN)
    c1 = min(t_width, math.ceil(xs.max()) + _MARGIN + 1)
    r0 = max(0, math.floor(ys.min()) - _MARGIN)
    r1 = min(t_height, math.ceil(ys.max()) + _MARGIN + 1)
    return r0, r1, c0, c1


def _warped_crop(frame: ThermalFrame, window: CropWindow, output_size: int) -> np.ndarray:
    matrix = _rgb_to_thermal(frame) @ _crop_to_rgb(window, output_size)
    r0, r1, c0, c1 = _footprint(matrix, output_size, frame.image.shape)
    shape = (output_size, output_size) + frame.image.shape[2:]
    if r1 <= r0 or c1 <= c0:  # the crop sees no thermal pixel
        return np.zeros(shape, np.uint8)
    part = np.ascontiguousarray(frame.to_uint8(frame.image[r0:r1, c0:c1]))
    matrix = np.array([[1.0, 0.0, -c0], [0.0, 1.0, -r0], [0.0, 0.0, 1.0]]) @ matrix
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    if frame.homography is None:
        # cv2.resize, which aligns frames without a homography, repeats the edge pixels.
        patch = cv2.warpAffine(part, matrix[:2], (output_size, output_size), flags=flags,
                               borderMode=cv2.BORDER_REPLICATE)
    else:
        patch = cv2.warpPerspective(part, matrix, (output_size, output_size), flags=flags,
                                    borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    patch = patch.reshape(shape)
    top, bottom, left, right = window.pads
    if top or bottom or left or right:
        # The reference pads the crop with zeros outside the RGB image and its resize blends
        # them in: weight each patch pixel by how much of it the resize took from the image.
        rows = _inside_weights(window.size, top, window.size - bottom, output_size)
        cols = _inside_weights(window.size, left, window.size - right, output_size)
        weights = np.outer(rows, cols)
        if patch.ndim == 3:
            weights = weights[:, :, None]
        patch = np.rint(patch * weights).astype(np.uint8)
    return patch


def _inside_weights(size: int, start: int, stop: int, output_size: int) -> npt.NDArray[np.float32]:
    """Per patch row (column): the share of the resized value that comes from crop pixels
    [start, stop), those inside the image."""
    inside = np.zeros((1, size), np.float32)
    inside[0, start:stop] = 1.0
    resized: npt.NDArray[np.float32] = cv2.resize(inside, (output_size, 1), interpolation=cv2.INTER_LINEAR)[0]
    return resized
