"""Checkpoint files of a training run, in the project's format (see models/checkpoints.py).

An epoch checkpoint is a project checkpoint (format, config, net, metadata: `load_model` and
`read_checkpoint` take it as it is) plus a `training` entry with the optimizer and loss-scaler
state. Everything in it is a tensor or a plain value, so it loads with
`torch.load(weights_only=True)`, which refuses any pickled code, and resuming reads it so.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..models.checkpoints import (
    FORMAT,
    CheckpointError,
    CheckpointMismatchError,
    init_from_backbone_file,
    load_state_dict_checked,
    read_checkpoint,
    save_checkpoint,
)
from ..models.protocol import model_config

logger = logging.getLogger(__name__)

TRAINING_KEY = "training"


@dataclass
class TrainingState:
    """What resuming needs from an epoch checkpoint."""

    config: dict[str, Any]
    net: dict[str, Tensor]
    metadata: dict[str, Any]
    optimizer: dict[str, Any]
    scaler: dict[str, Any]


def _cpu(state: dict[str, Tensor]) -> dict[str, Tensor]:
    return {key: value.detach().cpu() for key, value in state.items()}


def _optimizer_state(optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """The optimizer's state dict with its tensors on the CPU (the file loads on any machine)."""
    state = optimizer.state_dict()
    return {
        "state": {index: _cpu(values) for index, values in state["state"].items()},
        "param_groups": state["param_groups"],
    }


def save_training_checkpoint(
    path: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler | None,
    metadata: dict[str, Any],
) -> None:
    training = {"optimizer": _optimizer_state(optimizer), "scaler": scaler.state_dict() if scaler is not None else {}}
    save_checkpoint(path, model, model_config(model), metadata, extra={TRAINING_KEY: training})


def read_training_checkpoint(path: str | os.PathLike[str]) -> TrainingState:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint to resume from not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unpickling failure means the same to the user
        raise CheckpointError(f"{path}: not a training checkpoint of this project ({error})") from error
    if not isinstance(payload, dict) or payload.get("format") != FORMAT or TRAINING_KEY not in payload:
        raise CheckpointError(f"{path}: not a training checkpoint (no {TRAINING_KEY!r} entry): resume from epoch_*.pt")
    training = payload[TRAINING_KEY]
    return TrainingState(payload["config"], payload["net"], payload["metadata"], training["optimizer"], training["scaler"])


def trainable_state(model: nn.Module) -> dict[str, Tensor]:
    """The parameters that train plus the buffers of the modules holding them (e.g. running
    statistics of a trained BatchNorm): all a frozen-backbone model changes in training."""
    saved = model.state_dict()
    state: dict[str, Tensor] = {}
    for module_name, module in model.named_modules():
        own = dict(module.named_parameters(recurse=False))
        if not any(parameter.requires_grad for parameter in own.values()):
            continue
        prefix = f"{module_name}." if module_name else ""
        tensors = {name: p for name, p in own.items() if p.requires_grad} | dict(module.named_buffers(recurse=False))
        state.update({prefix + name: tensor for name, tensor in tensors.items() if prefix + name in saved})
    return state


def save_trainable_only(path: Path, model: nn.Module, metadata: dict[str, Any]) -> None:
    """A small project checkpoint with only `trainable_state`; it completes a model whose other
    weights come from elsewhere (e.g. `--init` with the pretrained file)."""
    save_checkpoint(path, model, model_config(model), {**metadata, "trainable_only": True}, state_dict=trainable_state(model))


def initialise(model: nn.Module, path: str | os.PathLike[str]) -> None:
    """Weights before training: a full checkpoint of this model (ours, official or bare) loads
    strictly, except for the weights the model takes from an installed package (so the shipped
    `compact_rgbt.pt`, which holds only the trained tensors, fine-tunes with `--init`); anything
    else is taken as a backbone initialisation file (OSTrack, DropTrack)."""
    prefixes = tuple(getattr(model, "packaged_prefixes", ()))
    try:
        load_state_dict_checked(model, read_checkpoint(path), strict=True,
                                allow_missing=(lambda key: key.startswith(prefixes)) if prefixes else None)
        logger.info("initialised every weight from %s", path)
    except CheckpointMismatchError:
        init_from_backbone_file(model, path)
