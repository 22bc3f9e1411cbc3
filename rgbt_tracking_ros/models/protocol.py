"""The model protocol: what the tracker, training, export and the benchmark read from a model.

Every registered architecture (AINet, DMTrack, the compact model) implements `TrackingModel`
explicitly; docs/adding-a-model.md walks through adding one. Nothing outside a model reads
its internals: crop sizes, crop factors, the score-map grid and the template count all come
from `model.geometry`, a `Geometry` read from the model's YAML config.

This module imports no torch, so configs can be read (and command lines built) without it.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from torch import Tensor

# The OSTrack inference protocol both published trackers use: a square crop of side
# sqrt(w * h) * factor around the target, 2x for templates and 4x for the search region.
DEFAULT_TEMPLATE_FACTOR = 2.0
DEFAULT_SEARCH_FACTOR = 4.0
DEFAULT_STRIDE = 16

# What `forward` and `track_search` return: name -> channels of a (B, channels, F, F) map,
# F = geometry.feat_size. score_map and size_map are sigmoids in [1e-4, 1 - 1e-4]; size_map is
# the target's (w, h) as fractions of the search crop, offset_map the (x, y) offset of its
# centre inside the cell, in cells (head.decode_boxes). Models may add entries (the center
# head adds `pred_boxes`); these three are what is read.
OUTPUT_MAPS: dict[str, int] = {"score_map": 1, "size_map": 2, "offset_map": 2}


@dataclass(frozen=True)
class Geometry:
    """Crop geometry of a model: what the tracker crops, what training samples, what export feeds.

    Read from the model config's top-level keys `template_size`, `search_size`,
    `template_factor`, `search_factor`, `patch_size` (the backbone stride) and `num_templates`.
    """

    template_size: int  # template crops are template_size x template_size pixels
    search_size: int  # search crops are search_size x search_size pixels
    template_factor: float = DEFAULT_TEMPLATE_FACTOR  # template crop side / sqrt(w * h)
    search_factor: float = DEFAULT_SEARCH_FACTOR  # search crop side / sqrt(w * h)
    stride: int = DEFAULT_STRIDE  # pixels per token (ViT patch size, CNN stride)
    num_templates: int = 1  # templates per forward: 1 (AINet), T (DMTrack's memory)

    def __post_init__(self) -> None:
        for name in ("template_size", "search_size", "stride", "num_templates"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"geometry: {name} must be a positive integer, got {value!r}")
        for name in ("template_size", "search_size"):
            if getattr(self, name) % self.stride:
                raise ValueError(
                    f"geometry: {name} {getattr(self, name)} is not a multiple of the stride {self.stride}"
                )
        for name in ("template_factor", "search_factor"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"geometry: {name} must be a positive number, got {value!r}")

    @property
    def feat_size(self) -> int:
        """Side F of the (F, F) score, size and offset maps."""
        return self.search_size // self.stride

    @property
    def template_tokens(self) -> int:
        return (self.template_size // self.stride) ** 2

    @property
    def search_tokens(self) -> int:
        return self.feat_size**2

    def template_shape(self, batch: int = 1) -> tuple[int, ...]:
        """Shape of one modality's template input: (B, 3, S, S), or (B, T, 3, S, S) for T > 1."""
        side = (3, self.template_size, self.template_size)
        return (batch, *side) if self.num_templates == 1 else (batch, self.num_templates, *side)

    def search_shape(self, batch: int = 1) -> tuple[int, ...]:
        return (batch, 3, self.search_size, self.search_size)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Geometry:
        """The geometry a model config describes (no model is built)."""
        keys = {"template_size", "search_size", "template_factor", "search_factor", "num_templates"}
        values = {key: config[key] for key in keys if key in config}
        if "patch_size" in config:
            values["stride"] = config["patch_size"]
        missing = {"template_size", "search_size"} - set(values)
        if missing:
            raise ValueError(f"model config '{config.get('name', '?')}' lacks {sorted(missing)}")
        return cls(**values)

    def describe(self) -> str:
        templates = "" if self.num_templates == 1 else f" x{self.num_templates}"
        return (
            f"template {self.template_size}x{self.template_size}{templates} (factor {self.template_factor:g}), "
            f"search {self.search_size}x{self.search_size} (factor {self.search_factor:g}), "
            f"{self.feat_size}x{self.feat_size} maps"
        )


@runtime_checkable
class TrackingModel(Protocol):
    """What every model offers (an `nn.Module` that also has these).

    Inputs are ImageNet-normalised float crops (`tracker.preprocess.to_tensor`): templates
    `geometry.template_shape(B)` per modality (oldest first when T > 1), search regions
    `geometry.search_shape(B)`. RGB is the first modality, the other one (thermal, depth,
    event) the second, as a 3-channel image.
    """

    geometry: Geometry
    config: dict[str, Any]  # the YAML config it was built from (set by registry.build_from_config)

    def forward(
        self, template_rgb: Tensor, template_x: Tensor, search_rgb: Tensor, search_x: Tensor
    ) -> dict[str, Tensor]:
        """The whole network: a dict with at least OUTPUT_MAPS, each (B, channels, F, F).

        Training and ONNX export call this. It equals
        `track_search(encode_templates(template_rgb, template_x), search_rgb, search_x)`.
        """
        ...

    def encode_templates(self, template_rgb: Tensor, template_x: Tensor) -> Tensor:
        """Everything the network computes from the templates alone, as one tensor.

        The tracker calls it once per template memory (once per target for single-template
        models) and passes the result to every `track_search` until the templates change.
        What the tensor holds is the model's business (embedded tokens, features).
        """
        ...

    def track_search(self, templates: Tensor, search_rgb: Tensor, search_x: Tensor) -> dict[str, Tensor]:
        """The per-frame call: encoded templates + search crops -> the head's maps."""
        ...


def model_geometry(model: Any) -> Geometry:
    """`model.geometry`, after checking that the model implements `TrackingModel`.

    Raises ValueError naming what is missing.
    """
    missing = [
        name for name in ("geometry", "forward", "encode_templates", "track_search") if not hasattr(model, name)
    ]
    if missing:
        raise ValueError(
            f"{type(model).__name__} does not implement the model protocol "
            f"(rgbt_tracking_ros.models.protocol.TrackingModel): it lacks {missing}; "
            "see docs/adding-a-model.md"
        )
    geometry = model.geometry
    if not isinstance(geometry, Geometry):
        raise ValueError(f"{type(model).__name__}.geometry is a {type(geometry).__name__}, not a Geometry")
    return geometry


def model_config(model: Any) -> dict[str, Any]:
    """`model.config`, the config `registry.build_from_config` gave the model, as a dict: on an
    `nn.Module` the attribute itself types as a tensor or module.

    Raises ValueError when the model has none (it was not built from a config).
    """
    config = getattr(model, "config", None)
    if not isinstance(config, dict):
        raise ValueError(
            f"{type(model).__name__} has no model config (config is a {type(config).__name__}): "
            "build it with rgbt_tracking_ros.models.build_model"
        )
    return config
