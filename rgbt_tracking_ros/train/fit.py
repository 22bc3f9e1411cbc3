"""A minimal training loop over synthetic RGB-T pairs (AdamW, gradient clipping, progress bar)."""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from .losses import tracking_loss
from .pairs import make_batch
from .synthetic import SyntheticSequence


def fit_synthetic(
    model: nn.Module,
    sequences: list[SyntheticSequence],
    steps: int,
    batch_size: int = 8,
    lr: float = 1e-3,
    grad_clip: float = 1.0,
    seed: int = 0,
    progress: bool = False,
) -> list[float]:
    """Trains the model's trainable parameters in place; returns the loss of every step."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=lr, weight_decay=1e-4)
    warmup = max(1, steps // 20)
    # Short warm-up, then cosine decay: small runs converge far more reliably than at a flat rate.
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min(1.0, (step + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * step / steps))
    )
    model.train()
    losses = []
    bar = tqdm(range(steps), desc="training", disable=not progress)
    for _ in bar:
        *inputs, boxes = make_batch(sequences, rng, batch_size, model.num_templates)
        loss, parts = tracking_loss(model(*inputs), boxes)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(parameters, grad_clip)
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
        bar.set_postfix(loss=f"{loss.item():.3f}", iou=f"{parts['iou']:.2f}")
    model.eval()
    return losses
