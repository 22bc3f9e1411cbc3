"""The training pipeline: a model and its recipe, pair data, AdamW with per-group learning
rates, mixed precision, DDP under torchrun, a checkpoint per epoch and exact resumption.

Exactness: the data of an epoch depends only on (seed, epoch, sample), the torch random
stream (dropout, drop-path) is re-seeded from (seed, epoch, rank) at every epoch start, and
the learning rate is a function of the step; so a run resumed from an epoch checkpoint
continues exactly as the uninterrupted run would have.
"""
from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..models.checkpoints import load_state_dict_checked, save_checkpoint
from ..models.protocol import model_config, model_geometry
from ..models.registry import build_from_config, load_model_config
from . import distributed
from .dataset import PairDataset
from .optim import make_optimizer, set_learning_rates
from .pairs import stack_pairs, to_model_inputs
from .recipe import Recipe
from .sources import sources_from_spec
from .state import (
    TrainingState,
    initialise,
    read_training_checkpoint,
    save_trainable_only,
    save_training_checkpoint,
)
from .step import Precision, default_amp, train_step

logger = logging.getLogger(__name__)

LOG_NAME = "train_log.jsonl"
MODEL_NAME = "model.pt"
TRAINABLE_NAME = "model_trainable.pt"
CHECKPOINT_DIR = "checkpoints"


@dataclass
class TrainJob:
    """What `rgbt-track train` asks for; `overrides` replace recipe values (None: not given)."""

    out: Path
    data: list[str] = field(default_factory=list)
    model: str | None = None
    resume: str | None = None
    init: str | None = None
    device: str = "cpu"
    amp: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    save_trainable_only: bool = False
    keep_last: int = 0  # epoch checkpoints kept; 0 keeps all
    progress: bool = True


def epoch_seed(seed: int, epoch: int, rank: int) -> int:
    return int(np.random.SeedSequence([seed, epoch, rank]).generate_state(1)[0])


def weights_digest(model: nn.Module) -> str:
    """SHA-256 of every tensor of the state dict: equal digests mean bit-identical weights."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def checkpoint_path(out: Path, epoch: int) -> Path:
    """The checkpoint written after `epoch` epochs (1-based)."""
    return out / CHECKPOINT_DIR / f"epoch_{epoch:04d}.pt"


def _prune(out: Path, keep_last: int) -> None:
    if keep_last > 0:
        for old in sorted((out / CHECKPOINT_DIR).glob("epoch_*.pt"))[:-keep_last]:
            old.unlink()


def _model_config(job: TrainJob, state: TrainingState | None) -> dict[str, Any]:
    if state is None:
        if job.model is None:
            raise ValueError("give --model (or --resume a checkpoint)")
        return load_model_config(job.model)
    if job.model is not None and load_model_config(job.model)["name"] != state.config.get("name"):
        raise ValueError(f"--model {job.model} but {job.resume} is a {state.config.get('name')} checkpoint")
    return state.config


def _restore(optimizer: torch.optim.Optimizer, precision: Precision, state: TrainingState) -> None:
    """Optimizer moments and step counts from the checkpoint; learning rates from this run's recipe."""
    base_lrs = [group["base_lr"] for group in optimizer.param_groups]
    optimizer.load_state_dict(state.optimizer)
    for group, base_lr in zip(optimizer.param_groups, base_lrs):
        group["base_lr"] = base_lr
    if precision.scaler is not None and state.scaler:
        precision.scaler.load_state_dict(state.scaler)


class JsonLog:
    """One JSON object per step and line (easy to read with pandas). A resumed run keeps the
    rows up to its checkpoint's step and drops those of the interrupted epoch."""

    def __init__(self, path: Path, resumed_step: int | None) -> None:
        kept = []
        if resumed_step is not None and path.is_file():
            kept = [line for line in path.read_text().splitlines() if json.loads(line)["step"] <= resumed_step]
        path.parent.mkdir(parents=True, exist_ok=True)
        self.handle = open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self.handle.writelines(line + "\n" for line in kept)

    def write(self, row: dict[str, Any]) -> None:
        self.handle.write(json.dumps(row) + "\n")
        self.handle.flush()

    def close(self) -> None:
        self.handle.close()


@dataclass
class Session:
    """What a run trains with, built fresh or from an epoch checkpoint."""

    model: nn.Module
    network: nn.Module  # the model, or its DDP wrapper
    optimizer: torch.optim.Optimizer
    precision: Precision
    recipe: Recipe
    dataset: PairDataset
    steps_per_epoch: int
    first_epoch: int
    step: int
    metadata: dict[str, Any]  # plain values stored with every checkpoint

    @property
    def parameters(self) -> list[nn.Parameter]:
        return [p for p in self.model.parameters() if p.requires_grad]


