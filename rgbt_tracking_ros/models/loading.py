"""Model plus weights in one call, for the tracker, the node and the command line."""
from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

from torch import nn

from .checkpoints import CheckpointError, load_state_dict_checked, read_checkpoint
from .registry import build_from_config, build_model

logger = logging.getLogger(__name__)

SHIPPED_WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"


def shipped_weights(config: dict) -> Path | None:
    """The weights file that ships with the package for this config (its `weights` entry)."""
    name = config.get("weights")
    if not name:
        return None
    path = SHIPPED_WEIGHTS_DIR / name
    if not path.is_file():
        raise CheckpointError(
            f"model '{config.get('name')}' names shipped weights {path}, which are missing: "
            "reinstall the package or pass a checkpoint"
        )
    return path


def _packaged(model: nn.Module) -> Callable[[str], bool]:
    """Keys whose weights the model took from an installed package: a checkpoint may omit them."""
    prefixes = tuple(getattr(model, "packaged_prefixes", ()))
    return lambda key: key.startswith(prefixes)


def load_model(
    name_or_config: str | os.PathLike | None = None, checkpoint: str | os.PathLike | None = None
) -> nn.Module:
    """Build a model and load its weights strictly.

    Our own checkpoints carry their config, so `name_or_config` may be omitted for them (if
    given, it wins). Official and bare checkpoints need the model name, e.g. `ainet_256`.
    Without a checkpoint a model that ships weights (the default `compact_rgbt`) gets them;
    the others keep their initial weights.
    """
    if checkpoint is None:
        if name_or_config is None:
            raise ValueError("give a model name or config, a checkpoint, or both")
        model = build_model(name_or_config)
        checkpoint = shipped_weights(model.config)
        if checkpoint is None:
            return model
        contents = read_checkpoint(checkpoint)
    else:
        contents = read_checkpoint(checkpoint)
        if name_or_config is not None:
            model = build_model(name_or_config)
        elif contents.model_config is not None:
            model = build_from_config(contents.model_config)
        else:
            raise CheckpointError(
                f"{checkpoint}: a {contents.kind} checkpoint does not say which model it is for; "
                "pass the model name (for example ainet_256 or dmtrack_rgbt)"
            )
    load_state_dict_checked(model, contents.state_dict, strict=True, allow_missing=_packaged(model))
    logger.info("loaded %s weights from %s (%s checkpoint)", model.config["name"], checkpoint, contents.kind)
    return model
