"""Which cases a run measures and how many iterations each gets.

Defaults are full on a GPU (hundreds of timed calls) and short on CPU, where AINet-256 and
DMTrack take seconds per frame: the whole default CPU run stays within a few minutes on two
cores. `quick` is a smoke run for tests.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

DEFAULT_MODELS = ("ainet_256", "dmtrack_rgbt", "compact_rgbt")
# Models that take seconds per frame on CPU: a few timed calls there.
LARGE_MODELS = frozenset({"ainet_256", "ainet_384", "dmtrack_rgbt"})
# Published speeds at batch 1 the figures are compared with.
PUBLISHED_FPS = {
    "ainet_256": (37.5, "AINet paper, RTX 4090"),
    "dmtrack_rgbt": (39.2, "DMTrack paper"),
}
LONG_SCAN = 2048  # scans at least this long get the short CPU budget


@dataclass(frozen=True)
class Budget:
    warmup: int
    iterations: int


def budget(kind: str, device: torch.device, large: bool, quick: bool,
           warmup: int | None = None, iterations: int | None = None) -> Budget:
    """Warm-up and timed calls for a case; explicit values win."""
    if quick:
        chosen = Budget(1, 2)
    elif device.type == "cuda":
        chosen = {"model": Budget(50, 500), "tracker": Budget(20, 300)}.get(kind, Budget(20, 200))
    else:
        chosen = Budget(1, 3) if large else Budget(3, 30)
    return Budget(chosen.warmup if warmup is None else warmup,
                  chosen.iterations if iterations is None else iterations)


def precisions(device: torch.device, requested: list[str] | None) -> list[str]:
    """All three on CUDA. On CPU fp32 only by default: without AMX or AVX512-BF16 half
    precision runs emulated, 10-20x slower than fp32 (compact model: 2.5 s vs 0.14 s)."""
    if requested:
        return list(requested)
    return ["fp32", "fp16", "bf16"] if device.type == "cuda" else ["fp32"]


def executions(device: torch.device, requested: list[str] | None) -> list[str]:
    """CUDA graphs and compiling are GPU options here; on CPU every case runs eagerly."""
    if device.type != "cuda":
        return ["eager"]
    return requested or ["eager", "cuda_graph"]


def sequence_frames(device: torch.device, quick: bool) -> int:
    """Frames of the synthetic sequence the tracker step and the box agreement run over."""
    return 6 if quick else (100 if device.type == "cuda" else 30)