def run(job: TrainJob) -> Path:
    """Trains and returns the path of the final model (written by the main process)."""
    context = distributed.setup(job.device)
    session = _prepare(job, context)
    resumed_step = session.step if job.resume else None
    log = JsonLog(Path(job.out) / LOG_NAME, resumed_step) if context.is_main else None
    for epoch in range(session.first_epoch, session.recipe.epochs):
        loss, iou = _train_epoch(session, epoch, context, log, job.progress)
        logger.info("epoch %d/%d: mean loss %.4f, mean IoU %.3f", epoch + 1, session.recipe.epochs, loss, iou)
        if context.is_main:
            metadata = {**session.metadata, "epoch": epoch + 1, "step": session.step}
            path = checkpoint_path(Path(job.out), epoch + 1)
            save_training_checkpoint(path, session.model, session.optimizer, session.precision.scaler, metadata)
            _prune(Path(job.out), job.keep_last)
    logger.info("rank %d/%d final weights sha256 %s", context.rank, context.world_size, weights_digest(session.model))
    final = Path(job.out) / MODEL_NAME
    if log is not None:  # the main process
        log.close()
        _save_final(job, session)
        logger.info("wrote %s", final)
    distributed.teardown(context)
    return final


def _prepare(job: TrainJob, context: distributed.Context) -> Session:
    state = read_training_checkpoint(job.resume) if job.resume else None
    config = _model_config(job, state)
    recipe = Recipe.from_dict(state.metadata["recipe"] if state else config.get("training"))
    recipe = recipe.with_overrides(**job.overrides)
    data = job.data or (state.metadata["data"] if state else [])
    if not data:
        raise ValueError("give at least one --data source, e.g. --data synthetic:0-199")

    torch.manual_seed(recipe.seed)
    model = build_from_config(config)
    if state is not None:
        load_state_dict_checked(model, state.net, strict=True)
    elif job.init:
        initialise(model, job.init)
    model.to(context.device)
    optimizer = make_optimizer(model, recipe)
    precision = Precision(job.amp or default_amp(context.device), context.device)
    if state is not None:
        _restore(optimizer, precision, state)
    network = model
    if context.distributed:
        # static_graph: parameters that never get a gradient (unused embeddings, AINet's chunk
        # order predictor behind argsort) are found once instead of searched for every step.
        device_ids = [context.device.index] if context.device.type == "cuda" else None
        network = DistributedDataParallel(model, device_ids=device_ids, static_graph=True)

    steps_per_epoch = recipe.steps_per_epoch(context.world_size)
    dataset = PairDataset(
        [source for spec in data for source in sources_from_spec(spec)],
        steps_per_epoch * recipe.batch_size,
        model_geometry(model),
        recipe.max_gap,
        recipe.jitter,
        recipe.augment,
        recipe.seed,
        context.rank,
        context.world_size,
    )
    init = job.init or (state.metadata.get("init") if state else None)
    session = Session(
        model,
        network,
        optimizer,
        precision,
        recipe,
        dataset,
        steps_per_epoch,
        first_epoch=state.metadata["epoch"] if state else 0,
        step=state.metadata["step"] if state else 0,
        metadata={"recipe": recipe.as_dict(), "data": list(data), "init": init, "world_size": context.world_size},
    )
    logger.info(
        "training %s: %d trainable parameters, %d epochs x %d steps x %d pairs x %d process(es) on %s, amp %s",
        config["name"], sum(p.numel() for p in session.parameters), recipe.epochs, steps_per_epoch,
        recipe.batch_size, context.world_size, context.device, precision.mode,
    )
    return session


def _train_epoch(
    session: Session, epoch: int, context: distributed.Context, log: JsonLog | None, progress: bool
) -> tuple[float, float]:
    """One epoch; returns its mean loss and IoU."""
    recipe, optimizer = session.recipe, session.optimizer
    session.dataset.set_epoch(epoch)
    torch.manual_seed(epoch_seed(recipe.seed, epoch, context.rank))
    loader = DataLoader(
        session.dataset, recipe.batch_size, num_workers=recipe.workers, collate_fn=stack_pairs, drop_last=True
    )
    session.network.train()
    parameters = session.parameters
    bar = tqdm(
        total=session.steps_per_epoch,
        desc=f"epoch {epoch + 1}/{recipe.epochs}",
        disable=not (context.is_main and progress),
    )
    totals = np.zeros(2)
    tick = time.perf_counter()
    for batch in loader:
        set_learning_rates(optimizer, recipe.lr_factor(session.step, epoch))
        inputs = to_model_inputs(batch, model_geometry(session.model).num_templates, context.device)
        parts = train_step(session.network, optimizer, inputs, parameters, recipe.grad_clip, session.precision)
        parts = distributed.mean_over_processes(parts, context)
        session.step += 1
        now = time.perf_counter()
        if log is not None:
            lr = optimizer.param_groups[0]["lr"]
            log.write({"step": session.step, "epoch": epoch + 1, "lr": lr, **parts, "seconds": now - tick})
        tick = now
        totals += (parts["loss"], parts["iou"])
        bar.update()
        bar.set_postfix(loss=f"{parts['loss']:.3f}", iou=f"{parts['iou']:.2f}")
    bar.close()
    distributed.share_buffers(session.model, context)
    return tuple(totals / session.steps_per_epoch)


def _save_final(job: TrainJob, session: Session) -> None:
    metadata = {**session.metadata, "epoch": session.recipe.epochs, "step": session.step}
    out = Path(job.out)
    save_checkpoint(out / MODEL_NAME, session.model, model_config(session.model), metadata)
    if job.save_trainable_only:
        save_trainable_only(out / TRAINABLE_NAME, session.model, metadata)
