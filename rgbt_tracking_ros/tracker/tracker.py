"""The RGB-thermal tracker runtime: numpy frames in, (x, y, w, h) boxes out.

It runs the official OSTrack-style inference of AINet (one fixed template) and DMTrack
(a sliding memory of the latest templates) around any model with the shared interface. What
happens to the target state after each prediction (follow it blindly, as the papers do, or keep
the last confident box, widen the search and re-detect over the whole frame) is the policy of
`target_state.TargetState`; TrackerConfig.policy picks it.
"""
from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from rgbt_tracking_ros.defaults import TRACKER_POLICIES
from rgbt_tracking_ros.models.head import decode_boxes
from rgbt_tracking_ros.models.protocol import DEFAULT_SEARCH_FACTOR, model_geometry, tracking_model
from rgbt_tracking_ros.tracker.acceleration import (
    Uploader,
    accelerate,
    autocast_context,
    autocast_dtype,
    execution_mode,
    torch_threads,
)
from rgbt_tracking_ros.tracker.geometry import (
    BoxLike,
    crop_square,
    hann_window,
    map_box_back,
    validate_box,
)
from rgbt_tracking_ros.tracker.onnx_backend import select_backend
from rgbt_tracking_ros.tracker.preprocess import (
    check_homography,
    thermal_to_rgb8,
    to_rgb_uint8,
)
from rgbt_tracking_ros.tracker.result import TrackResult, TrackState
from rgbt_tracking_ros.tracker.target_model import InstanceMatcher, TargetModelConfig
from rgbt_tracking_ros.tracker.target_state import StatePolicy, TargetState, tile_boxes
from rgbt_tracking_ros.tracker.thermal_crop import ThermalFrame, crop_thermal

CLIP_MARGIN = 10
# The peak score below which the target counts as LOST when neither TrackerConfig nor the
# model's config (`tracker: {lost_threshold: ...}` in config/models/<name>.yaml) sets one.
DEFAULT_LOST_THRESHOLD = 0.25
# Torch threads of the host work around the model call (acceleration.torch_threads).
HOST_THREADS = 1


@dataclass
class TrackerConfig:
    """Inference settings; the crop factors default to the model's (its config's geometry)."""

    template_factor: float | None = None  # None: model.geometry.template_factor
    search_factor: float | None = None  # None: model.geometry.search_factor
    # "robust": low-confidence predictions do not move the target, the search widens while
    # LOST and the whole frame is searched every redetect_interval lost frames; "official":
    # AINet's / DMTrack's own protocol (every prediction is followed), for benchmark runs.
    policy: str = TRACKER_POLICIES[0]
    # Windowed peak score below which the target counts as LOST; None: the model config's
    # `tracker.lost_threshold`, else DEFAULT_LOST_THRESHOLD.
    lost_threshold: float | None = None
    # Raw peak score a full-frame search needs to re-acquire; None: the model config's
    # `tracker.redetect_threshold`, else the lost threshold.
    redetect_threshold: float | None = None
    # Confidence a local peak needs to re-acquire a LOST target; None: the model config's
    # `tracker.reacquire_threshold`, else the lost threshold (no hysteresis).
    reacquire_threshold: float | None = None
    search_growth: float = 1.15  # search factor x this per LOST frame (robust) ...
    max_search_factor: float = 6.0  # ... up to this
    redetect_interval: int = 10  # full-frame search every this many LOST frames; 0: never
    redetect_max_tiles: int = 48  # crops of one full-frame search at most (bounds its cost)
    # Per-frame bound on |log change| of scale sqrt(w h) and of aspect w / h (LasHeR's 99th
    # percentile of |log scale change| per frame is 0.156), then exponential smoothing of the
    # size with this weight on the new measurement (robust policy).
    max_scale_step: float = 0.156
    max_aspect_step: float = 0.156
    size_smoothing: float = 0.5
    device: str = "cpu"
    half: bool = False  # the older switch for precision="fp16"
    precision: str | None = None  # "fp32", "fp16" or "bf16" autocast; None: from `half`
    cuda_graph: bool = False  # replay CUDA graphs of the model call; ignored (eager) on CPU
    compile: bool = False  # torch.compile the model call (minutes of compiling); ignored on CPU
    thermal_mode: str = "minmax"
    thermal_range: tuple[float, float] | None = None
    homography: npt.NDArray[np.float64] | None = None  # thermal pixel -> RGB pixel; None = resize
    # Online discriminative target model (tracker/target_model.py) fused with the learned
    # score map. None: as the model's config says (`tracker: {target_model: ...}`; on for
    # compact_rgbt, off for AINet / DMTrack); it needs a model whose `track_search` returns
    # "search_features".
    target_model: bool | None = None
    target_model_config: TargetModelConfig | None = None
    # How the model runs: "torch", "onnxruntime" (CPU, fp32; tracker/onnx_backend.py) or
    # "auto": onnxruntime where it applies and is installed, torch otherwise.
    backend: str = "auto"


