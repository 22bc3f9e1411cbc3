"""Latency statistics of a callable at batch 1, timed the way the device needs.

On a GPU, host clocks around a call measure only the launch: each call is bracketed by CUDA
events on the stream and read after a synchronize. On CPU the call has finished when it
returns, so a monotonic clock suffices.
"""
from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

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

    def as_dict(self) -> dict[str, Any]:
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
            # torch: Event.__new__ is unannotated
            start = torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]
            end = torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]
            start.record()
            fn()
            end.record()
            pairs.append((start, end))
        torch.cuda.synchronize(device)
        return summarise([start.elapsed_time(end) for start, end in pairs], warmup)
    times = []
    for _ in range(iterations):
        began = time.perf_counter()
        fn()
        times.append((time.perf_counter() - began) * 1e3)
    return summarise(times, warmup)


_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_kib(field: str) -> int:
    """A memory field of /proc/self/status in KiB; 0 where there is no /proc (not Linux)."""
    if not _STATUS.is_file():
        return 0
    match = re.search(rf"^{field}:\s+(\d+) kB", _STATUS.read_text(), re.MULTILINE)
    return int(match.group(1)) if match else 0


def _reset_peak_rss() -> None:
    """Reset the kernel's peak-RSS mark (Linux >= 4.0: "5" to clear_refs), where allowed."""
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        pass


class PeakMemory:
    """Peak memory while the block runs, above what was in use when it began: allocated
    device memory on CUDA; on CPU the resident set (the kernel's peak mark, reset at the
    start). Where the mark cannot be reset, the process's lifetime peak minus the starting
    RSS is an upper bound. `process_peak_mb`: reserved device memory, or the whole RSS peak."""

    def __init__(self, device: torch.device):
        self.device = device
        self.peak_mb = 0.0
        self.process_peak_mb = 0.0

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._start = torch.cuda.memory_allocated(self.device)
        else:
            _reset_peak_rss()
            self._start = _status_kib("VmRSS") * 1024
        return self

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            peak = torch.cuda.max_memory_allocated(self.device)
            self.process_peak_mb = torch.cuda.max_memory_reserved(self.device) / 2**20
        else:
            peak = _status_kib("VmHWM") * 1024
            self.process_peak_mb = peak / 2**20
        self.peak_mb = max(0, peak - self._start) / 2**20
