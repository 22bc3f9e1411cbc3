"""A minimal in-process training loop over rendered synthetic sequences, for the demo and the
tests' tiny tracker; `trainer.py` is the full pipeline (data sets, recipes, checkpoints, DDP)."""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from .pairs import make_batch
from .sources import InMemorySource
from .step import Precision, train_step
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
    sources = [InMemorySource(sequence) for sequence in sequences]
    model.train()
    losses = []
    bar = tqdm(range(steps), desc="training", disable=not progress)
    for _ in bar:
        batch = make_batch(sources, rng, batch_size, model.num_templates)
        parts = train_step(model, optimizer, batch, parameters, grad_clip, Precision())
        schedule.step()
        losses.append(parts["loss"])
        bar.set_postfix(loss=f"{parts['loss']:.3f}", iou=f"{parts['iou']:.2f}")
    model.eval()
    return losses
