"""One optimisation step of the trainer, with the
mixed-precision modes: bf16 autocast needs no loss scaling, fp16 needs a GradScaler."""
from __future__ import annotations

import contextlib
from collections.abc import Sequence

import torch
from torch import nn

from .losses import tracking_loss

AMP_MODES = ("off", "bf16", "fp16")


def default_amp(device: torch.device) -> str:
    """bf16 on CUDA (no scaler, no overflow), full precision elsewhere."""
    return "bf16" if device.type == "cuda" else "off"


class Precision:
    """Autocast and loss scaling for one device and mode."""

    def __init__(self, mode: str = "off", device: torch.device | str = "cpu") -> None:
        if mode not in AMP_MODES:
            raise ValueError(f"amp mode must be one of {AMP_MODES}, got {mode!r}")
        self.mode = mode
        self.device_type = torch.device(device).type
        self.scaler = torch.amp.GradScaler(self.device_type) if mode == "fp16" else None

    def autocast(self) -> contextlib.AbstractContextManager[object]:
        if self.mode == "off":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.mode == "bf16" else torch.float16
        return torch.autocast(self.device_type, dtype=dtype)


def train_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    batch: Sequence[torch.Tensor],
    parameters: list[nn.Parameter],
    grad_clip: float,
    precision: Precision,
) -> dict[str, float]:
    """Forward, loss (in fp32 whatever the autocast), backward, clipping, update; returns the
    loss and its parts."""
    *inputs, boxes = batch
    with precision.autocast():
        outputs = model(*inputs)
    loss, parts = tracking_loss({key: value.float() for key, value in outputs.items()}, boxes)
    optimizer.zero_grad(set_to_none=True)
    scaler = precision.scaler
    if scaler is None:
        loss.backward()  # type: ignore[no-untyped-call]  # torch leaves Tensor.backward unannotated
        nn.utils.clip_grad_norm_(parameters, grad_clip)
        optimizer.step()
    else:
        scaler.scale(loss).backward()  # type: ignore[no-untyped-call]  # torch leaves Tensor.backward unannotated
        scaler.unscale_(optimizer)
        nn.utils.clip_grad_norm_(parameters, grad_clip)
        scaler.step(optimizer)
        scaler.update()
    return {"loss": loss.item(), **parts}
