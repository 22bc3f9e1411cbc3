"""One benchmark case each: the model's per-frame call, the whole tracker step, the scan alone.

Every case returns a flat dict (one table row, one JSON record). Weights do not change the
timings, so the models are built with their initial weights unless the caller loaded some.
"""
from __future__ import annotations

import contextlib
import itertools
import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from torch import nn

from rgbt_tracking_ros.data.synthetic import SyntheticSequence
from rgbt_tracking_ros.eval.boxes import iou_xywh
from rgbt_tracking_ros.eval.peers import PEERS, CsrtTracker
from rgbt_tracking_ros.models import selective_scan as ss
from rgbt_tracking_ros.models.protocol import Geometry, model_geometry, tracking_model
from rgbt_tracking_ros.models.registry import load_model_config
from rgbt_tracking_ros.tracker import RGBTTracker, TrackerConfig
from rgbt_tracking_ros.tracker.acceleration import accelerate, autocast_context, autocast_dtype
from rgbt_tracking_ros.tracker.onnx_backend import OnnxBackend, auto_declines, select_backend

from .timing import PeakMemory, time_calls


def _tokens(config: dict[str, Any]) -> int:
    """Template plus search tokens of one modality."""
    geometry = Geometry.from_config(config)
    return geometry.template_tokens + geometry.search_tokens


def _fusion_scan(config: dict[str, Any], key: str, length: int) -> tuple[int, int, int]:
    mamba = config[key]
    return config["embed_dim"] * mamba.get("expand", 1), mamba["d_state"], length


def scan_shapes() -> dict[str, tuple[int, int, int]]:
    """The scans the registered models run at batch 1, (d_inner, d_state, L), read from their
    configs: a fusion Mamba scans one modality's template and search tokens; AINet's OFM scans
    every layer's fused tokens after the first `fusion_cut` (default: the template tokens)."""
    compact, ainet = load_model_config("compact_rgbt"), load_model_config("ainet_256")
    cut = ainet.get("fusion_cut", Geometry.from_config(ainet).template_tokens)
    return {
        "compact_dfm": _fusion_scan(compact, "dfm", _tokens(compact)),
        "ainet_dfm": _fusion_scan(ainet, "dfm", _tokens(ainet)),
        "ainet_ofm": _fusion_scan(ainet, "ofm", ainet["depth"] * (_tokens(ainet) - cut)),
    }


SCAN_NAMES = ("compact_dfm", "ainet_dfm", "ainet_ofm")  # the keys of scan_shapes()


def precision_context(device: torch.device, precision: str, execution: str) -> contextlib.ExitStack:
    """inference_mode plus the precision's autocast, as the tracker enters them per frame."""
    stack = contextlib.ExitStack()
    stack.enter_context(torch.inference_mode())
    stack.enter_context(autocast_context(device, autocast_dtype(precision, False, device), execution))
    return stack


def tracker_config(device: torch.device, precision: str = "fp32", execution: str = "eager",
                   backend: str = "torch") -> TrackerConfig:
    return TrackerConfig(device=str(device), precision=precision, compile="compile" in execution,
                         cuda_graph="cuda_graph" in execution, backend=backend)


def backend_name(model: nn.Module, device: torch.device, precision: str, execution: str, backend: str) -> str:
    """What `backend` ("torch", "onnxruntime", "auto") comes to for this case: "auto" is
    onnxruntime where it applies (CPU, fp32, eager, a model with ONNX_ON_CPU) and is installed."""
    if backend != "auto":
        return backend
    autocast = autocast_dtype(precision, False, device)
    return "torch" if auto_declines(model, device, autocast, execution) else "onnxruntime"


def per_frame_call(
    model: nn.Module, device: torch.device, runner: OnnxBackend | None = None
) -> tuple[Callable[..., dict[str, torch.Tensor]], tuple[torch.Tensor, ...]]:
    """The call the tracker makes per frame and its inputs (model protocol): `track_search` on
    templates encoded once, all templates of a full memory. `runner`: an execution backend
    with the model's encode_templates / track_search (ONNX)."""
    geometry = model_geometry(model)
    generator = torch.Generator().manual_seed(0)
    search = [torch.randn(geometry.search_shape(), generator=generator).to(device) for _ in range(2)]
    templates = [torch.randn(geometry.template_shape(), generator=generator).to(device) for _ in range(2)]
    calls = runner if runner is not None else tracking_model(model)
    return calls.track_search, (calls.encode_templates(*templates), *search)


def bench_model(model: nn.Module, device: torch.device, precision: str, execution: str,
                warmup: int, iterations: int, backend: str = "torch") -> dict[str, Any]:
    """Model-only latency of the per-frame call at batch 1, and its peak memory."""
    model = model.to(device).eval()
    autocast = autocast_dtype(precision, False, device)
    runner = select_backend(model, backend, device, autocast, execution)
    with precision_context(device, precision, execution):
        fn, inputs = per_frame_call(model, device, runner)
        call = fn if runner is not None else accelerate(fn, execution)
        with PeakMemory(device) as memory:
            latency = time_calls(lambda: call(*inputs), device, warmup, iterations)
    return {**latency.as_dict(), "peak_mb": memory.peak_mb, "process_peak_mb": memory.process_peak_mb,
            "backend": "torch" if runner is None else runner.name}


