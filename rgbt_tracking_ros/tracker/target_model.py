"""An online discriminative target model: a small linear filter on the frozen backbone's
features, fitted on the first frame by regularised least squares and refreshed on confident
frames (the DiMP / ATOM family's idea, without their learned optimiser).

The learned score map of a model trained only on synthetic one-object scenes answers "where
is a salient object near the template's place", not "where is *this* object"; on real scenes
it peaks on street lights, signs or the person walking beside the target. This module learns,
per sequence, a filter with the target's extent that answers 1 on the target and 0 at every
other place of the search region: the look-alikes beside the target and the background are
the negatives it is trained against, so it prefers this instance over similar ones.

The filter has the target's size (in feature cells), so the background around the target
does not enter it (a whole-region correlation filter would lock onto a static background).
Features are projected to a few principal directions of the first frame's features; the
normal equations are solved with conjugate gradients (warm-started on every refresh), over a
small memory of weighted training frames.

No ROS, no model: (C, H, W) feature tensors in, an (H, W) response out. Grid coordinates are
feature cells: cell (i, j) covers the search crop's pixels around ((j + 0.5) * stride,
(i + 0.5) * stride).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class TargetModelConfig:
    """Settings of the target model and of how the tracker uses it (see
    docs/model-card-compact_rgbt.md for what they were checked on)."""

    dimensions: int = 32  # principal feature directions the filter works on
    sigma_factor: float = 0.125  # label's Gaussian sigma, as a fraction of sqrt(target area)
    regularisation: float = 0.05  # ridge lambda, relative to the features' energy
    fit_iterations: int = 30  # conjugate-gradient steps at initialisation
    update_iterations: int = 4  # steps per refresh
    update_interval: int = 5  # refresh on every n-th confident frame
    memory: int = 6  # training frames kept (the first one always)
    learning_rate: float = 0.1  # weight of a new training frame against the older ones
    update_threshold: float = 0.5  # response, relative to the first frame's, of a confident frame
    weight: float = 0.7  # weight of the filter's response against the learned score map
    size_rate: float = 0.15  # how far a confident frame moves the size toward the calibrated head's
    max_size_change: float = 0.05  # at most this relative size change per frame
    # How far the head's size is trusted: on the first frame the head is probed on crops
    # 1 / size_probe and size_probe times the first box's scale. The slope of log(head size)
    # against log(crop scale) is -1 for a head that follows the target's scale and 0 for one
    # that always answers the same share of the crop. From a slope of -size_trust_slopes[0]
    # (and flatter: the size stays) to -size_trust_slopes[1] (and steeper: all of size_rate),
    # size_rate is scaled in between. size_probe 1: no probe, full trust.
    size_probe: float = 1.25
    size_trust_slopes: tuple[float, float] = (0.2, 0.6)

    def __post_init__(self) -> None:
        if not self.size_probe >= 1.0:
            raise ValueError(f"size_probe must be >= 1 (1: no probe), got {self.size_probe}")
        low, high = self.size_trust_slopes
        if not 0 <= low < high:
            raise ValueError(f"size_trust_slopes must be 0 <= low < high, got {self.size_trust_slopes}")


def _hann(size: int) -> torch.Tensor:
    k = torch.arange(1, size + 1, dtype=torch.float64)
    return (0.5 * (1.0 - torch.cos(2.0 * math.pi * k / (size + 1)))).float()


@lru_cache(maxsize=8)
def _window(height: int, width: int) -> torch.Tensor:
    """The fused map's 2-D Hann window, built once per grid size (read only)."""
    return _hann(height)[:, None] * _hann(width)[None, :]


def _fast_size(size: int) -> int:
    """The smallest length >= size (and >= 1) with no prime factor above 5, on which FFTs
    are fast."""
    size = max(size, 1)
    while True:
        rest = size
        for prime in (2, 3, 5):
            while rest % prime == 0:
                rest //= prime
        if rest == 1:
            return size
        size += 1


def _odd(value: float, limit: int) -> int:
    size = max(1, int(round(value)))
    size = size if size % 2 else size + 1
    return min(size, limit if limit % 2 else limit - 1)