def _resolve_device(name: str) -> torch.device:
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise ValueError(f"device must be 'cpu' or 'cuda[:n]', got {name!r}") from error
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda[:n]', got {name!r}")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(
                f"device {name!r} requested but CUDA is not available "
                "(torch.cuda.is_available() is False)"
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise RuntimeError(
                f"device {name!r} requested but only {torch.cuda.device_count()} CUDA device(s)"
            )
    return device


def _check_config(config: TrackerConfig) -> None:
    if not all(factor is not None and factor > 0 for factor in (config.template_factor, config.search_factor)):
        raise ValueError("template_factor and search_factor must be positive")
    if config.policy not in TRACKER_POLICIES:
        raise ValueError(f"policy must be one of {TRACKER_POLICIES}, got {config.policy!r}")
    for name in ("lost_threshold", "redetect_threshold", "reacquire_threshold"):
        value = getattr(config, name)
        if value is not None and not np.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value}")
    if config.redetect_max_tiles < 1:
        raise ValueError("redetect_max_tiles must be >= 1")
    # Convert a tiny frame once so that a bad thermal_mode / thermal_range fails here, not on
    # the first frame.
    thermal_to_rgb8(np.zeros((1, 1), np.uint16), config.thermal_mode, config.thermal_range)


def _wants_target_model(config: TrackerConfig, model: nn.Module) -> bool:
    if config.target_model is not None:
        return bool(config.target_model)
    return bool(_model_tracker_defaults(getattr(model, "config", None) or {}).get("target_model", False))


def _model_tracker_defaults(model_config: Mapping[str, Any]) -> dict[str, Any]:
    if "tracker" in model_config:
        section: dict[str, Any] = model_config["tracker"] or {}
        return section
    name = model_config.get("name")
    if not name:
        return {}
    from rgbt_tracking_ros.models.registry import load_model_config

    try:
        registered: dict[str, Any] = load_model_config(name).get("tracker") or {}
    except (KeyError, FileNotFoundError, ValueError):
        return {}
    return registered


def state_policy(config: TrackerConfig, model_config: Mapping[str, Any] | None = None) -> StatePolicy:
    """The target-state settings: TrackerConfig's, with thresholds it leaves at None taken
    from the model config's `tracker:` section (config/models/<name>.yaml; for a checkpoint
    whose stored config predates that section, the registered config of the same name), else
    DEFAULT_LOST_THRESHOLD."""
    defaults = _model_tracker_defaults(model_config or {})
    lost = config.lost_threshold
    if lost is None:
        lost = float(defaults.get("lost_threshold", DEFAULT_LOST_THRESHOLD))
    redetect = config.redetect_threshold
    if redetect is None:
        redetect = float(defaults.get("redetect_threshold", lost))
    reacquire = config.reacquire_threshold
    if reacquire is None:
        reacquire = float(defaults.get("reacquire_threshold", lost))
    search_factor = DEFAULT_SEARCH_FACTOR if config.search_factor is None else config.search_factor
    return StatePolicy(
        policy=config.policy,
        lost_threshold=lost,
        redetect_threshold=redetect,
        reacquire_threshold=reacquire,
        search_factor=search_factor,
        search_growth=config.search_growth,
        max_search_factor=max(config.max_search_factor, search_factor),
        redetect_interval=config.redetect_interval,
        max_scale_step=config.max_scale_step,
        max_aspect_step=config.max_aspect_step,
        size_smoothing=config.size_smoothing,
        clip_margin=CLIP_MARGIN,
    )


