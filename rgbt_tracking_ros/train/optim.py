"""AdamW over the trainable parameters with per-prefix learning rates (e.g. the AINet backbone
at a tenth of the rest). The schedule is a pure function of the step (see Recipe.lr_factor),
so a resumed run needs no scheduler state beyond the step count."""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .recipe import Recipe

DEFAULT_GROUP = ""


def group_of(name: str, prefixes: list[str]) -> str:
    """The longest prefix of `name` among `prefixes`, else the default group."""
    matches = [prefix for prefix in prefixes if name.startswith(prefix)]
    return max(matches, key=len) if matches else DEFAULT_GROUP


def parameter_groups(model: nn.Module, recipe: Recipe) -> list[dict[str, Any]]:
    """Groups of trainable parameters in a fixed order (default group first, then the
    prefixes in recipe order), each with its `prefix` and `base_lr`; empty groups are left out."""
    prefixes = list(recipe.lr_groups)
    members: dict[str, list[nn.Parameter]] = {prefix: [] for prefix in [DEFAULT_GROUP, *prefixes]}
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            members[group_of(name, prefixes)].append(parameter)
    if not any(members.values()):
        raise ValueError(f"{type(model).__name__} has no trainable parameters")
    rates = {DEFAULT_GROUP: recipe.lr, **recipe.lr_groups}
    return [
        {"params": params, "prefix": prefix, "base_lr": rates[prefix], "lr": rates[prefix]}
        for prefix, params in members.items()
        if params
    ]


def make_optimizer(model: nn.Module, recipe: Recipe) -> torch.optim.AdamW:
    return torch.optim.AdamW(parameter_groups(model, recipe), lr=recipe.lr, weight_decay=recipe.weight_decay)


def set_learning_rates(optimizer: torch.optim.Optimizer, factor: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = group["base_lr"] * factor
