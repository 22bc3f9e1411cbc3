"""One registry for every model: a YAML config per name in `config/models/`.

Reading configs needs no torch: the architecture classes are imported when a model is built,
so listing models (`rgbt-track info`) stays fast.
"""
from __future__ import annotations

import copy
import importlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from ..package_files import share_dirs
from .protocol import Geometry, model_geometry

if TYPE_CHECKING:
    from torch import nn

# Architecture name (a config's `architecture`) -> "module:class" under rgbt_tracking_ros.models.
ARCHITECTURES: dict[str, str] = {
    "ainet": "ainet:AINet",
    "compact": "compact:CompactRGBT",
    "dmtrack": "dmtrack:DMTrack",
}
CONFIG_PATH_ENV = "RGBT_MODEL_CONFIG_PATH"


def architecture_class(architecture: str) -> type[nn.Module]:
    """The model class of an architecture name (imports torch)."""
    module_name, class_name = ARCHITECTURES[architecture].split(":")
    model_class: type[nn.Module] = getattr(importlib.import_module(f"{__package__}.{module_name}"), class_name)
    return model_class


def config_dirs() -> list[Path]:
    """Where model configs are looked up: an override, then `config/models` in the package's
    share dirs (the source checkout first, then colcon and pip installs)."""
    dirs = [Path(p) for p in os.environ.get(CONFIG_PATH_ENV, "").split(os.pathsep) if p]
    dirs.extend(share / "config" / "models" for share in share_dirs())
    return [d for d in dirs if d.is_dir()]


def available_models() -> list[str]:
    names = {path.stem for d in config_dirs() for path in d.glob("*.yaml")}
    return sorted(names)


def _config_path(name: str) -> Path:
    for d in config_dirs():
        path = d / f"{name}.yaml"
        if path.is_file():
            return path
    known = ", ".join(available_models()) or "none found"
    raise KeyError(f"unknown model '{name}' (known: {known}); or pass a path to a YAML config")


def load_model_config(name_or_path: str | os.PathLike[str]) -> dict[str, Any]:
    """The config of a registered name, or of a YAML file, with its `name` filled in."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise FileNotFoundError(f"model config not found: {path}")
    else:
        path = _config_path(str(name_or_path))
    with open(path, encoding="utf-8") as handle:
        config = yaml.safe_load(handle)
    if not isinstance(config, dict) or config.get("architecture") not in ARCHITECTURES:
        raise ValueError(
            f"{path}: a model config needs 'architecture' set to one of {sorted(ARCHITECTURES)}"
        )
    config.setdefault("name", path.stem)
    return config


def config_geometry(config: dict[str, Any]) -> Geometry:
    """The crop geometry a config describes, without building the model (no torch)."""
    try:
        return Geometry.from_config(config)
    except (TypeError, ValueError) as error:
        raise ValueError(f"model config '{config.get('name', '?')}': {error}") from error


def build_from_config(config: dict[str, Any]) -> nn.Module:
    options = copy.deepcopy(config)
    architecture = options.pop("architecture")
    name = options.pop("name", architecture)
    options.pop("training", None)  # the training recipe is read by the trainer, not the model
    options.pop("weights", None)  # shipped weights are loaded by loading.load_model
    options.pop("tracker", None)  # tracker settings for this model, read by the tracker
    try:
        model = architecture_class(architecture)(**options)
    except TypeError as error:
        raise ValueError(f"model config '{name}': {error}") from error
    geometry = model_geometry(model)
    if geometry != config_geometry(config):
        raise ValueError(f"model config '{name}': the model's geometry {geometry} differs from the config's")
    # nn.Module.__setattr__ is typed for tensors and modules only; other values are plain attributes.
    model.config = copy.deepcopy(config)  # type: ignore[assignment]
    return model


def build_model(name_or_path: str | os.PathLike[str], **overrides: Any) -> nn.Module:
    """Build a registered model (`ainet_256`, `dmtrack_rgbt`, ...) or one from a YAML file.

    Keyword overrides replace top-level config entries (for example `stma_width=16`).
    """
    config = load_model_config(name_or_path)
    config.update(overrides)
    return build_from_config(config)