# The online target model's two costs: its response, on every frame, and a refresh (a new
# training frame and a few solver steps), on every `update_interval`-th confident frame.
TARGET_MODEL_CALLS = ("respond", "refresh")


def bench_target_model(model: nn.Module, call: str, warmup: int, iterations: int) -> dict[str, Any]:
    """One target-model call (`TARGET_MODEL_CALLS`) on the model's own search features of a
    synthetic crop, with a full memory of training frames: the refresh is a spike that the
    tracker step's median hides, so it gets a row of its own."""
    from rgbt_tracking_ros.export import sample_inputs  # imports the synthetic data: only here
    from rgbt_tracking_ros.tracker.target_model import InstanceMatcher

    groups = getattr(model, "SEARCH_FEATURE_GROUPS", None)
    if groups is None:
        raise ValueError(f"{type(model).__name__} returns no search features for a target model")
    geometry = model_geometry(model)
    calls = tracking_model(model.eval())
    template_rgb, template_x, search_rgb, search_x = sample_inputs(model)
    with torch.inference_mode():
        output = calls.track_search(calls.encode_templates(template_rgb, template_x), search_rgb, search_x)
    matcher = InstanceMatcher(None, groups)
    side = 1.0 / geometry.search_factor  # a square target, as the search crop is cut around one
    matcher.fit(output["search_features"], output["size_map"], (side, side))
    target = matcher.filter
    features = output["search_features"][0].float()
    centre = ((features.shape[1] - 1) / 2, (features.shape[2] - 1) / 2)
    for _ in range(target.config.memory):
        target.update(features, centre)
    action = {"respond": lambda: target.respond(features), "refresh": lambda: target.update(features, centre)}[call]
    latency = time_calls(action, torch.device("cpu"), warmup, iterations)
    return {**latency.as_dict(), "backend": "torch", "call": call, "grid": "x".join(map(str, features.shape))}


def _frame_pairs(sequence: SyntheticSequence) -> list[tuple[np.ndarray, np.ndarray]]:
    return list(zip(sequence.rgb, sequence.thermal))


def bench_tracker(model: nn.Module, device: torch.device, precision: str, execution: str,
                  sequence: SyntheticSequence, warmup: int, iterations: int,
                  backend: str = "torch") -> dict[str, Any]:
    """The whole `track` call: crops, upload, model, decoding, map-back (and DMTrack's template
    crop). It returns host numbers, so it has synchronised: a wall clock times it."""
    tracker = RGBTTracker(model, tracker_config(device, precision, execution, backend))
    frames = _frame_pairs(sequence)
    tracker.initialize(*frames[0], sequence.boxes[0])
    # Skip frame 0 on each lap: it is the one the target was initialised on.
    upcoming = itertools.cycle(frames[1:])
    # DMTrack fills its template memory over the first frames: each new shape is a new graph.
    warmup = max(warmup, tracker.num_templates + 1)
    with PeakMemory(device) as memory:
        latency = time_calls(lambda: tracker.track(*next(upcoming)), torch.device("cpu"), warmup, iterations)
    return {**latency.as_dict(), "peak_mb": memory.peak_mb, "process_peak_mb": memory.process_peak_mb,
            "backend": tracker.backend}


# What may have happened to the target, for `bench_state`: (box side in pixels, frames fed).
# "stall" repeats the initial frame (a confident peak: TRACKING); "noise" feeds frames of
# noise (no target: LOST, the search widened to its cap); "full-frame" does the same with a
# full-frame search on every lost frame (the robust policy does one every redetect_interval).
STATES = {
    "tracking, box 40 px": (40, "stall"),
    "tracking, box 300 px": (300, "stall"),
    "lost, widened search": (40, "noise"),
    "lost, full-frame search": (40, "full-frame"),
}


def bench_state(model: nn.Module, device: torch.device, precision: str, execution: str,
                sequence: SyntheticSequence, state: str, warmup: int, iterations: int,
                backend: str = "torch") -> dict[str, Any]:
    """One whole `track` call in one of `STATES`, with the state it really reached: whether the
    step stays flat whatever happened to the box, and what a full-frame search costs."""
    side, feed = STATES[state]
    config = replace(tracker_config(device, precision, execution, backend),
                     redetect_interval=1 if feed == "full-frame" else 0)
    tracker = RGBTTracker(model, config)
    rgb, thermal = sequence.rgb[0], sequence.thermal[0]
    x, y, w, h = sequence.boxes[0]
    tracker.initialize(rgb, thermal, np.array([x + w / 2 - side / 2, y + h / 2 - side / 2, side, side]))
    if feed != "stall":
        noise = np.random.default_rng(0)
        rgb = noise.integers(0, 256, rgb.shape, dtype=np.uint8)
        thermal = noise.integers(0, np.iinfo(thermal.dtype).max, thermal.shape, dtype=thermal.dtype)
    states: list[str] = []
    latency = time_calls(lambda: states.append(tracker.track(rgb, thermal).state.name), torch.device("cpu"),
                         warmup, iterations)
    reached = ", ".join(f"{name} {states.count(name)}" for name in sorted(set(states)))
    return {**latency.as_dict(), "backend": tracker.backend, "state": state, "reached": reached}