class RGBTTracker:
    """Single-object RGB-thermal tracker; `initialize` once, then `track` every frame."""

    def __init__(self, model: nn.Module, config: TrackerConfig | None = None):
        config = config if config is not None else TrackerConfig()
        geometry = model_geometry(model)  # sizes, factors, templates: the model protocol
        self._template_factor = geometry.template_factor if config.template_factor is None else config.template_factor
        self._search_factor = geometry.search_factor if config.search_factor is None else config.search_factor
        self.config = replace(config, template_factor=self._template_factor, search_factor=self._search_factor)
        _check_config(self.config)
        self.num_templates = geometry.num_templates
        self.template_size = geometry.template_size
        self.search_size = geometry.search_size
        self.feat_size = geometry.feat_size
        self.policy = state_policy(self.config, getattr(model, "config", None))
        self._homography = (
            None if self.config.homography is None else check_homography(self.config.homography)
        )
        self.device = _resolve_device(self.config.device)
        self._autocast = autocast_dtype(self.config.precision, self.config.half, self.device)
        self.model = model.to(self.device).eval()
        self.execution = execution_mode(self.config.compile, self.config.cuda_graph, self.device)
        calls = tracking_model(self.model)
        self._track_search: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], dict[str, torch.Tensor]] = (
            accelerate(calls.track_search, self.execution)
        )
        self._encode_templates: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = calls.encode_templates
        self.onnx = select_backend(self.model, self.config.backend, self.device, self._autocast, self.execution)
        if self.onnx is not None:
            self._encode_templates, self._track_search = self.onnx.encode_templates, self.onnx.track_search
        self.backend = "torch" if self.onnx is None else self.onnx.name
        self._upload = Uploader(self.device)
        self._model_threads = torch.get_num_threads()  # the caller's, read again on every call
        self._use_target_model = _wants_target_model(self.config, model)
        self._window = torch.from_numpy(hann_window(self.feat_size)).to(
            self.device, torch.float32
        )[None, None]
        self.reset()

    def reset(self) -> None:
        """Forget the target; `initialize` must be called again before `track`."""
        self._box: npt.NDArray[np.float64] | None = None
        self._memory: deque[tuple[torch.Tensor, torch.Tensor]] = deque(
            maxlen=self.num_templates
        )
        self._encoded_templates: torch.Tensor | None = None
        self._matcher: InstanceMatcher | None = None
        self._age = 0
        self._frames_since_seen = 0
        self._target: TargetState | None = None

    @property
    def initialized(self) -> bool:
        return self._box is not None

    @property
    def box(self) -> npt.NDArray[np.float64] | None:
        """Current (x, y, w, h) state in RGB pixels, or None before `initialize`."""
        return None if self._box is None else self._box.copy()

    @property
    def age(self) -> int:
        """Frames tracked since `initialize`."""
        return self._age

    @property
    def frames_since_seen(self) -> int:
        """Consecutive LOST frames; 0 while TRACKING."""
        return self._frames_since_seen

    @property
    def search_factor(self) -> float:
        """The search factor the next `track` will crop with (it widens while LOST)."""
        return self._search_factor if self._target is None else self._target.search_factor

    def set_lost_threshold(self, value: float | None) -> None:
        """Change the LOST threshold at once (a live parameter); None: the model config's."""
        self.config = replace(self.config, lost_threshold=value)
        _check_config(self.config)
        self.policy = state_policy(self.config, getattr(self.model, "config", None))
        if self._target is not None:
            self._target.policy = self.policy

    @contextlib.contextmanager
    def _host_work(self) -> Iterator[None]:
        """A public call's body: on HOST_THREADS torch threads, the caller's count kept for
        the model call (`_run_model`)."""
        self._model_threads = torch.get_num_threads()
        with torch_threads(HOST_THREADS):
            yield

    def initialize(self, rgb: np.ndarray, thermal: np.ndarray, box_xywh: BoxLike) -> None:
        """Start tracking the object in box_xywh (RGB pixels) of this frame pair."""
        with self._host_work():
            self._initialize(rgb, thermal, box_xywh)

    def _initialize(self, rgb: np.ndarray, thermal: np.ndarray, box_xywh: BoxLike) -> None:
        rgb, frame = self._prepare(rgb, thermal)
        box = validate_box(box_xywh, rgb.shape[0], rgb.shape[1])
        template = self._template(rgb, frame, box)
        self.reset()
        self._memory.append(template)
        self._box = box
        self._target = TargetState(self.policy, box)
        if self._use_target_model:
            self._fit_target_model(rgb, frame, box)

    def track(self, rgb: np.ndarray, thermal: np.ndarray) -> TrackResult:
        """Locate the target in the next frame pair."""
        with self._host_work():
            return self._track(rgb, thermal)

    def _track(self, rgb: np.ndarray, thermal: np.ndarray) -> TrackResult:
        if self._box is None or self._target is None:
            raise RuntimeError("track() called before initialize()")
        rgb, frame = self._prepare(rgb, thermal)
        height, width = rgb.shape[:2]
        target = self._target
        factor = target.search_factor
        pred, confidence = self._search(rgb, frame, self._box, factor)
        before = (target.box.copy(), target.frames_since_seen)
        try:
            decision = target.update(pred, confidence, height, width)
            if decision.state is TrackState.LOST and target.full_search_due:
                found, score, tiles = self._search_frame(rgb, frame, self._box)
                decision = target.redetect(found, score, tiles, height, width)
                if decision.redetected:
                    confidence = score  # the full-frame peak (raw) that re-acquired the target
        except BaseException:
            target.box, target.frames_since_seen = before
            raise
        box = decision.box
        if self.num_templates > 1 and decision.take_template:
            self._memory.append(self._template(rgb, frame, box))
            self._encoded_templates = None
        self._box = box
        self._age += 1
        self._frames_since_seen = decision.frames_since_seen
        return TrackResult(
            box.copy(),
            confidence,
            decision.state,
            self._frames_since_seen,
            decision.reason,
            search_factor=factor,
            redetected=decision.redetected,
        )

    def peaks_at(self, rgb: np.ndarray, thermal: np.ndarray, box_xywh: BoxLike) -> tuple[float, float]:
        """For a search crop centred on `box_xywh` at the base search factor: the confidence
        `track` would report (what `lost_threshold` is calibrated on) and the raw peak the
        full-frame search would compare (no window, no target model: `redetect_threshold`),
        from one model call, leaving the target's box and state as they are
        (rgbt_tracking_ros/eval/calibration.py)."""
        if self._box is None:
            raise RuntimeError("peaks_at() called before initialize()")
        rgb, frame = self._prepare(rgb, thermal)
        box = validate_box(box_xywh, rgb.shape[0], rgb.shape[1])
        output, resize_factor = self._search_output(rgb, frame, box, self._search_factor)
        return self._decode(output, box, resize_factor)[1], self._decode_raw(output, box, resize_factor)[1]

    def _search(
        self, rgb: npt.NDArray[np.uint8], thermal: ThermalFrame, box: npt.NDArray[np.float64], factor: float
    ) -> tuple[npt.NDArray[np.float64], float]:
        """One search crop around `box`: the model call and the score-map decode (`_decode`)."""
        output, resize_factor = self._search_output(rgb, thermal, box, factor)
        return self._decode(output, box, resize_factor)

    def _decode(
        self, output: dict[str, torch.Tensor], box: npt.NDArray[np.float64], resize_factor: float
    ) -> tuple[npt.NDArray[np.float64], float]:
        """The best peak of the windowed score map, or of the target model fused with it: its
        box (x, y, w, h) in image pixels, not clipped, and its score."""
        search_size = self.search_size
        score_map, size_map, offset_map = self._check_output(output)
        if self._matcher is None:
            boxes, score = decode_boxes(self._window * score_map, size_map, offset_map)
        else:  # instance-aware matching: the online target model fused with the score map
            previous_wh = (box[2:] * resize_factor / search_size).tolist()
            boxes, score = self._matcher.locate(output["search_features"], score_map, size_map, previous_wh)
        found = self._image_box(boxes, box, resize_factor)
        if found is None:
            raise RuntimeError(f"model predicted a non-finite box {boxes[0].tolist()}")
        return found, float(score[0])

    def _decode_raw(
        self, output: dict[str, torch.Tensor], box: npt.NDArray[np.float64], resize_factor: float
    ) -> tuple[npt.NDArray[np.float64] | None, float]:
        """The learned map's best peak without the Hann window or the target model (a
        re-detected target may be anywhere in the crop): its box in image pixels (None if not
        finite) and its score."""
        boxes, scores = decode_boxes(*self._check_output(output))
        return self._image_box(boxes, box, resize_factor), float(scores[0])

    def _image_box(
        self, boxes: torch.Tensor, box: npt.NDArray[np.float64], resize_factor: float
    ) -> npt.NDArray[np.float64] | None:
        """A decoded normalised box of the crop around `box` in image pixels, or None if it
        is not finite. Scaled in float32 before leaving torch, as the official code does."""
        pred = np.array((boxes[0] * self.search_size / resize_factor).tolist(), dtype=np.float64)
        if not np.all(np.isfinite(pred)):
            return None
        return map_box_back(pred, box, self.search_size, resize_factor)

    def _search_output(
        self, rgb: npt.NDArray[np.uint8], thermal: ThermalFrame, box: npt.NDArray[np.float64], factor: float
    ) -> tuple[dict[str, torch.Tensor], float]:
        """The model's output on the search crop pair around `box`, and the crop's resize factor."""
        search_rgb, resize_factor = crop_square(rgb, box, factor, self.search_size)
        search_thermal = crop_thermal(thermal, box, factor, self.search_size)
        search = self._upload(np.stack([search_rgb, search_thermal]))
        with torch.inference_mode(), autocast_context(self.device, self._autocast, self.execution):
            return self._run_model(search[0:1], search[1:2]), resize_factor

    def _search_frame(
        self, rgb: npt.NDArray[np.uint8], thermal: ThermalFrame, box: npt.NDArray[np.float64]
    ) -> tuple[npt.NDArray[np.float64] | None, float, int]:
        """Re-detection over the whole frame: `_raw_peak` on each crop of `tile_boxes`.
        Returns the best peak's box in image pixels (None if no finite one), its raw score and
        the number of crops."""
        height, width = rgb.shape[:2]
        tiles = tile_boxes(height, width, box, self._search_factor, self.config.redetect_max_tiles)
        best_box: npt.NDArray[np.float64] | None = None
        best_score = -np.inf
        for tile in tiles:
            found, score = self._raw_peak(rgb, thermal, tile)
            if found is not None and score > best_score:
                best_box, best_score = found, score
        return best_box, best_score, len(tiles)

    def _raw_peak(
        self, rgb: npt.NDArray[np.uint8], thermal: ThermalFrame, box: npt.NDArray[np.float64]
    ) -> tuple[npt.NDArray[np.float64] | None, float]:
        """`_decode_raw` on the search crop around `box`, through the local search's own call
        (templates encoded once, the tracker's backend)."""
        output, resize_factor = self._search_output(rgb, thermal, box, self._search_factor)
        return self._decode_raw(output, box, resize_factor)

    def _fit_target_model(
        self, rgb: npt.NDArray[np.uint8], thermal: ThermalFrame, box: npt.NDArray[np.float64]
    ) -> None:
        """Fit the online target model on this frame's search crop around the given box, and
        measure how far the head's size follows the target's scale (`size_probe`)."""
        output, resize_factor = self._search_output(rgb, thermal, box, self._search_factor)
        if "search_features" not in output:
            raise RuntimeError("target_model needs a model whose output has 'search_features'")
        _, size_map, _ = self._check_output(output)
        groups = getattr(self.model, "SEARCH_FEATURE_GROUPS", None)
        matcher = InstanceMatcher(self.config.target_model_config, groups)
        target_wh = tuple((box[2:] * resize_factor / self.search_size).tolist())
        matcher.fit(output["search_features"], size_map, target_wh)
        probe = matcher.config.size_probe
        if probe > 1.0:
            # A crop `scale` times the search factor is the crop of the box scaled by `scale`.
            size_maps = {1.0: size_map}
            for scale in (1.0 / probe, probe):
                probed, _ = self._search_output(rgb, thermal, box, self._search_factor * scale)
                size_maps[scale] = self._check_output(probed)[1]
            matcher.measure_size_response(size_maps)
        self._matcher = matcher

    def _prepare(self, rgb: np.ndarray, thermal: np.ndarray) -> tuple[npt.NDArray[np.uint8], ThermalFrame]:
        """Check both frames. The thermal one stays in its own pixels: only its crops are
        converted to 8 bit and put onto the RGB grid (`crop_thermal`), not the whole frame."""
        rgb = to_rgb_uint8(rgb)
        return rgb, ThermalFrame.of(thermal, rgb.shape, self.config.thermal_mode,
                                    self.config.thermal_range, self._homography)

    def _template(
        self, rgb: npt.NDArray[np.uint8], thermal: ThermalFrame, box: npt.NDArray[np.float64]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        factor, size = self._template_factor, self.template_size
        patch_rgb, _ = crop_square(rgb, box, factor, size)
        patch_thermal = crop_thermal(thermal, box, factor, size)
        patches = self._upload(np.stack([patch_rgb, patch_thermal]))
        return patches[0:1], patches[1:2]

    def _run_model(self, search_rgb: torch.Tensor, search_thermal: torch.Tensor) -> dict[str, torch.Tensor]:
        """Templates are encoded once per template memory, not once per frame (model protocol).
        The model runs on the caller's torch threads, the host work around it on one."""
        with torch_threads(self._model_threads):
            if self._encoded_templates is None:
                self._encoded_templates = self._encode_templates(*self._templates())
            return self._track_search(self._encoded_templates, search_rgb, search_thermal)

    def _templates(self) -> tuple[torch.Tensor, torch.Tensor]:
        """AINet: (1, 3, S, S) each; DMTrack: (1, k, 3, S, S) each, oldest template first."""
        if self.num_templates == 1:
            return self._memory[0]
        rgb = torch.stack([entry[0] for entry in self._memory], dim=1)
        thermal = torch.stack([entry[1] for entry in self._memory], dim=1)
        return rgb, thermal

    def _check_output(self, output: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The three head maps as float32, after checking they fit the Hann window."""
        grid = (self.feat_size, self.feat_size)
        maps = []
        for key, channels in (("score_map", 1), ("size_map", 2), ("offset_map", 2)):
            if key not in output:
                raise RuntimeError(f"model output lacks {key!r}")
            value = output[key]
            if tuple(value.shape) != (1, channels, *grid):
                raise RuntimeError(
                    f"model output {key!r} has shape {tuple(value.shape)}, "
                    f"expected {(1, channels, *grid)}"
                )
            maps.append(value.float())
        return maps[0], maps[1], maps[2]
