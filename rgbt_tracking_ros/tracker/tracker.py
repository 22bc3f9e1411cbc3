"""The RGB-thermal tracker runtime: numpy frames in, (x, y, w, h) boxes out.

It runs the official OSTrack-style inference of AINet (one fixed template) and DMTrack
(a sliding memory of the latest templates) around any model with the shared interface.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import nn

from rgbt_tracking_ros.models.head import decode_boxes
from rgbt_tracking_ros.models.protocol import model_geometry
from rgbt_tracking_ros.tracker.acceleration import (
    Uploader,
    accelerate,
    autocast_context,
    autocast_dtype,
    execution_mode,
)
from rgbt_tracking_ros.tracker.geometry import (
    BoxLike,
    clip_box,
    crop_square,
    hann_window,
    map_box_back,
    validate_box,
)
from rgbt_tracking_ros.tracker.result import TrackResult, TrackState
from rgbt_tracking_ros.tracker.target_model import InstanceMatcher, TargetModelConfig
from rgbt_tracking_ros.tracker.preprocess import (
    align_thermal,
    check_homography,
    thermal_to_rgb8,
    to_rgb_uint8,
)

CLIP_MARGIN = 10


@dataclass
class TrackerConfig:
    """Inference settings; the crop factors default to the model's (its config's geometry)."""

    template_factor: float | None = None  # None: model.geometry.template_factor
    search_factor: float | None = None  # None: model.geometry.search_factor
    lost_threshold: float = 0.25  # windowed peak score below which the target counts as LOST
    device: str = "cpu"
    half: bool = False  # the older switch for precision="fp16"
    precision: str | None = None  # "fp32", "fp16" or "bf16" autocast; None: from `half`
    cuda_graph: bool = False  # replay CUDA graphs of the model call; ignored (eager) on CPU
    compile: bool = False  # torch.compile the model call (minutes of compiling); ignored on CPU
    thermal_mode: str = "minmax"
    thermal_range: tuple[float, float] | None = None
    homography: np.ndarray | None = None  # thermal pixel -> RGB pixel; None = resize
    # Online discriminative target model (tracker/target_model.py) fused with the learned
    # score map. None: as the model's config says (`tracker: {target_model: ...}`; on for
    # compact_rgbt, off for AINet / DMTrack); it needs a model whose `track_search` returns
    # "search_features".
    target_model: bool | None = None
    target_model_config: TargetModelConfig | None = None


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
    if not (config.template_factor > 0 and config.search_factor > 0):
        raise ValueError("template_factor and search_factor must be positive")
    if not np.isfinite(config.lost_threshold):
        raise ValueError(f"lost_threshold must be finite, got {config.lost_threshold}")
    # Convert a tiny frame once so that a bad thermal_mode / thermal_range fails here, not on
    # the first frame.
    thermal_to_rgb8(np.zeros((1, 1), np.uint16), config.thermal_mode, config.thermal_range)


def _wants_target_model(config: TrackerConfig, model: nn.Module) -> bool:
    if config.target_model is not None:
        return bool(config.target_model)
    settings = (getattr(model, "config", None) or {}).get("tracker") or {}
    return bool(settings.get("target_model", False))


class RGBTTracker:
    """Single-object RGB-thermal tracker; `initialize` once, then `track` every frame."""

    def __init__(self, model: nn.Module, config: TrackerConfig | None = None):
        config = config if config is not None else TrackerConfig()
        geometry = model_geometry(model)  # sizes, factors, templates: the model protocol
        self.config = replace(
            config,
            template_factor=geometry.template_factor if config.template_factor is None else config.template_factor,
            search_factor=geometry.search_factor if config.search_factor is None else config.search_factor,
        )
        _check_config(self.config)
        self.num_templates = geometry.num_templates
        self.template_size = geometry.template_size
        self.search_size = geometry.search_size
        self.feat_size = geometry.feat_size
        self._homography = (
            None if self.config.homography is None else check_homography(self.config.homography)
        )
        self.device = _resolve_device(self.config.device)
        self._autocast = autocast_dtype(self.config.precision, self.config.half, self.device)
        self.model = model.to(self.device).eval()
        self.execution = execution_mode(self.config.compile, self.config.cuda_graph, self.device)
        self._track_search = accelerate(self.model.track_search, self.execution)
        self._upload = Uploader(self.device)
        self._use_target_model = _wants_target_model(self.config, model)
        self._window = torch.from_numpy(hann_window(self.feat_size)).to(
            self.device, torch.float32
        )[None, None]
        self.reset()

    def reset(self) -> None:
        """Forget the target; `initialize` must be called again before `track`."""
        self._box: np.ndarray | None = None
        self._memory: deque[tuple[torch.Tensor, torch.Tensor]] = deque(
            maxlen=self.num_templates
        )
        self._encoded_templates: torch.Tensor | None = None
        self._matcher: InstanceMatcher | None = None
        self._age = 0
        self._frames_since_seen = 0

    @property
    def initialized(self) -> bool:
        return self._box is not None

    @property
    def box(self) -> np.ndarray | None:
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

    def initialize(self, rgb: np.ndarray, thermal: np.ndarray, box_xywh: BoxLike) -> None:
        """Start tracking the object in box_xywh (RGB pixels) of this frame pair."""
        rgb, thermal = self._prepare(rgb, thermal)
        box = validate_box(box_xywh, rgb.shape[0], rgb.shape[1])
        template = self._template(rgb, thermal, box)
        self.reset()
        self._memory.append(template)
        self._box = box
        if self._use_target_model:
            self._fit_target_model(rgb, thermal, box)

    def track(self, rgb: np.ndarray, thermal: np.ndarray) -> TrackResult:
        """Locate the target in the next frame pair."""
        if self._box is None:
            raise RuntimeError("track() called before initialize()")
        rgb, thermal = self._prepare(rgb, thermal)
        height, width = rgb.shape[:2]
        factor, search_size = self.config.search_factor, self.search_size
        search_rgb, resize_factor = crop_square(rgb, self._box, factor, search_size)
        search_thermal, _ = crop_square(thermal, self._box, factor, search_size)
        search = self._upload(np.stack([search_rgb, search_thermal]))
        with torch.inference_mode(), autocast_context(self.device, self._autocast, self.execution):
            output = self._run_model(search[0:1], search[1:2])
        score_map, size_map, offset_map = self._check_output(output)
        if self._matcher is None:
            boxes, score = decode_boxes(self._window * score_map, size_map, offset_map)
        else:  # instance-aware matching: the online target model fused with the score map
            previous_wh = (self._box[2:] * resize_factor / search_size).tolist()
            boxes, score = self._matcher.locate(output["search_features"], score_map, size_map, previous_wh)
        # Scaled in float32 before leaving torch, as the official code does.
        pred = np.array((boxes[0] * search_size / resize_factor).tolist(), dtype=np.float64)
        if not np.all(np.isfinite(pred)):
            raise RuntimeError(f"model predicted a non-finite box {pred.tolist()}")
        box = clip_box(
            map_box_back(pred, self._box, search_size, resize_factor), height, width, CLIP_MARGIN
        )
        confidence = float(score[0])
        if self.num_templates > 1:
            self._memory.append(self._template(rgb, thermal, box))
            self._encoded_templates = None
        lost = confidence < self.config.lost_threshold
        self._box = box
        self._age += 1
        self._frames_since_seen = self._frames_since_seen + 1 if lost else 0
        return TrackResult(
            box.copy(),
            confidence,
            TrackState.LOST if lost else TrackState.TRACKING,
            self._frames_since_seen,
            "confidence below lost_threshold" if lost else "",
        )

    def _fit_target_model(self, rgb: np.ndarray, thermal: np.ndarray, box: np.ndarray) -> None:
        """Fit the online target model on this frame's search crop around the given box."""
        search_rgb, resize_factor = crop_square(rgb, box, self.config.search_factor, self.search_size)
        search_thermal, _ = crop_square(thermal, box, self.config.search_factor, self.search_size)
        search = self._upload(np.stack([search_rgb, search_thermal]))
        with torch.inference_mode(), autocast_context(self.device, self._autocast, self.execution):
            output = self._run_model(search[0:1], search[1:2])
        if "search_features" not in output:
            raise RuntimeError("target_model needs a model whose output has 'search_features'")
        _, size_map, _ = self._check_output(output)
        groups = getattr(self.model, "SEARCH_FEATURE_GROUPS", None)
        self._matcher = InstanceMatcher(self.config.target_model_config, groups)
        target_wh = tuple((box[2:] * resize_factor / self.search_size).tolist())
        self._matcher.fit(output["search_features"], size_map, target_wh)

    def _prepare(self, rgb: np.ndarray, thermal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Check both frames and put the thermal one onto the RGB grid as 8-bit 3-channel."""
        rgb = to_rgb_uint8(rgb)
        thermal = thermal_to_rgb8(thermal, self.config.thermal_mode, self.config.thermal_range)
        return rgb, align_thermal(thermal, rgb.shape, self._homography)

    def _template(
        self, rgb: np.ndarray, thermal: np.ndarray, box: np.ndarray
    ) -> tuple[torch.Tensor, torch.Tensor]:
        factor, size = self.config.template_factor, self.template_size
        patch_rgb, _ = crop_square(rgb, box, factor, size)
        patch_thermal, _ = crop_square(thermal, box, factor, size)
        patches = self._upload(np.stack([patch_rgb, patch_thermal]))
        return patches[0:1], patches[1:2]

    def _run_model(self, search_rgb: torch.Tensor, search_thermal: torch.Tensor) -> dict[str, torch.Tensor]:
        """Templates are encoded once per template memory, not once per frame (model protocol)."""
        if self._encoded_templates is None:
            self._encoded_templates = self.model.encode_templates(*self._templates())
        return self._track_search(self._encoded_templates, search_rgb, search_thermal)

    def _templates(self) -> tuple[torch.Tensor, torch.Tensor]:
        """AINet: (1, 3, S, S) each; DMTrack: (1, k, 3, S, S) each, oldest template first."""
        if self.num_templates == 1:
            return self._memory[0]
        rgb = torch.stack([entry[0] for entry in self._memory], dim=1)
        thermal = torch.stack([entry[1] for entry in self._memory], dim=1)
        return rgb, thermal

    def _check_output(
        self, output: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
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
