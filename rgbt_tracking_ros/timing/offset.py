"""The constant offset between the two cameras' stamps, found from the images (no ROS).

Two cameras watching the same scene see the same moments of motion: when the camera pans
faster or something crosses the view, both images change more. Each camera's *change
signal* is measured between consecutive frames (mean absolute difference of small, per-frame
normalised grey images, per region of a coarse grid) and belongs to the interval between the
two stamps. The offset is the shift of one camera's stamps that makes the two signals agree:

* the camera with more frames ("fast") gives a cumulative change curve C(t), linear between
  its stamps, so its change over any interval, at sub-frame resolution, is C(b) - C(a);
* for each interval [a, b] of the other camera ("slow") and each candidate offset d on a grid
  (``resolution``, 0.5 ms by default, within +-``max_offset``), the fast camera's change over
  the same moment is read from C at [a, b] shifted by d; rates may differ (30/9 Hz): the fast
  camera's change is integrated over the slow camera's intervals;
* each region's series is normalised (zero mean, unit variance) and the normalised
  correlation of the two, averaged over the regions, is computed per d; the peak is refined by
  a parabola through it and its neighbours.

The result, ``offset``, is the thermal stamp minus the RGB stamp of frames taken at the same
moment (positive: thermal stamps late). The pairer's parameters correct it with
``thermal_offset = rgb_offset - offset``. Per-frame normalisation makes the signal blind to
exposure and gain changes and to thermal drift; a static scene, or motion at constant speed,
has no structure to align, which a low peak correlation (``reliable`` False) reports.

Streaming: ``OffsetEstimator.add_rgb/add_thermal(stamp_ns, image)`` keep only a small image
per camera and the change samples of the last ``window`` seconds (a few KiB); ``estimate()``
costs a few milliseconds and can be called on a timer.
"""
from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import cv2
import numpy as np
import numpy.typing as npt

_NS_PER_S = 1_000_000_000
# Frame intervals differing by this factor or more (30/9 Hz): compare changes over the slow
# camera's own intervals (long baselines) instead of change rates.
_RATE_RATIO_FOR_BASELINES = 1.5

# A camera's small change image with its stamp (ns), and the change between two of them:
# (start ns, end ns, per-region change).
_Frame: TypeAlias = tuple[int, npt.NDArray[np.float32]]
_Sample: TypeAlias = tuple[int, int, npt.NDArray[np.float32]]
# What a correlation finds: (offset s, peak correlation, span s, peak at the search range's edge).
_Found: TypeAlias = tuple[float, float, float, bool]


