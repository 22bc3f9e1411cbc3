"""The RGB-thermal tracker runtime: numpy frames in, (x, y, w, h) boxes out.

It runs the official OSTrack-style inference of AINet (one fixed template) and DMTrack
(a sliding memory of the latest templates) around any model with the shared interface.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from rgbt_tracking_ros.models.head import decode_boxes
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
from rgbt_tracking_ros.tracker.onnx_backend import select_backend
from rgbt_tracking_ros.tracker.result import TrackResult, TrackState
from rgbt_tracking_ros.tracker.preprocess import (
    check_homography,
    thermal_to_rgb8,
    to_rgb_uint8,
)
from rgbt_tracking_ros.tracker.thermal_crop import ThermalFrame, crop_thermal

CLIP_MARGIN = 10
_MODEL_ATTRIBUTES = ("num_templates", "template_size", "search_size", "feat_size")


@dataclass
class TrackerConfig:
    """Inference settings; the factors are the ones both networks were trained with."""

    template_factor: float = 2.0
    search_factor: float = 4.0
    lost_threshold: float = 0.25  # windowed peak score below which the target counts as LOST
    device: str = "cpu"
    half: bool = False  # the older switch for precision="fp16"
    precision: str | None = None  # "fp32", "fp16" or "bf16" autocast; None: from `half`
    cuda_graph: bool = False  # replay CUDA graphs of the model call; ignored (eager) on CPU
    compile: bool = False  # torch.compile the model call (minutes of compiling); ignored on CPU
    thermal_mode: str = "minmax"
    thermal_range: tuple[float, float] | None = None
    homography: np.ndarray | None = None  # thermal pixel -> RGB pixel; None = resize
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
    if not (config.template_factor > 0 and config.search_factor > 0):
        raise ValueError("template_factor and search_factor must be positive")
    if not np.isfinite(config.lost_threshold):
        raise ValueError(f"lost_threshold must be finite, got {config.lost_threshold}")
    # Convert a tiny frame once so that a bad thermal_mode / thermal_range fails here, not on
    # the first frame.
    thermal_to_rgb8(np.zeros((1, 1), np.uint16), config.thermal_mode, config.thermal_range)


class RGBTTracker:
    """Single-object RGB-thermal tracker; `initialize` once, then `track` every frame."""

    def __init__(self, model: nn.Module, config: TrackerConfig | None = None):
        self.config = config if config is not None else TrackerConfig()
        _check_config(self.config)
        missing = [name for name in _MODEL_ATTRIBUTES if not hasattr(model, name)]
        if missing:
            raise ValueError(f"model lacks the attribute(s) {missing}")
        self.num_templates = int(model.num_templates)
        if self.num_templates < 1:
            raise ValueError(f"model.num_templates must be >= 1, got {model.num_templates}")
        self.template_size = int(model.template_size)
        self.search_size = int(model.search_size)
        self.feat_size = int(model.feat_size)
        self._homography = (
            None if self.config.homography is None else check_homography(self.config.homography)
        )
        self.device = _resolve_device(self.config.device)
        self._autocast = autocast_dtype(self.config.precision, self.config.half, self.device)
        self.model = model.to(self.device).eval()
        self.execution = execution_mode(self.config.compile, self.config.cuda_graph, self.device)
        self._forward = accelerate(self.model, self.execution)
        self._track_search = (
            accelerate(self.model.track_search, self.execution) if hasattr(self.model, "track_search") else None
        )
        self._encode_templates = getattr(self.model, "encode_templates", None)
        self.onnx = select_backend(self.model, self.config.backend, self.device, self._autocast, self.execution)
        if self.onnx is not None:
            self._encode_templates, self._track_search = self.onnx.encode_templates, self.onnx.track_search
        self.backend = "torch" if self.onnx is None else self.onnx.name
        self._upload = Uploader(self.device)
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
        self._encoded_templates: torch.Tensor | np.ndarray | None = None
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

    def track(self, rgb: np.ndarray, thermal: np.ndarray) -> TrackResult:
        """Locate the target in the next frame pair."""
        if self._box is None:
            raise RuntimeError("track() called before initialize()")
        rgb, thermal = self._prepare(rgb, thermal)
        height, width = rgb.shape[:2]
        factor, search_size = self.config.search_factor, self.search_size
        search_rgb, resize_factor = crop_square(rgb, self._box, factor, search_size)
        search_thermal = crop_thermal(thermal, self._box, factor, search_size)
        search = self._upload(np.stack([search_rgb, search_thermal]))
        with torch.inference_mode(), autocast_context(self.device, self._autocast, self.execution):
            output = self._run_model(search[0:1], search[1:2])
        score_map, size_map, offset_map = self._check_output(output)
        boxes, score = decode_boxes(self._window * score_map, size_map, offset_map)
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

    def _prepare(self, rgb: np.ndarray, thermal: np.ndarray) -> tuple[np.ndarray, ThermalFrame]:
        """Check both frames. The thermal one stays in its own pixels: only its crops are
        converted to 8 bit and put onto the RGB grid (`crop_thermal`), not the whole frame."""
        rgb = to_rgb_uint8(rgb)
        return rgb, ThermalFrame.of(thermal, rgb.shape, self.config.thermal_mode,
                                    self.config.thermal_range, self._homography)

    def _template(
        self, rgb: np.ndarray, thermal: ThermalFrame, box: np.ndarray
    ) -> tuple[torch.Tensor, torch.Tensor]:
        factor, size = self.config.template_factor, self.template_size
        patch_rgb, _ = crop_square(rgb, box, factor, size)
        patch_thermal = crop_thermal(thermal, box, factor, size)
        patches = self._upload(np.stack([patch_rgb, patch_thermal]))
        return patches[0:1], patches[1:2]

    def _run_model(self, search_rgb: torch.Tensor, search_thermal: torch.Tensor) -> dict[str, torch.Tensor]:
        """Models that can encode templates apart (the compact model) do it once per template
        memory, not once per frame."""
        if self._track_search is None:
            return self._forward(*self._templates(), search_rgb, search_thermal)
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