class DiscriminativeTargetModel:
    """A (D, kh, kw) linear filter on projected (C, H, W) features, by ridge regression.

    `fit` on the first frame (features, the target's centre and size in cells); `respond` on
    each new frame's features (a map about 1 at the target and near 0 elsewhere); `update`
    with a confident frame's features and where the target was found in them.
    """

    def __init__(self, config: TargetModelConfig | None = None):
        self.config = config if config is not None else TargetModelConfig()
        self.filter: torch.Tensor | None = None  # (1, D, kh, kw)
        self.reference_peak = 1.0  # the fitted filter's response peak on the first frame
        self._projection: torch.Tensor | None = None  # (D, C)
        self._scales: torch.Tensor | None = None  # (C,)
        # Training frames: the spectrum of their projected features (`_spectrum`), computed
        # once when the frame joins, and their label (H, W).
        self._samples: list[tuple[torch.Tensor, torch.Tensor]] = []
        self._weights: list[float] = []
        self._filter_spectrum: torch.Tensor | None = None
        self._regulariser = 0.0
        self._sigma = 1.0

    @property
    def fitted(self) -> bool:
        return self.filter is not None

    def project(self, features: torch.Tensor) -> torch.Tensor:
        """(C, H, W) -> (D, H, W) normalised principal components."""
        if features.ndim != 3:
            raise ValueError(f"features must be (C, H, W), got shape {tuple(features.shape)}")
        if self._projection is None or self._scales is None:
            raise RuntimeError("project() called before fit()")
        channels, height, width = features.shape
        flat = features.float().reshape(channels, -1) * self._scales[:, None]
        return (self._projection @ flat).reshape(-1, height, width)

    def _label(self, height: int, width: int, centre: tuple[float, float]) -> torch.Tensor:
        rows = torch.arange(height, dtype=torch.float32) - centre[0]
        cols = torch.arange(width, dtype=torch.float32) - centre[1]
        return torch.exp(-0.5 * (rows[:, None] ** 2 + cols[None, :] ** 2) / self._sigma**2)

    # The filter's correlation with the features, A f, and its adjoint, A^T r, are computed
    # with FFTs over a grid padded by at least the filter size, so nothing wraps around: the
    # same numbers as a zero-padded "same" convolution, at a fraction of its CPU time.
    def _fitted_filter(self) -> torch.Tensor:
        if self.filter is None:
            raise RuntimeError("the target model has no filter before fit()")
        return self.filter

    def _padded(self, height: int, width: int) -> tuple[int, int]:
        """Lengths with small prime factors only: grid + filter sizes are often primes (24 + 5
        = 29 or 24 + 7 = 31 cells), on which a 32-channel response took about twice as long
        and a refresh's solve two to three times as long (docs/benchmarks.md)."""
        kh, kw = self._fitted_filter().shape[-2:]
        return _fast_size(height + kh), _fast_size(width + kw)

    def _spectrum(self, x: torch.Tensor) -> torch.Tensor:
        """rfft2 of (..., H, W) maps zero-padded to the padded grid."""
        spectrum: torch.Tensor = torch.fft.rfft2(x, s=self._padded(*x.shape[-2:]))
        return spectrum

    def _kernel(self, filt: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """Conjugate spectrum of a (1, D, kh, kw) filter centred on the padded grid's origin."""
        kh, kw = filt.shape[-2:]
        kernel = torch.zeros(filt.shape[1], *self._padded(height, width))
        kernel[:, :kh, :kw] = filt[0]
        return torch.conj(torch.fft.rfft2(torch.roll(kernel, (-(kh // 2), -(kw // 2)), dims=(1, 2))))

    def _apply(self, spectrum: torch.Tensor, kernel: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """out[i, j] = sum_{d,u,v} x_d[i + u - kh//2, j + v - kw//2] f_d[u, v]: (..., H, W) for
        spectra (..., D, H', W') (one frame or a stack), with `kernel` = `_kernel(f)`."""
        out: torch.Tensor = torch.fft.irfft2((spectrum * kernel).sum(-3), s=self._padded(height, width))
        return out[..., :height, :width]

    def _apply_transposed(self, spectra: torch.Tensor, residuals: torch.Tensor) -> torch.Tensor:
        """grad_f of sum_s sum_ij r_sij (A_s f)_ij for spectra (S, D, H', W') and residuals
        (S, H, W): (1, D, kh, kw). The sum over frames is taken on the spectra (it is linear),
        so one inverse FFT serves every frame."""
        kh, kw = self._fitted_filter().shape[-2:]
        padded = self._padded(*residuals.shape[-2:])
        cross = (spectra * torch.conj(self._spectrum(residuals)).unsqueeze(1)).sum(0)
        lags: torch.Tensor = torch.fft.irfft2(cross, s=padded)
        lags = torch.roll(lags, (kh // 2, kw // 2), dims=(1, 2))
        return lags[None, :, :kh, :kw]

    def _normal(self, filt: torch.Tensor, spectra: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """(sum_s w_s A_s^T A_s + lambda) filt, over the stacked frames' spectra."""
        height, width = self._samples[0][1].shape
        responses = self._apply(spectra, self._kernel(filt, height, width), height, width)
        return self._regulariser * filt + self._apply_transposed(spectra, responses * weights)

    def _solve(self, iterations: int) -> None:
        """Conjugate gradients on the normal equations, from the current filter."""
        spectra = torch.stack([spectrum for spectrum, _ in self._samples])
        weights = torch.tensor(self._weights, dtype=torch.float32)[:, None, None]
        labels = torch.stack([label for _, label in self._samples])
        filt = self._fitted_filter()
        rhs = self._apply_transposed(spectra, labels * weights)
        residual = rhs - self._normal(filt, spectra, weights)
        direction = residual.clone()
        norm = float((residual * residual).sum())
        for _ in range(iterations):
            if norm <= 1e-12:
                break
            product = self._normal(direction, spectra, weights)
            curvature = float((direction * product).sum())
            if curvature <= 0:
                break
            step = norm / curvature
            filt = filt + step * direction
            residual = residual - step * product
            new_norm = float((residual * residual).sum())
            direction = residual + (new_norm / norm) * direction
            norm = new_norm
        self.filter = filt
        self._filter_spectrum = self._kernel(filt, *self._samples[0][1].shape)

    def fit(
        self,
        features: torch.Tensor,
        centre: tuple[float, float],
        target_size: tuple[float, float],
        groups: tuple[int, ...] | None = None,
    ) -> None:
        """Fit on one frame: (C, H, W) features, the target's centre (row, col) and size
        (height, width) in cells. `groups`: channel counts of feature groups of different
        magnitude (for example stride-8 and stride-16 features), each scaled to unit RMS
        first so that none dominates; None: one group."""
        features = features.float()
        channels, height, width = features.shape
        groups = groups or (channels,)
        if sum(groups) != channels:
            raise ValueError(f"groups {groups} do not add up to the {channels} channels")
        scales = []
        for part in torch.split(features, list(groups)):
            rms = float(part.pow(2).mean().sqrt())
            scales.append(torch.full((part.shape[0],), 1.0 / max(rms, 1e-6)))
        self._scales = torch.cat(scales)
        flat = features.reshape(channels, -1) * self._scales[:, None]
        dimensions = min(self.config.dimensions, channels)
        _, vectors = torch.linalg.eigh(flat @ flat.T / flat.shape[1])
        projection = vectors[:, -dimensions:].flip(1).T.contiguous()
        # eigh's signs are arbitrary: fix them so that the fit is reproducible everywhere.
        signs = torch.sign(projection[torch.arange(dimensions), projection.abs().argmax(1)])
        self._projection = projection * signs[:, None]
        # Unit feature energy per position on average, so that the regulariser means the same
        # for every sequence.
        energy = float(self.project(features).pow(2).sum(0).mean().sqrt())
        self._projection = self._projection / max(energy, 1e-6)
        x = self.project(features)
        self._sigma = max(self.config.sigma_factor * math.sqrt(target_size[0] * target_size[1]), 0.5)
        kh, kw = _odd(target_size[0], height), _odd(target_size[1], width)
        self.filter = torch.zeros(1, x.shape[0], kh, kw)
        # A filter cell sees about one unit of feature energy per image position.
        self._regulariser = self.config.regularisation * height * width / x.shape[0]
        self._samples = [(self._spectrum(x), self._label(height, width, centre))]
        self._weights = [1.0]
        self._solve(self.config.fit_iterations)
        self.reference_peak = float(self.respond(features).max())

    def respond(self, features: torch.Tensor) -> torch.Tensor:
        """(H, W) response of the filter on new (C, H, W) features."""
        if self._filter_spectrum is None:
            raise RuntimeError("respond() called before fit()")
        x = self.project(features)
        return self._apply(self._spectrum(x), self._filter_spectrum, *x.shape[-2:])

    def update(self, features: torch.Tensor, centre: tuple[float, float], rate: float | None = None) -> None:
        """Refresh with a frame's (C, H, W) features and where the target is in them (row,
        col cells): the frame joins the memory with weight `rate` (the older frames' weights
        shrink by 1 - rate; beyond `memory` frames the lightest one after the first goes) and
        the filter takes a few more solver steps."""
        if not self.fitted:
            raise RuntimeError("update() called before fit()")
        rate = self.config.learning_rate if rate is None else rate
        x = self.project(features)
        self._weights = [weight * (1.0 - rate) for weight in self._weights]
        self._samples.append((self._spectrum(x), self._label(x.shape[1], x.shape[2], centre)))
        self._weights.append(rate)
        if len(self._samples) > max(self.config.memory, 2):
            drop = 1 + min(range(len(self._weights) - 1), key=lambda i: self._weights[1 + i])
            del self._samples[drop], self._weights[drop]
        total = sum(self._weights)
        self._weights = [weight / total for weight in self._weights]
        self._solve(self.config.update_iterations)


def refine_peak(response: torch.Tensor) -> tuple[float, float, float]:
    """The (row, col) of an (H, W) map's maximum with a parabola fitted through its
    neighbours along each axis (sub-cell precision), and the maximum's value."""
    height, width = response.shape
    index = int(torch.argmax(response))
    row, col = divmod(index, width)
    peak = float(response[row, col])

    def offset(before: float, after: float) -> float:
        curvature = before - 2.0 * peak + after
        if curvature >= 0:
            return 0.0
        return max(-0.5, min(0.5, 0.5 * (before - after) / curvature))

    d_row = offset(float(response[row - 1, col]), float(response[(row + 1) % height, col])) if 0 < row < height - 1 else 0.0
    d_col = offset(float(response[row, col - 1]), float(response[row, (col + 1) % width])) if 0 < col < width - 1 else 0.0
    return row + d_row, col + d_col, peak


class InstanceMatcher:
    """The tracker's side of the target model: fits it on the first frame's search crop,
    fuses its response with the learned score map, estimates the box size, and refreshes it
    on confident frames.

    `locate` has `decode_boxes`' contract: normalised (cx, cy, w, h) boxes (1, 4) in the search
    crop and the score (1,), so the tracker swaps one call for the other.

    Box size: the learned size map over-estimates (about 1.8x the target's area on real
    scenes), so it is calibrated on the first frame (ratio of the true size to the head's size
    at the target) and only moves the size by a bounded step on confident frames. On real
    scenes the head can also barely follow the target's scale: then the search crop, cut
    around the box it estimated, feeds its bias back (a box 9 % too large gives a crop 9 %
    too large, on which the head again answers too large), and the box grows frame after
    frame. `measure_size_response` finds on the first frame how far the head follows scale,
    and `size_trust` scales the size steps by it.
    """

    def __init__(self, config: TargetModelConfig | None = None, groups: tuple[int, ...] | None = None):
        self.config = config if config is not None else TargetModelConfig()
        self.groups = groups
        self.filter = DiscriminativeTargetModel(self.config)
        self._confident_frames = 0
        self._calibration = torch.ones(2)
        self.size_trust = 1.0  # 0..1: the share of size_rate the head's size gets
        self.size_slope: float | None = None  # measured d log(head size) / d log(crop scale)
        self.last_response_peak = 0.0

    @staticmethod
    def _sample(maps: torch.Tensor, cx: float, cy: float) -> torch.Tensor:
        """Bilinear sample of (1, C, h, w) maps at normalised (cx, cy) -> (C,)."""
        grid = torch.tensor([[[[2.0 * cx - 1.0, 2.0 * cy - 1.0]]]], dtype=maps.dtype, device=maps.device)
        return F.grid_sample(maps, grid, mode="bilinear", padding_mode="border", align_corners=False)[0, :, 0, 0]

    def fit(self, features: torch.Tensor, size_map: torch.Tensor, target_wh: tuple[float, float]) -> None:
        """First frame: `features` (1, C, H, W) of a search crop centred on the target,
        `size_map` (1, 2, h, w) of the head on it, target_wh the target's normalised size."""
        features = features[0].detach().float().cpu()
        _, height, width = features.shape
        centre = (0.5 * height - 0.5, 0.5 * width - 0.5)
        size = (target_wh[1] * height, target_wh[0] * width)
        self.filter.fit(features, centre, size, self.groups)
        head = self._sample(size_map.float().cpu(), 0.5, 0.5)
        true = torch.tensor(target_wh, dtype=torch.float32)
        self._calibration = (true / head.clamp_min(1e-4)).clamp(0.3, 3.0)

    def measure_size_response(self, size_maps: dict[float, torch.Tensor]) -> float:
        """First frame: the head's (1, 2, h, w) size maps on crops around the first box at
        several scales ({crop scale relative to the first box: map}, 1.0 included) -> the
        least-squares slope of log(head size at the centre) against log(scale), which sets
        `size_trust` (TargetModelConfig.size_trust_slopes)."""
        if len(size_maps) < 2:
            raise ValueError(f"the size response needs maps at two scales at least, got {sorted(size_maps)}")
        low, high = self.config.size_trust_slopes
        scales = torch.tensor(sorted(size_maps), dtype=torch.float64).log()
        sizes = torch.stack([self._sample(size_maps[scale].float().cpu(), 0.5, 0.5) for scale in sorted(size_maps)])
        log_sizes = sizes.double().clamp_min(1e-6).log().mean(1)  # log sqrt(w h)
        centred = scales - scales.mean()
        slope = float((centred * (log_sizes - log_sizes.mean())).sum() / (centred * centred).sum())
        self.size_slope = slope
        self.size_trust = min(1.0, max(0.0, (-slope - low) / (high - low)))
        return slope

    def locate(
        self,
        features: torch.Tensor,
        score_map: torch.Tensor,
        size_map: torch.Tensor,
        previous_wh: tuple[float, float],
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A frame: features (1, C, H, W), the head's score and size maps, and the previous
        box's normalised size -> boxes (1, 4) normalised (cx, cy, w, h), score (1,)."""
        config = self.config
        features = features[0].detach().float().cpu()
        _, height, width = features.shape
        response = self.filter.respond(features)
        learned = F.interpolate(
            score_map.float().cpu(), size=(height, width), mode="bilinear", align_corners=False
        )[0, 0]
        fused = (config.weight * response.clamp(0.0, 1.0) + (1.0 - config.weight) * learned) * _window(height, width)
        row, col, score = refine_peak(fused)
        cx, cy = (col + 0.5) / width, (row + 0.5) / height
        peak = float(response[min(max(round(row), 0), height - 1), min(max(round(col), 0), width - 1)])
        self.last_response_peak = peak
        previous = torch.tensor(previous_wh, dtype=torch.float32)
        confident = peak >= config.update_threshold * self.filter.reference_peak
        if confident:
            head = self._sample(size_map.float().cpu(), cx, cy) * self._calibration
            step = (head / previous).clamp_min(1e-6).pow(config.size_rate * self.size_trust)
            step = step.clamp(1.0 - config.max_size_change, 1.0 + config.max_size_change)
            size = previous * step
            self._confident_frames += 1
            if self._confident_frames % max(config.update_interval, 1) == 0:
                self.filter.update(features, (row, col))
        else:
            size = previous
        boxes = torch.tensor([[cx, cy, float(size[0]), float(size[1])]], dtype=torch.float32)
        return boxes, torch.tensor([score], dtype=torch.float32)