@dataclass(frozen=True)
class OffsetConfig:
    """Estimator settings; durations in seconds."""

    window: float = 10.0  # change samples kept per camera
    min_span: float = 5.0  # both cameras' samples must cover this much before estimating
    max_offset: float = 0.25  # offsets searched: -max_offset..+max_offset
    resolution: float = 0.001  # grid step of the signals and the search, refined by a parabola
    grid: tuple[int, int] = (3, 3)  # regions (rows, columns) with their own change signal
    size: tuple[int, int] = (64, 48)  # (width, height) the frames are reduced to
    min_correlation: float = 0.5  # peak correlation for a reliable estimate
    trend: float = 1.0  # seconds of the moving average removed from the change signals

    def __post_init__(self) -> None:
        for name in ("window", "min_span", "max_offset", "resolution"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a finite number of seconds > 0, got {value!r}")
        if self.min_span > self.window:
            raise ValueError(f"min_span ({self.min_span}) must not exceed window ({self.window})")
        if self.resolution >= self.max_offset:
            raise ValueError("resolution must be below max_offset")
        rows, columns = self.grid
        width, height = self.size
        if not (rows >= 1 and columns >= 1 and width >= 2 * columns and height >= 2 * rows):
            raise ValueError(f"grid {self.grid} does not fit frames reduced to {self.size}")
        if not -1 <= self.min_correlation <= 1:
            raise ValueError(f"min_correlation must be in [-1, 1], got {self.min_correlation}")


@dataclass(frozen=True)
class OffsetEstimate:
    """The estimated offset between the cameras' stamps."""

    offset: float  # seconds: thermal stamp - RGB stamp of the same moment (thermal late > 0)
    correlation: float  # peak normalised correlation of the change signals, -1..1
    reliable: bool  # correlation >= min_correlation and the peak lies inside the search range
    span: float  # seconds of thermal intervals compared
    rgb_frames: int
    thermal_frames: int

    @property
    def offset_ms(self) -> float:
        return 1e3 * self.offset

    def thermal_offset(self, rgb_offset: float = 0.0) -> float:
        """The pairer's thermal_offset that aligns the stamps, given its rgb_offset."""
        return rgb_offset - self.offset


def change_image(image: npt.NDArray[Any], size: tuple[int, int] = (64, 48)) -> npt.NDArray[np.float32]:
    """A frame as a small grey float32 image with zero mean and unit variance.

    Colour is averaged to grey; any dtype (uint8, uint16 thermal counts, float) is accepted.
    """
    array = np.asarray(image)
    if array.ndim not in (2, 3) or min(array.shape[:2]) < 2 or (array.ndim == 3 and not 1 <= array.shape[2] <= 4):
        raise ValueError(f"expected an (H, W) or (H, W, C) image, got shape {np.shape(image)}")
    if array.dtype not in (np.uint8, np.uint16, np.int16, np.float32, np.float64):
        array = array.astype(np.float32)
    # Reduce first, on the original dtype: every k-th pixel down to about twice the size, then
    # area averaging (a large image costs what a small one does), then grey and float.
    step = max(1, min(array.shape[0] // (2 * size[1]), array.shape[1] // (2 * size[0])))
    resized = cv2.resize(np.ascontiguousarray(array[::step, ::step]), size, interpolation=cv2.INTER_AREA)
    small: npt.NDArray[np.float32] = (resized.mean(axis=2, dtype=np.float32) if resized.ndim == 3
                                      else resized.astype(np.float32, copy=False))
    small -= small.mean()
    spread = float(small.std())
    if spread > 1e-6:
        small /= spread
    return small


def region_change(previous: npt.NDArray[np.float32], current: npt.NDArray[np.float32],
                  grid: tuple[int, int]) -> npt.NDArray[np.float32]:
    """Mean absolute difference per region of a rows x columns grid, shape (rows * columns,)."""
    difference = np.abs(current - previous)
    rows, columns = grid
    height, width = difference.shape
    cropped = difference[: height - height % rows, : width - width % columns]
    blocks = cropped.reshape(rows, cropped.shape[0] // rows, columns, cropped.shape[1] // columns)
    means: npt.NDArray[np.float32] = blocks.mean(axis=(1, 3))
    return means.reshape(-1)


@dataclass(eq=False)
class _Frames:
    """One camera's small images of the last `window` seconds, in stamp order."""

    frames: deque[_Frame] = field(default_factory=deque)
    received: int = 0

    def add(self, stamp: int, image: npt.NDArray[Any], config: OffsetConfig) -> None:
        small = change_image(image, config.size)
        self.received += 1
        if self.frames and stamp <= self.frames[-1][0]:
            if self.frames[-1][0] - stamp > round(config.max_offset * _NS_PER_S):
                self.frames.clear()  # a loop or a restarted camera: start over
            else:
                return  # out of order or repeated: the change signal needs increasing stamps
        self.frames.append((stamp, small))
        keep_from = stamp - round(config.window * _NS_PER_S)
        while self.frames and self.frames[0][0] < keep_from:
            self.frames.popleft()

    def span_s(self) -> float:
        return 0.0 if len(self.frames) < 2 else (self.frames[-1][0] - self.frames[0][0]) / _NS_PER_S



class OffsetEstimator:
    """Feeds on both cameras' frames; ``estimate()`` returns the stamp offset or None."""

    def __init__(self, config: OffsetConfig | None = None) -> None:
        self.config = config if config is not None else OffsetConfig()
        self._rgb = _Frames()
        self._thermal = _Frames()

    def add_rgb(self, stamp: int, image: npt.NDArray[Any]) -> None:
        self._rgb.add(int(stamp), image, self.config)

    def add_thermal(self, stamp: int, image: npt.NDArray[Any]) -> None:
        self._thermal.add(int(stamp), image, self.config)

    def reset(self) -> None:
        self._rgb.frames.clear()
        self._thermal.frames.clear()

    @property
    def span(self) -> float:
        """Seconds both cameras' frames cover (the shorter of the two)."""
        return min(self._rgb.span_s(), self._thermal.span_s())

    def snapshot(self) -> Snapshot:
        """The frames now held (cheap: lists of references), to estimate from elsewhere, e.g.
        outside the lock of a caller that keeps feeding frames meanwhile."""
        return Snapshot(list(self._rgb.frames), list(self._thermal.frames), self._rgb.received,
                        self._thermal.received, self.config)

    def estimate(self) -> OffsetEstimate | None:
        """The offset, or None until both cameras cover min_span seconds."""
        return self.snapshot().estimate()


@dataclass(frozen=True)
class Snapshot:
    """Both cameras' frames (stamp ns, small image) at one moment; see OffsetEstimator."""

    rgb: list[_Frame]
    thermal: list[_Frame]
    rgb_received: int
    thermal_received: int
    config: OffsetConfig

    def estimate(self) -> OffsetEstimate | None:
        config, rgb, thermal = self.config, self.rgb, self.thermal
        if min(len(rgb), len(thermal)) < 3:
            return None
        span = min(rgb[-1][0] - rgb[0][0], thermal[-1][0] - thermal[0][0]) / _NS_PER_S
        if span < config.min_span:
            return None
        rgb_interval, thermal_interval = _median_interval(_intervals(rgb)), _median_interval(_intervals(thermal))
        rgb_faster = rgb_interval <= thermal_interval
        sign = 1.0 if rgb_faster else -1.0  # offsets are thermal - rgb
        fast, slow = (rgb, thermal) if rgb_faster else (thermal, rgb)
        ratio = max(rgb_interval, thermal_interval) / max(min(rgb_interval, thermal_interval), 1)
        if ratio < _RATE_RATIO_FOR_BASELINES:
            found = _correlate_rates(_samples(fast, config.grid), _samples(slow, config.grid), config, sign)
        else:
            found = _correlate_baselines(fast, slow, config, sign)
        if found is None:
            return None
        offset, correlation, span, at_edge = found
        reliable = bool(correlation >= config.min_correlation and not at_edge)
        return OffsetEstimate(float(offset), float(correlation), reliable, float(span), self.rgb_received,
                              self.thermal_received)


def _samples(frames: list[_Frame], grid: tuple[int, int]) -> list[_Sample]:
    """(start ns, end ns, per-region change) between consecutive frames."""
    return [(a, b, region_change(x, y, grid)) for (a, x), (b, y) in zip(frames, frames[1:])]


def _intervals(frames: list[_Frame]) -> Iterable[tuple[int, int]]:
    """(start ns, end ns) between consecutive frames."""
    return ((a, b) for (a, _), (b, _) in zip(frames, frames[1:]))


def _median_interval(intervals: Iterable[tuple[int, int]]) -> float:
    """Median length (ns) of (start, end) stamp intervals."""
    return float(np.median([end - start for start, end in intervals]))


def _rate_signal(samples: list[_Sample], origin: int, step: float, length: int) -> npt.NDArray[np.float64]:
    """Change per second of each region on a regular grid (length, regions): each sample's change
    spread evenly over its interval; grid points no sample covers get the region's mean rate."""
    starts = np.array([(a - origin) / _NS_PER_S for a, _, _ in samples])
    ends = np.array([(b - origin) / _NS_PER_S for _, b, _ in samples])
    rates = np.stack([c for _, _, c in samples]).astype(np.float64) / np.maximum(ends - starts, 1e-9)[:, None]
    times = np.arange(length) * step
    index = np.clip(np.searchsorted(starts, times, side="right") - 1, 0, len(samples) - 1)
    covered = (times >= starts[index]) & (times < ends[index])
    signal: npt.NDArray[np.float64] = rates[index]
    signal[~covered] = rates.mean(axis=0)
    return signal


def _band_pass(signal: npt.NDArray[np.float64], step: float, sigma: float, trend: float) -> npt.NDArray[np.float64]:
    """Gaussian smoothing (sigma s) minus a moving average over `trend` s, per column.

    Both cameras' signals get the same filter, so shifting one of them changes nothing but the
    alignment (interpolating sampled values would smooth differently at every shift and bias
    the peak towards shifts that average the noise of neighbouring frames).
    """
    radius = max(1, int(round(4 * sigma / step)))
    x = np.arange(-radius, radius + 1) * step
    kernel = np.exp(-0.5 * (x / sigma) ** 2)
    kernel /= kernel.sum()
    padded = np.pad(signal, ((radius, radius), (0, 0)), mode="edge")
    smooth: npt.NDArray[np.float64] = np.stack([np.convolve(padded[:, c], kernel, mode="valid") for c in range(signal.shape[1])], axis=1)
    width = max(1, int(round(trend / step)))
    if width >= len(smooth):
        centred: npt.NDArray[np.float64] = smooth - smooth.mean(axis=0, keepdims=True)
        return centred
    padded = np.pad(smooth, ((width // 2, width - 1 - width // 2), (0, 0)), mode="edge")
    cumulative = np.concatenate([np.zeros((1, smooth.shape[1])), np.cumsum(padded, axis=0)])
    moving = (cumulative[width:] - cumulative[:-width]) / width
    band: npt.NDArray[np.float64] = smooth - moving
    return band


def _correlate_rates(fast: list[_Sample], slow: list[_Sample], config: OffsetConfig, sign: float) -> _Found | None:
    """Similar rates: the change rate of both cameras on a fine grid, band-passed alike, and
    their correlation at every shift. (offset s, peak correlation, span s, peak at edge) or None."""
    step = config.resolution
    origin = min(fast[0][0], slow[0][0])
    end = max(fast[-1][1], slow[-1][1])
    length = int((end - origin) / _NS_PER_S / step) + 1
    median = max(_median_interval((a, b) for a, b, _ in fast), _median_interval((a, b) for a, b, _ in slow))
    sigma = max(0.5 * median / _NS_PER_S, 2 * step)
    fast_band = _band_pass(_rate_signal(fast, origin, step, length), step, sigma, config.trend)
    slow_band = _band_pass(_rate_signal(slow, origin, step, length), step, sigma, config.trend)
    # The slow signal where both cameras have samples, kept clear of the ends by max_offset and
    # the filter, so every shift compares it with real samples of the fast one.
    lags = int(round(config.max_offset / step))
    guard = lags + int(round(4 * sigma / step))
    first = int(np.ceil(max(fast[0][0], slow[0][0]) - origin) / _NS_PER_S / step) + guard
    last = int(np.floor(min(fast[-1][1], slow[-1][1]) - origin) / _NS_PER_S / step) - guard
    if last - first < 8 * sigma / step:
        return None
    target = _standardise(slow_band[first:last])  # (n, regions)
    n = last - first
    scores = np.zeros(2 * lags + 1)
    for region in range(target.shape[1]):
        window = fast_band[first - lags:last + lags, region]
        # Pearson correlation of the target with every shifted window of the fast signal.
        products = np.correlate(window, target[:, region], mode="valid")  # index i: shift i - lags
        cumulative = np.concatenate([[0.0], np.cumsum(window)])
        squares = np.concatenate([[0.0], np.cumsum(window * window)])
        sums = cumulative[n:] - cumulative[:-n]
        variances = (squares[n:] - squares[:-n]) / n - (sums / n) ** 2
        scores += products / n / np.sqrt(np.maximum(variances, 1e-18))
    scores /= target.shape[1]
    # Window index i compares fast(t + (i - lags) * step) with slow(t): fast lags slow by that.
    best = int(np.argmax(scores))
    shift = float(best - lags)
    if 0 < best < len(scores) - 1:
        left, centre, right = scores[best - 1], scores[best], scores[best + 1]
        curvature = left - 2 * centre + right
        if curvature < 0:
            shift += 0.5 * (left - right) / curvature
    # slow(t) matches fast(t + shift): the slow camera stamps the same moment `shift` earlier.
    offset = -sign * shift * step
    at_edge = best in (0, len(scores) - 1)
    return offset, float(scores[best]), n * step, at_edge


def _standardise(values: npt.NDArray[np.floating[Any]]) -> npt.NDArray[np.floating[Any]]:
    """Zero mean, unit variance along axis 0 (constant columns become 0); float32 stays float32."""
    centred = values - values.mean(axis=0, keepdims=True)
    spread = centred.std(axis=0, keepdims=True)
    standard: npt.NDArray[np.floating[Any]] = np.divide(centred, spread, out=np.zeros_like(centred),
                                                        where=spread > 1e-12)
    return standard


def _correlate_baselines(fast: list[_Frame], slow: list[_Frame], config: OffsetConfig, sign: float) -> _Found | None:
    """Different rates: each slow-camera interval's change against the fast camera's change over
    the same (shifted) interval, its images linearly blended at the shifted ends, so both
    changes span the same time (a 111 ms change is not the sum of three 33 ms ones: motion that
    turns back cancels). Coarse search, then a fine one around the best, then a parabola.
    (offset s, peak correlation, span s, peak at edge) or None."""
    origin = fast[0][0]
    fast_times = np.array([(stamp - origin) / _NS_PER_S for stamp, _ in fast])
    fast_images = np.stack([image for _, image in fast])
    slow_times = np.array([(stamp - origin) / _NS_PER_S for stamp, _ in slow])
    starts, ends = slow_times[:-1], slow_times[1:]
    usual = np.median(ends - starts)
    inside = ((starts - config.max_offset >= fast_times[0]) & (ends + config.max_offset <= fast_times[-1])
              & (ends - starts < 3 * usual))
    chosen = np.nonzero(inside)[0]
    if len(chosen) < 8:
        return None
    target = _standardise(np.stack([region_change(slow[j][1], slow[j + 1][1], config.grid) for j in chosen]))
    starts, ends = starts[chosen], ends[chosen]
    rows, columns = config.grid
    height, width = fast_images.shape[1:]
    height, width = height - height % rows, width - width % columns

    def images_at(times: npt.NDArray[np.float64]) -> npt.NDArray[np.float32]:
        index = np.clip(np.searchsorted(fast_times, times, side="right") - 1, 0, len(fast_times) - 2)
        weight = ((times - fast_times[index]) / (fast_times[index + 1] - fast_times[index])).astype(np.float32)
        weight = weight[:, None, None]
        blended: npt.NDArray[np.float32] = fast_images[index] * (1 - weight) + fast_images[index + 1] * weight
        return blended

    def score(offset: float) -> float:
        # Slow stamp a is fast stamp a - offset (fast = RGB) or a + offset (fast = thermal).
        difference = np.abs(images_at(ends - sign * offset) - images_at(starts - sign * offset))
        blocks = difference[:, :height, :width].reshape(len(difference), rows, height // rows, columns,
                                                        width // columns)
        changes = blocks.mean(axis=(2, 4)).reshape(len(difference), -1)
        return float((_standardise(changes) * target).mean())

    coarse = 4 * config.resolution
    shifts = np.arange(-config.max_offset, config.max_offset + coarse / 2, coarse)
    scores = np.array([score(offset) for offset in shifts])
    best = int(np.argmax(scores))
    at_edge = best in (0, len(scores) - 1)
    fine = config.resolution / 2
    shifts = shifts[best] + np.arange(-2 * coarse, 2 * coarse + fine / 2, fine)
    scores = np.array([score(offset) for offset in shifts])
    best = int(np.argmax(scores))
    offset = float(shifts[best])
    if 0 < best < len(scores) - 1:
        left, centre, right = scores[best - 1], scores[best], scores[best + 1]
        curvature = left - 2 * centre + right
        if curvature < 0:
            offset += fine * 0.5 * (left - right) / curvature
    return offset, float(scores[best]), float(ends[-1] - starts[0]), at_edge
