"""The tracker's fast path: reduced precision, CUDA graph replay and pinned uploads.

At batch 1 a GPU spends most of a frame waiting for Python to launch a few hundred small
kernels; replaying a captured CUDA graph launches them all at once. Half precision halves
the memory traffic of the matmuls; the selective scan still accumulates in fp32. Everything
here that needs CUDA falls back to the plain path on CPU, so one config runs anywhere.
"""
from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeAlias, TypeVar

import numpy as np
import torch

from rgbt_tracking_ros.tracker.preprocess import normalise, to_tensor

logger = logging.getLogger(__name__)

PRECISIONS: dict[str, torch.dtype | None] = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}
# How the model call runs: torch.compile fuses the small elementwise kernels, a CUDA graph
# replays all kernels with one launch; both need CUDA here, so CPU always runs eagerly.
EXECUTIONS = ("eager", "cuda_graph", "compile", "compile+cuda_graph")
GRAPH_WARMUP_CALLS = 3  # eager calls before a capture: cuBLAS/cuDNN set-up, kernel choices

R = TypeVar("R")
# A CUDA graph is captured per input signature: each input's shape and dtype.
_ShapeKey: TypeAlias = tuple[tuple[tuple[int, ...], torch.dtype], ...]


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """torch's thread count (the process's) for a block, the previous one after it.

    The tracker does its host work around the model call (crops, decoding, the target
    model's small FFTs and solves) on one thread, so that torch's OpenMP threads do not wait
    beside onnxruntime's for the two cores (the 640x512 step on the 2-core machine: 2.0 and
    3.1 ms faster in two A/B runs; the gap vanished in one run with OMP_WAIT_POLICY=PASSIVE,
    which points at their spin-waiting), and the host numbers come out the same whichever
    backend runs the model.
    """
    previous = torch.get_num_threads()
    if count == previous:
        yield
        return
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def autocast_dtype(precision: str | None, half: bool, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of a precision name (None: fp32); `half` is the older fp16 switch.

    fp16 is the fast path's precision on a GPU: as fast as bf16 there, with 3 more mantissa
    bits, which keeps the boxes of a weakly trained model on the fp32 ones where bf16 may
    not. On CPU both run (emulated, slow without AMX): useful to check numerics, not speed;
    `half=True` keeps meaning "fp16 on a GPU" and is refused on CPU as it always was.
    """
    if half and device.type != "cuda":
        raise ValueError("half precision needs a CUDA device (precision='fp16' or 'bf16' run on CPU, slowly)")
    if precision is None:
        precision = "fp16" if half else "fp32"
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {sorted(PRECISIONS)}, got {precision!r}")
    if half and precision != "fp16":
        raise ValueError(f"half=True asks for fp16 but precision is {precision!r}: set one of them")
    return PRECISIONS[precision]


def execution_mode(compile: bool, cuda_graph: bool, device: torch.device) -> str:
    """The execution (one of EXECUTIONS) the device allows; asked-for CUDA parts are dropped
    on CPU with a warning, so one config runs on both."""
    wanted = [name for name, on in (("compile", compile), ("cuda_graph", cuda_graph)) if on]
    if wanted and device.type != "cuda":
        logger.warning("no %s without a CUDA device: running the model eagerly on %s", " or ".join(wanted), device)
        return "eager"
    return "+".join(wanted) or "eager"


def accelerate(fn: Callable[..., R], execution: str) -> Callable[..., R]:
    """`fn` compiled and/or replayed from a CUDA graph, as `execution` says."""
    if execution not in EXECUTIONS:
        raise ValueError(f"execution must be one of {EXECUTIONS}, got {execution!r}")
    if "compile" in execution:
        fn = torch.compile(fn, dynamic=False)
    if "cuda_graph" in execution:
        fn = CudaGraphCall(fn)
    return fn


def autocast_context(device: torch.device, dtype: torch.dtype | None, execution: str) -> torch.autocast:
    """The precision's autocast; its weight cache off under a CUDA graph, which would keep
    reading cached casts that autocast frees on exit."""
    return torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None,
                          cache_enabled="cuda_graph" not in execution)


@dataclass
class _Captured(Generic[R]):
    graph: torch.cuda.CUDAGraph
    inputs: tuple[torch.Tensor, ...]
    outputs: R


class CudaGraphCall(Generic[R]):
    """Calls `fn(*tensors)` by replaying a CUDA graph captured once per input shape.

    The returned tensors are the graph's own output buffers: the next call overwrites them,
    so read them before calling again (the tracker decodes each frame before the next).
    Autocast, if wanted, must be active around the call with its weight cache disabled
    (cached casts would be freed while the graph still reads them).
    """

    def __init__(self, fn: Callable[..., R]):
        self.fn = fn
        self._captured: dict[_ShapeKey, _Captured[R]] = {}

    @property
    def captured_shapes(self) -> list[_ShapeKey]:
        return list(self._captured)

    def __call__(self, *inputs: torch.Tensor) -> R:
        key = tuple((tuple(t.shape), t.dtype) for t in inputs)
        entry = self._captured.get(key)
        if entry is None:
            entry = self._captured[key] = self._capture(inputs)
        for static, value in zip(entry.inputs, inputs):
            static.copy_(value)
        entry.graph.replay()
        return entry.outputs

    def _capture(self, inputs: tuple[torch.Tensor, ...]) -> _Captured[R]:
        static = tuple(t.clone() for t in inputs)
        side = torch.cuda.Stream()  # type: ignore[no-untyped-call]  # torch: Stream.__new__ is unannotated
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(GRAPH_WARMUP_CALLS):
                self.fn(*static)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            outputs = self.fn(*static)
        logger.info("captured a CUDA graph for input shapes %s", [tuple(t.shape) for t in inputs])
        return _Captured(graph, static, outputs)


class Uploader:
    """uint8 patches to normalised tensors on the device; through pinned memory on CUDA.

    A pinned staging buffer per patch shape makes the host-to-device copy asynchronous and
    skips the driver's own staging copy; an event guards the buffer until its copy is done.
    """

    def __init__(self, device: torch.device):
        self.device = device
        self._staging: dict[tuple[int, ...], tuple[torch.Tensor, torch.cuda.Event]] = {}

    @property
    def pinned(self) -> bool:
        return self.device.type == "cuda"

    def __call__(self, patches: np.ndarray) -> torch.Tensor:
        if not self.pinned:
            return to_tensor(patches, self.device)
        key = patches.shape
        if key not in self._staging:
            event = torch.cuda.Event()  # type: ignore[no-untyped-call]  # torch: Event.__new__ is unannotated
            self._staging[key] = (torch.empty(key, dtype=torch.uint8, pin_memory=True), event)
        buffer, copied = self._staging[key]
        copied.synchronize()
        buffer.numpy()[...] = patches
        on_device = buffer.to(self.device, non_blocking=True)
        copied.record()
        return normalise(on_device)
