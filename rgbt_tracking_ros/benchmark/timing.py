"""Latency statistics of a callable at batch 1, timed the way the device needs.

On a GPU, host clocks around a call measure only the launch: each call is bracketed by CUDA
events on the stream and read after a synchronize. On CPU the call has finished when it
returns, so a monotonic clock suffices.
"""
from __future__ import annotations

import resource
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch


@dataclass
class Latency:
    median_ms: float
    p99_ms: float
    mean_ms: float
    fps: float  # 1000 / median: frames per second one stream gets at this latency
    iterations: int
    warmup: int

    def as_dict(self) -> dict:
        return asdict(self)


def summarise(times_ms: list[float], warmup: int) -> Latency:
    times = np.asarray(times_ms, dtype=np.float64)
    median = float(np.median(times))
    return Latency(
        median_ms=median,
        p99_ms=float(np.percentile(times, 99)),
        mean_ms=float(times.mean()),
        fps=1000.0 / median if median > 0 else float("inf"),
        iterations=len(times),
        warmup=warmup,
    )


def time_calls(fn: Callable[[], object], device: torch.device, warmup: int, iterations: int) -> Latency:
    """Run `fn` warmup times untimed, then time each of `iterations` calls."""
    if iterations < 1:
        raise ValueError(f"iterations must be at least 1, got {iterations}")
    for _ in range(warmup):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        pairs = []
        for _ in range(iterations):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            pairs.append((start, end))
        torch.cuda.synchronize(device)
        return summarise([start.elapsed_time(end) for start, end in pairs], warmup)
    times = []
    for _ in range(iterations):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return summarise(times, warmup)


def _max_rss_bytes() -> int:
    # ru_maxrss is in KiB on Linux and in bytes on macOS.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


class PeakMemory:
    """Peak memory while the block runs: allocated device memory on CUDA; on CPU the growth
    of the process's peak resident set (0 when the block stays under an earlier peak, so
    the CPU figure is a lower bound; the process's peak is reported beside it)."""

    def __init__(self, device: torch.device):
        self.device = device
        self.peak_mb = 0.0
        self.process_peak_mb = 0.0

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        self._rss_before = _max_rss_bytes()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak_mb = torch.cuda.max_memory_allocated(self.device) / 2**20
            self.process_peak_mb = torch.cuda.max_memory_reserved(self.device) / 2**20
            return
        rss_after = _max_rss_bytes()
        self.peak_mb = (rss_after - self._rss_before) / 2**20
        self.process_peak_mb = rss_after / 2**20