def bench_peer(peer: str, sequence: SyntheticSequence, warmup: int, iterations: int) -> dict[str, Any]:
    """A known baseline's whole per-frame call on the same frames (CSRT on one modality,
    OpenCV, CPU): what our tracker step is weighed against."""
    tracker = CsrtTracker(PEERS[peer])
    frames = _frame_pairs(sequence)
    tracker.initialize(*frames[0], sequence.boxes[0])
    upcoming = itertools.cycle(frames[1:])
    with PeakMemory(torch.device("cpu")) as memory:
        latency = time_calls(lambda: tracker.track(*next(upcoming)), torch.device("cpu"), warmup, iterations)
    return {**latency.as_dict(), "peak_mb": memory.peak_mb, "process_peak_mb": memory.process_peak_mb}


def scan_inputs(
    dim: int, n_state: int, length: int, device: torch.device, dtype: torch.dtype
) -> tuple[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], dict[str, Any]]:
    """Inputs with the models' magnitudes (A = -(1..N), softplus(delta_bias) in [1e-3, 0.1]),
    all options on as the Mamba block calls the scan; activations in `dtype`."""
    generator = torch.Generator().manual_seed(dim + length)
    dt = torch.exp(torch.empty(dim).uniform_(math.log(1e-3), math.log(0.1), generator=generator))
    shapes = ((dim, length), (dim, length), (n_state, length), (n_state, length), (dim, length))
    scales = (1.0, 0.5, 1.0, 1.0, 1.0)
    u, delta, b, c, z = (
        (scale * torch.randn(1, *shape, generator=generator)).to(device, dtype)
        for shape, scale in zip(shapes, scales)
    )
    a = -torch.arange(1.0, n_state + 1).repeat(dim, 1).to(device)
    kwargs: dict[str, Any] = dict(D=torch.ones(dim, device=device), z=z,
                                  delta_bias=(dt + torch.log(-torch.expm1(-dt))).to(device), delta_softplus=True)
    return (u, delta, a, b, c), kwargs


def scan_backends(device: torch.device) -> dict[str, ss.ScanFn]:
    """The scan implementations that run on `device`, by name."""
    backends: dict[str, ss.ScanFn] = {"torch": ss.selective_scan_torch}
    for name in ss.gpu_kernels(device):
        kernel = ss.load_kernel(name)
        if kernel is not None:  # gpu_kernels lists the importable ones only
            backends[name] = kernel
    return backends


def bench_scan(shape: tuple[int, int, int], device: torch.device, dtype: torch.dtype, backend: str,
               warmup: int, iterations: int) -> dict[str, Any]:
    """One scan at batch 1, and its max abs error against the sequential fp32 reference on
    the same inputs (relative to the reference's largest |y| for half-precision inputs)."""
    scan = scan_backends(device)[backend]
    args, kwargs = scan_inputs(*shape, device, dtype)
    with torch.inference_mode():
        with PeakMemory(device) as memory:
            latency = time_calls(lambda: scan(*args, **kwargs), device, warmup, iterations)
        y = scan(*args, **kwargs).float()
        u, delta, a, b, c = (t.float() for t in args)
        upcast: dict[str, Any] = {k: v.float() if torch.is_tensor(v) else v for k, v in kwargs.items()}
        expected = ss.selective_scan_reference(u, delta, a, b, c, **upcast)
    error = (y - expected).abs().max().item()
    return {**latency.as_dict(), "peak_mb": memory.peak_mb, "max_abs_error": error,
            "max_abs_reference": expected.abs().max().item()}


def box_agreement(model: nn.Module, device: torch.device, precision: str, execution: str,
                  sequence: SyntheticSequence) -> dict[str, Any]:
    """Mean and minimum IoU per frame between the boxes of this path and of fp32 eager, each
    tracker following its own boxes through the sequence (drift included)."""
    runs = []
    for config in (tracker_config(device), tracker_config(device, precision, execution)):
        tracker = RGBTTracker(model, config)
        frames = _frame_pairs(sequence)
        tracker.initialize(*frames[0], sequence.boxes[0])
        runs.append(np.array([tracker.track(*frame).box for frame in frames[1:]]))
    ious = iou_xywh(runs[0], runs[1])
    return {"mean_iou": float(ious.mean()), "min_iou": float(ious.min()), "frames": len(ious)}
