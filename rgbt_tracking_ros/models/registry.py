"""One registry for every model: a YAML config per name in `config/models/`."""
from __future__ import annotations

import copy
import os
from pathlib import Path

import yaml
from torch import nn

from ..launch_support import share_dirs
from .ainet import AINet
from .compact import CompactRGBT
from .dmtrack import DMTrack

ARCHITECTURES: dict[str, type[nn.Module]] = {"ainet": AINet, "compact": CompactRGBT, "dmtrack": DMTrack}
CONFIG_PATH_ENV = "RGBT_MODEL_CONFIG_PATH"


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


def load_model_config(name_or_path: str | os.PathLike) -> dict:
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


def build_from_config(config: dict) -> nn.Module:
    options = copy.deepcopy(config)
    architecture = options.pop("architecture")
    name = options.pop("name", architecture)
    options.pop("training", None)  # the training recipe is read by the trainer, not the model
    options.pop("weights", None)  # shipped weights are loaded by loading.load_model
    options.pop("tracker", None)  # the tracker's per-model defaults (thresholds), read by RGBTTracker
    try:
        model = ARCHITECTURES[architecture](**options)
    except TypeError as error:
        raise ValueError(f"model config '{name}': {error}") from error
    model.config = copy.deepcopy(config)
    return model


def build_model(name_or_path: str | os.PathLike, **overrides) -> nn.Module:
    """Build a registered model (`ainet_256`, `dmtrack_rgbt`, ...) or one from a YAML file.

    Keyword overrides replace top-level config entries (for example `stma_width=16`).
    """
    config = load_model_config(name_or_path)
    config.update(overrides)
    return build_from_config(config)
