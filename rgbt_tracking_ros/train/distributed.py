"""Multi-process training under torchrun: which process this is, its device, the process
group (nccl on CUDA, gloo on CPU), and the few collectives the trainer needs."""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Context:
    rank: int
    world_size: int
    device: torch.device

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Only the main process writes checkpoints, logs and the progress bar."""
        return self.rank == 0


def launched_by_torchrun() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def setup(device: str) -> Context:
    """Joins torchrun's process group if launched by it; `device` is "cpu" or "cuda" (each
    process then takes GPU LOCAL_RANK)."""
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be cpu or cuda, got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda: no CUDA device is visible")
    if not launched_by_torchrun() or int(os.environ["WORLD_SIZE"]) == 1:
        return Context(0, 1, torch.device(device))
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if device == "cuda":
        torch.cuda.set_device(local_rank)
        target = torch.device("cuda", local_rank)
    else:
        target = torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device == "cuda" else "gloo")
    return Context(dist.get_rank(), dist.get_world_size(), target)


def teardown(context: Context) -> None:
    if context.distributed and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def mean_over_processes(values: dict[str, float], context: Context) -> dict[str, float]:
    """Averages logged numbers over the processes (one small all-reduce)."""
    if not context.distributed:
        return values
    tensor = torch.tensor(list(values.values()), dtype=torch.float64, device=context.device)
    dist.all_reduce(tensor)
    return dict(zip(values, (tensor / context.world_size).tolist()))


def share_buffers(model: torch.nn.Module, context: Context) -> None:
    """Buffers (BatchNorm statistics) as on the main process. DDP copies them from there
    before every forward, so after the last step each process still holds its own."""
    if context.distributed:
        for buffer in model.buffers():
            dist.broadcast(buffer, 0)
