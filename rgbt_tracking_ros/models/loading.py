"""Model plus weights in one call, for the tracker, the node and the command line."""
from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from .checkpoints import (
    Checkpoint,
    CheckpointError,
    CheckpointMismatchError,
    load_state_dict_checked,
    read_checkpoint,
)
from .protocol import DEFAULT_STRIDE, model_config, model_geometry
from .registry import (
    ARCHITECTURES,
    available_models,
    build_from_config,
    build_model,
    config_geometry,
    load_model_config,
)

logger = logging.getLogger(__name__)

SHIPPED_WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"


def shipped_weights(config: dict[str, Any]) -> Path | None:
    """The weights file that ships with the package for this config (its `weights` entry)."""
    name = config.get("weights")
    if not name:
        return None
    path: Path = SHIPPED_WEIGHTS_DIR / name
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


# Where the position embeddings are, (template, search): the one-stream trackers' backbone
# keys, then the compact model's.
POSITION_KEYS = (("backbone.pos_embed_z", "backbone.pos_embed_x"), ("pos_embed_z", "pos_embed_x"))


def checkpoint_tokens(state_dict: Mapping[str, Tensor]) -> tuple[int, int, int] | None:
    """(template tokens, search tokens, width) read from a state dict's position embeddings,
    or None when it has none (of shape (1, tokens, width))."""
    for template_key, search_key in POSITION_KEYS:
        template, search = state_dict.get(template_key), state_dict.get(search_key)
        if template is None or search is None or template.dim() != 3 or search.dim() != 3:
            continue
        return int(template.shape[1]), int(search.shape[1]), int(search.shape[2])
    return None


def _config_tokens(config: dict[str, Any]) -> tuple[int, int, int | None]:
    geometry = config_geometry(config)
    return geometry.template_tokens, geometry.search_tokens, config.get("embed_dim")


def configs_for_tokens(architecture: str, tokens: tuple[int, int, int]) -> list[str]:
    """Registered models of an architecture whose position embeddings have these sizes."""
    names = []
    for name in available_models():
        config = load_model_config(name)
        if config["architecture"] != architecture:
            continue
        template, search, width = _config_tokens(config)
        if (template, search) == tokens[:2] and width in (None, tokens[2]):
            names.append(name)
    return names


def _describe_tokens(tokens: tuple[int, int, int], stride: int) -> str:
    template, search = (math.isqrt(count) * stride for count in tokens[:2])
    return (
        f"{tokens[0]} template and {tokens[1]} search tokens of width {tokens[2]} "
        f"({template}x{template} templates, {search}x{search} search regions at stride {stride})"
    )


def check_checkpoint_size(model: nn.Module, state_dict: Mapping[str, Tensor]) -> None:
    """Refuse, naming the registered model that fits, weights made for other input sizes."""
    wanted, given = checkpoint_tokens(model.state_dict()), checkpoint_tokens(state_dict)
    if wanted is None or given is None or wanted == given:
        return
    config = getattr(model, "config", {})
    name = config.get("name", type(model).__name__)
    stride = model_geometry(model).stride
    fits = configs_for_tokens(config["architecture"], given) if "architecture" in config else []
    hint = (
        f"load it as {' or '.join(repr(n) for n in fits)}"
        if fits
        else "no registered model has these sizes: add a config with them (docs/adding-a-model.md)"
    )
    if fits and "architecture" in config:
        hint += f", or as {config['architecture']!r} to pick the size from the checkpoint"
    raise CheckpointMismatchError(
        f"checkpoint is for a model with {_describe_tokens(given, stride)}, but {name} has "
        f"{_describe_tokens(wanted, stride)}: {hint}"
    )


def _model_for_architecture(architecture: str, contents: Checkpoint, checkpoint: str | os.PathLike[str]) -> nn.Module:
    """`load_model("ainet", checkpoint)`: the registered size whose position embeddings fit."""
    if contents.model_config is not None and contents.model_config.get("architecture") == architecture:
        return build_from_config(contents.model_config)
    tokens = checkpoint_tokens(contents.state_dict)
    if tokens is None:
        raise CheckpointError(f"{checkpoint}: no position embeddings to read the {architecture} size from")
    fits = configs_for_tokens(architecture, tokens)
    if len(fits) != 1:
        found = f"several fit ({', '.join(fits)})" if fits else "none fits"
        raise CheckpointError(
            f"{checkpoint}: {found} of the registered {architecture} models for "
            f"{_describe_tokens(tokens, DEFAULT_STRIDE)}: pass the model name"
        )
    logger.info("%s: position embeddings of %s", checkpoint, fits[0])
    return build_model(fits[0])


def _is_architecture(name: str | os.PathLike[str] | None) -> bool:
    """An architecture name that is not also a registered model's name."""
    return isinstance(name, str) and name in ARCHITECTURES and name not in available_models()


def load_model(
    name_or_config: str | os.PathLike[str] | None = None, checkpoint: str | os.PathLike[str] | None = None
) -> nn.Module:
    """Build a model and load its weights strictly.

    Our own checkpoints carry their config, so `name_or_config` may be omitted for them (if
    given, it wins). Official and bare checkpoints need the model name, e.g. `ainet_384`, or
    the architecture name (`ainet`, `dmtrack`), which picks the registered model whose
    position embeddings (input sizes) fit the checkpoint. A named model whose sizes do not
    fit is refused with the name of the one that does; it is never resized silently.
    Without a checkpoint a model that ships weights (the default `compact_rgbt`) gets them;
    the others keep their initial weights.
    """
    if checkpoint is None:
        if name_or_config is None:
            raise ValueError("give a model name or config, a checkpoint, or both")
        model = build_model(name_or_config)
        checkpoint = shipped_weights(model_config(model))
        if checkpoint is None:
            return model
        contents = read_checkpoint(checkpoint)
    else:
        contents = read_checkpoint(checkpoint)
        if _is_architecture(name_or_config):
            model = _model_for_architecture(str(name_or_config), contents, checkpoint)
        elif name_or_config is not None:
            model = build_model(name_or_config)
        elif contents.model_config is not None:
            model = build_from_config(contents.model_config)
        else:
            raise CheckpointError(
                f"{checkpoint}: a {contents.kind} checkpoint does not say which model it is for; "
                "pass the model name (for example ainet_256 or dmtrack_rgbt)"
            )
    check_checkpoint_size(model, contents.state_dict)
    load_state_dict_checked(model, contents.state_dict, strict=True, allow_missing=_packaged(model))
    logger.info("loaded %s weights from %s (%s checkpoint)", model_config(model)["name"], checkpoint, contents.kind)
    return model
