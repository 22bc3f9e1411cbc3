"""Model plus weights in one call, for the tracker, the node and the command line."""
from __future__ import annotations

import logging
import os

from torch import nn

from .checkpoints import CheckpointError, load_state_dict_checked, read_checkpoint
from .registry import build_from_config, build_model

logger = logging.getLogger(__name__)


def load_model(
    name_or_config: str | os.PathLike | None = None, checkpoint: str | os.PathLike | None = None
) -> nn.Module:
    """Build a model and load its weights strictly.

    Our own checkpoints carry their config, so `name_or_config` may be omitted for them (if
    given, it wins). Official and bare checkpoints need the model name, e.g. `ainet_256`.
    Without a checkpoint the model keeps its initial weights.
    """
    if checkpoint is None:
        if name_or_config is None:
            raise ValueError("give a model name or config, a checkpoint, or both")
        return build_model(name_or_config)
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
    load_state_dict_checked(model, contents.state_dict, strict=True)
    logger.info("loaded %s weights from %s (%s checkpoint)", model.config["name"], checkpoint, contents.kind)
    return model
